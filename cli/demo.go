package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rewind-sre/rewind/demo"
	"github.com/rewind-sre/rewind/demo/service"
)

func demoCmd(env *Env) *cobra.Command {
	names := make([]string, 0, len(service.Faults()))
	for _, f := range service.Faults() {
		names = append(names, string(f))
	}
	cmd := &cobra.Command{
		Use:   "demo [--scenario " + strings.Join(names, "|") + "] [--dir DIR] [--keep] [--listen ADDR]",
		Short: "A live demo on loopback: a canary goes bad and is rolled back",
		Long: `A small production on loopback (a baseline and a canary service, a weighted
router with load, the embedded Prometheus engine scraping both) and Rewind
itself, assembled as rewind serve assembles it, with the demo's router and
services as the platform. After a warm-up a fault is injected into the canary;
Rewind catches it, rolls it back and verifies. No cluster, no external server.

The first line is the address of Rewind's web UI: open it to watch the
triggers go pending and firing, the rollback's steps and its post-mortem.
With --keep everything stays up after the scenario until Ctrl-C, to look
around; pausing or rolling back from the UI needs the login token the demo
writes into its directory (the path is printed).

Exit codes: 0 when the rollback was verified (for --scenario none: when the
healthy canary was left alone), 1 otherwise.`,
		Args: cobra.NoArgs,
	}
	scenario := cmd.Flags().String("scenario", string(service.FaultErrorRate), "the fault injected into the canary: "+strings.Join(names, ", "))
	dir := cmd.Flags().String("dir", "", "where the journal, evidence and post-mortem go (default: a new temporary directory)")
	keep := cmd.Flags().Bool("keep", false, "stay up after the scenario (the web UI too) until Ctrl-C")
	listen := cmd.Flags().String("listen", "127.0.0.1:0", "address of the web UI and the API")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return runDemo(cmd.Context(), env, demo.Options{Scenario: *scenario, Dir: *dir, Listen: *listen}, *keep)
	}
	return cmd
}

func runDemo(ctx context.Context, env *Env, o demo.Options, keep bool) error {
	o.Out, o.Color = env.Stdout, isTerminal(env.Stdout)
	var kept error
	if keep {
		o.Keep = func(res *demo.Result) {
			kept = demoResult(env, o.Scenario, res)
			fmt.Fprintf(env.Stdout, "\n--keep: Rewind, its web UI at %s and the demo's production stay up; Ctrl-C to stop\n", res.UI)
		}
	}
	res, err := demo.Run(ctx, o)
	if err != nil {
		return err
	}
	if keep {
		return kept
	}
	return demoResult(env, o.Scenario, res)
}

// demoResult prints what the run showed; an error is exit code 1.
func demoResult(env *Env, scenario string, res *demo.Result) error {
	if err := res.Check(scenario); err != nil {
		fmt.Fprintf(env.Stdout, "DEMO FAILED: %v\n", err)
		return exitCode(ExitError)
	}
	if res.RolledBack {
		fmt.Fprintf(env.Stdout, "\ndemo passed: %s caught %.0fs after the fault, rolled back and verified; notices %v\n  evidence:    %s\n  post-mortem: %s\n  in the UI:   %srollbacks/%s\n  history:     rewind history --store %s/rewind.db\n",
			scenario, res.Detection.Seconds(), res.Notices, res.Evidence, res.PostMortem, res.UI, res.Rollback.ID, res.Dir)
	} else {
		fmt.Fprintln(env.Stdout, "\ndemo passed: the healthy canary was left alone")
	}
	return nil
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
