// Command montecarlo measures the judges' quality bars through the real
// pipeline (scenario generator → embedded TSDB → backtest) and prints them
// as markdown, the fixed-window and the sequential judge side by side, both
// under the seed's hold times (docs/judge.md):
//
//	go run ./internal/montecarlo/cmd/montecarlo > judges.md
//
// Progress goes to standard error. The exit code is 1 when a bar of the
// built-in policy's judge fails.
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
	opt := montecarlo.Options{Size: montecarlo.FullSize, Progress: os.Stderr}
	flag.IntVar(&opt.Lives, "lives", opt.Lives, "healthy canaries (4 hours each) per case and judge (0: none)")
	flag.IntVar(&opt.Runs, "runs", opt.Runs, "runs per fault case and judge (0: none)")
	flag.Uint64Var(&opt.Seed, "seed", 1, "suite seed: every run's history derives from it")
	flag.IntVar(&opt.Workers, "workers", 0, "runs replayed at once (0: GOMAXPROCS)")
	compare := flag.Bool("compare", false, "also replay the seed's rules (no statistics, the seed's holds)")
	flag.StringVar(&opt.Only, "judge", "", "replay one judge only: "+montecarlo.FixedName+" or "+montecarlo.SequentialName)
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
	def, err := montecarlo.DefaultRules()
	if err != nil {
		return false, err
	}
	if opt.Only != "" && opt.Only != def.Name {
		return true, nil
	}
	ok, _ := res.Passes(def.Name, *ci)
	return ok, nil
}
