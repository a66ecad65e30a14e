// Package cli is the rewind command line (spf13/cobra): it parses
// arguments, hands the work to the packages (the daemon assembly for
// serve, demo and rollback) and maps results to exit codes.
//
// Conventions, as kubectl's and promtool's: `--help` (and `help CMD`)
// prints to stdout and exits 0 on every command; errors go to stderr as
// "rewind CMD: message" with exit code 1; analyze and backtest exit 2
// when a rollback is decided and 3 when the result is inconclusive.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Exit codes (docs/cli.md).
const (
	ExitOK           = 0 // success; analyze/backtest: healthy
	ExitError        = 1 // usage error, invalid policy, failed command, failed or unverified rollback
	ExitRollback     = 2 // analyze/backtest: a rollback is decided
	ExitInconclusive = 3 // analyze/backtest: no data or failing queries, no rollback decided
)

// exitCode carries an exit code out of a command without a message (the
// command has printed what it had to say).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// Env is what a command may touch: its output streams and the clock.
type Env struct {
	Stdout, Stderr io.Writer
	Now            func() time.Time
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, env *Env) int {
	if env.Now == nil {
		env.Now = time.Now
	}
	root := rootCmd(env)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	var code exitCode
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &code):
		return int(code)
	}
	name := "rewind"
	if cmd != nil && cmd != root {
		name = cmd.CommandPath()
	}
	fmt.Fprintf(env.Stderr, "%s: %v\n", name, err)
	if isUsage(err) {
		fmt.Fprintf(env.Stderr, "Run '%s --help' for usage.\n", name)
	}
	return ExitError
}

// usageError is a mistake in the command line itself.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func isUsage(err error) bool {
	var u usageError
	return errors.As(err, &u) || strings.Contains(err.Error(), "unknown flag") || strings.Contains(err.Error(), "unknown command") ||
		strings.Contains(err.Error(), "flag needs an argument") || strings.Contains(err.Error(), "invalid argument") ||
		strings.Contains(err.Error(), "accepts ") || strings.Contains(err.Error(), "unknown shorthand")
}

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func rootCmd(env *Env) *cobra.Command {
	root := &cobra.Command{
		Use:   "rewind",
		Short: "Automated canary analysis and rollback",
		Long: `Rewind watches a canary against its baseline through Prometheus, decides with
rules it can explain (and never on missing data) that it is bad, and rolls it
back: drain, undo, scale down, keep the evidence, verify, tell people.

Exit codes: 0 success (analyze, backtest: healthy); 1 error or usage error;
2 a rollback is decided (analyze, backtest); 3 inconclusive (analyze, backtest).`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.NoArgs,
		// No command is a usage error: the help, on stderr, and exit 1.
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(env.Stderr)
			_ = cmd.Help()
			return exitCode(ExitError)
		},
	}
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.CompletionOptions.HiddenDefaultCmd = true
	root.AddCommand(demoCmd(env), validateCmd(env), analyzeCmd(env), backtestCmd(env), serveCmd(env),
		rollbackCmd(env), resumeGitOpsCmd(env), historyCmd(env), postMortemCmd(env), policyCmd(env), storeCmd(env), versionCmd(env))
	// Each command's Use line already shows its flags.
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.DisableFlagsInUseLine = true
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return root
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

func versionCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintf(env.Stdout, "rewind %s\n", Version)
			return nil
		},
	}
}
