// Package cli is the rewind command line: it parses arguments, wires the
// packages together and maps results to the exit codes of DESIGN.md §2.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Exit codes shared by analyze and backtest.
const (
	ExitOK           = 0
	ExitError        = 1
	ExitRollback     = 2
	ExitInconclusive = 3
)

// ExitError carries an exit code other than 1 out of a command.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// Env is what a command may touch: its output streams and the clock.
type Env struct {
	Stdout, Stderr io.Writer
	Now            func() time.Time
}

type command struct {
	name, usage, summary string
	run                  func(ctx context.Context, env *Env, args []string) error
}

func commands() []command {
	return []command{
		{"demo", "[--scenario error-rate|latency|success-rate|throughput|byzantine|dag-corruption|memory|circuit-breaker|none]", "a live demo on loopback: a canary goes bad and is rolled back", runDemo},
		{"validate", "--policy FILE", "check a policy; every error with file:line and field path", runValidate},
		{"analyze", "--policy FILE [--system S] [--output text|json]", "one evaluation now against the live metrics source", runAnalyze},
		{"backtest", "--policy FILE (--data FILE.om | --prometheus URL) --from T --to T [--step D] [--output text|json]", "replay the decision engine over history", runBacktest},
		{"serve", "--policy FILE [--listen ADDR] [--store PATH] [--token-file FILE]", "the controller daemon: continuous analysis, API, /metrics", runServe},
		{"rollback", "--policy FILE --system S --reason R [--dry-run]", "roll a system back now through the rollback plan", runRollback},
		{"history", "[--store PATH] [--system S]", "past rollbacks", runHistory},
		{"postmortem", "ID [--store PATH] [--policy FILE]", "the post-mortem draft of a rollback (Markdown)", runPostMortem},
		{"policy", "default", "print the built-in policy", runPolicy},
		{"version", "", "print the version", runVersion},
	}
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, env *Env) int {
	if env.Now == nil {
		env.Now = time.Now
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.Stderr)
		if len(args) == 0 {
			return ExitError
		}
		return ExitOK
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, env, args[1:])
		var code exitCode
		switch {
		case err == nil:
			return ExitOK
		case errors.As(err, &code):
			return int(code)
		case errors.Is(err, flag.ErrHelp):
			return ExitOK
		default:
			fmt.Fprintf(env.Stderr, "rewind %s: %v\n", c.name, err)
			return ExitError
		}
	}
	fmt.Fprintf(env.Stderr, "rewind: unknown command %q\n\n", args[0])
	usage(env.Stderr)
	return ExitError
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "rewind — automated canary analysis and rollback\n\nUsage:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  rewind %s %s\n      %s\n", c.name, c.usage, c.summary)
	}
}

func newFlags(env *Env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("rewind "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: rewind %s %s\n", name, usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses and rejects stray positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// parseTime accepts RFC 3339 or unix seconds (fractions allowed).
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "eE") {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither RFC 3339 (2026-01-02T15:04:05Z) nor unix seconds", s)
}

// Version is set at build time with -ldflags "-X .../cli.Version=...".
var Version = "dev"

func runVersion(_ context.Context, env *Env, args []string) error {
	fmt.Fprintf(env.Stdout, "rewind %s\n", Version)
	return nil
}
