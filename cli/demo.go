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
		Use:   "demo [--scenario " + strings.Join(names, "|") + "] [--dir DIR]",
		Short: "A live demo on loopback: a canary goes bad and is rolled back",
		Long: `A small production on loopback (a baseline and a canary service, a weighted
router with load, the embedded Prometheus engine scraping both) and Rewind
itself, assembled as rewind serve assembles it, with the demo's router and
services as the platform. After a warm-up a fault is injected into the canary;
Rewind catches it, rolls it back and verifies. No cluster, no external server.

Exit codes: 0 when the rollback was verified (for --scenario none: when the
healthy canary was left alone), 1 otherwise.`,
		Args: cobra.NoArgs,
	}
	scenario := cmd.Flags().String("scenario", string(service.FaultErrorRate), "the fault injected into the canary: "+strings.Join(names, ", "))
	dir := cmd.Flags().String("dir", "", "where the journal, evidence and post-mortem go (default: a new temporary directory)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return runDemo(cmd.Context(), env, *scenario, *dir) }
	return cmd
}

func runDemo(ctx context.Context, env *Env, scenario, dir string) error {
	fmt.Fprintf(env.Stdout, "rewind demo: scenario %s — a canary goes bad and Rewind rolls it back (no cluster, no external server)\n", scenario)
	res, err := demo.Run(ctx, demo.Options{Scenario: scenario, Dir: dir, Out: env.Stdout, Color: isTerminal(env.Stdout)})
	if err != nil {
		return err
	}
	if err := res.Check(scenario); err != nil {
		fmt.Fprintf(env.Stdout, "DEMO FAILED: %v\n", err)
		return exitCode(ExitError)
	}
	if res.RolledBack {
		fmt.Fprintf(env.Stdout, "\ndemo passed: %s caught %.0fs after the fault, rolled back and verified; notices %v\n  evidence:    %s\n  post-mortem: %s\n  history:     rewind history --store %s/rewind.db\n",
			scenario, res.Detection.Seconds(), res.Notices, res.Evidence, res.PostMortem, res.Dir)
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
