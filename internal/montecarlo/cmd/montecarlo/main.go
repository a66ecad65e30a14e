// Command montecarlo measures the statistical judge's quality bars through
// the real pipeline (scenario generator → embedded TSDB → backtest) and
// prints them as markdown, the seed's rules alongside for comparison:
//
//	go run ./internal/montecarlo/cmd/montecarlo > quality-bars.md
//
// Progress goes to standard error. The exit code is 1 when a bar of the
// default policy fails.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/rewind-sre/rewind/internal/montecarlo"
)

func main() {
	ok, err := run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "montecarlo:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

func run() (bool, error) {
	opt := montecarlo.Options{Size: montecarlo.FullSize, Compare: true, Progress: os.Stderr}
	flag.IntVar(&opt.CanaryHours, "hours", opt.CanaryHours, "healthy canary-hours per case and policy")
	flag.IntVar(&opt.Runs, "runs", opt.Runs, "runs per fault case and policy")
	flag.Uint64Var(&opt.Seed, "seed", 1, "suite seed: every run's history derives from it")
	flag.IntVar(&opt.Workers, "workers", 0, "runs replayed at once (0: GOMAXPROCS)")
	compare := flag.Bool("compare", true, "also replay the seed's rules")
	ci := flag.Bool("ci", false, "the CI sample (as the test without -short), bars with slack")
	quiet := flag.Bool("quiet", false, "no progress on standard error")
	flag.Parse()
	opt.Compare = *compare
	if *ci {
		opt.Size = montecarlo.CISize
	}
	if *quiet {
		opt.Progress = nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := montecarlo.Run(ctx, opt)
	if err != nil {
		return false, err
	}
	if err := res.Markdown(os.Stdout, *ci); err != nil {
		return false, err
	}
	for _, v := range res.Verdicts(*ci) {
		if !v.Pass {
			return false, nil
		}
	}
	return true, nil
}
