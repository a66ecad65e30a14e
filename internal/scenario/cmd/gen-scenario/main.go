// Command gen-scenario writes a synthetic canary/baseline history as
// OpenMetrics text (the files under examples/ come from it):
//
//	go run ./internal/scenario/cmd/gen-scenario -fault error-rate -at 30m -duration 1h > examples/error-rate.om
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/rewind-sre/rewind/internal/scenario"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gen-scenario:", err)
		os.Exit(1)
	}
}

func run() error {
	start := flag.String("start", "2026-01-01T00:00:00Z", "first sample (RFC 3339)")
	duration := flag.Duration("duration", time.Hour, "length of the history")
	fault := flag.String("fault", "", "fault injected into the canary: error-rate, latency, success-rate, throughput, byzantine, dag-corruption, memory, circuit-breaker, no-traffic, gap, error-bump, latency-spread, sparse-errors (empty: healthy)")
	at := flag.Duration("at", 30*time.Minute, "when the fault starts, after -start")
	faultFor := flag.Duration("for", 0, "how long the fault lasts (0: to the end)")
	value := flag.Float64("value", 0, "the fault's magnitude (0: the kind's default)")
	canaryRPS := flag.Float64("canary-rps", 5, "canary requests per second")
	newCanary := flag.Bool("new-canary", false, "the canary starts at -at (with the fault: a warm-up)")
	baselineRPS := flag.Float64("baseline-rps", 20, "baseline requests per second, all pods together")
	baselinePods := flag.Int("baseline-pods", 2, "baseline pods")
	seed := flag.Uint64("seed", 1, "random seed")
	baselineErrors := flag.Float64("baseline-errors", 0.005, "baseline error proportion")
	canaryErrors := flag.Float64("canary-errors", 0.005, "canary error proportion before the fault")
	flag.Parse()
	t0, err := time.Parse(time.RFC3339, *start)
	if err != nil {
		return err
	}
	cfg := scenario.Healthy(t0, *duration, *canaryRPS, *seed)
	cfg.Baseline.ErrorRate, cfg.Canary.ErrorRate = *baselineErrors, *canaryErrors
	cfg.Baseline.RPS, cfg.Baseline.Instances = *baselineRPS, *baselinePods
	cfg.Fault = scenario.Fault{Kind: *fault, At: t0.Add(*at), For: *faultFor, Value: *value}
	if *newCanary {
		cfg.CanaryFrom = t0.Add(*at)
	}
	w := bufio.NewWriter(os.Stdout)
	if err := scenario.Write(w, cfg); err != nil {
		return err
	}
	return w.Flush()
}
