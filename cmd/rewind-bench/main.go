// Command rewind-bench measures Rewind at scale: for each size, N systems of
// the built-in policy against the real Prometheus scraping an exporter of
// their metrics, K cycles of `rewind serve`, and the hand-written grouped
// queries of the same data as the floor. It prints one Markdown table row
// per size (docs/scale.md).
//
//	go build -o bin/ ./cmd/rewind ./cmd/rewind-bench
//	bin/rewind-bench --systems 10,100,1000,10000 --cycles 5
//
// Run it alone on the machine: it measures CPU.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rewind-sre/rewind/internal/bench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "rewind-bench:", err)
		os.Exit(1)
	}
}

func run() error {
	sizes := flag.String("systems", "10,100,1000", "comma-separated numbers of systems")
	cycles := flag.Int("cycles", 5, "cycles measured per size (K)")
	interval := flag.Duration("interval", 30*time.Second, "the policy's evaluation interval")
	scrapeEvery := flag.Duration("scrape", 15*time.Second, "Prometheus's scrape interval")
	rewind := flag.String("rewind", "", "the rewind binary (default: rewind next to this binary, else in PATH)")
	prom := flag.String("prometheus", "prometheus", "the prometheus binary (Debian's package)")
	dir := flag.String("dir", "", "working directory, kept (default: a new temporary directory)")
	hostile := flag.Bool("hostile", false, "instead: serve --systems (one number) against an endpoint answering +Inf, NaN, a gigabyte or nothing")
	flag.Parse()
	if *rewind == "" {
		self, _ := os.Executable()
		*rewind = filepath.Join(filepath.Dir(self), "rewind")
		if _, err := os.Stat(*rewind); err != nil {
			*rewind = "rewind"
		}
	}
	for _, b := range []*string{rewind, prom} {
		p, err := exec.LookPath(*b)
		if err != nil {
			return err
		}
		*b = p
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "rewind-bench-")
		if err != nil {
			return err
		}
		*dir = d
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *hostile {
		n, err := strconv.Atoi(*sizes)
		if err != nil {
			return fmt.Errorf("--hostile takes one --systems number: %w", err)
		}
		fmt.Printf("rewind-bench --hostile: %s, %d systems, interval %s, %d cycles per mode; in %s\n\n%s\n", *rewind, n, *interval, *cycles, *dir, bench.HostileHeader)
		for _, mode := range bench.HostileModes {
			res, err := bench.Hostile(ctx, bench.Options{Systems: n, Cycles: *cycles, Interval: *interval, Rewind: *rewind, Dir: bench.HostileDir(*dir, mode)}, mode)
			if err != nil {
				return fmt.Errorf("%s: %w", mode, err)
			}
			fmt.Println(res.Row())
		}
		return nil
	}
	fmt.Printf("rewind-bench: %s, %s; interval %s, scrape %s, %d cycles per size; in %s\n\n%s\n",
		*rewind, *prom, *interval, *scrapeEvery, *cycles, *dir, bench.Header)
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("--systems: %q is not a number of systems", s)
		}
		res, err := bench.Run(ctx, bench.Options{Systems: n, Cycles: *cycles, Interval: *interval, Scrape: *scrapeEvery,
			Rewind: *rewind, Prometheus: *prom, Dir: filepath.Join(*dir, strconv.Itoa(n)), Log: os.Stderr})
		if err != nil {
			return fmt.Errorf("%d systems: %w", n, err)
		}
		fmt.Println(res.Row())
	}
	return nil
}
