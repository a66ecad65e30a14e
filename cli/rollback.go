package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/daemon"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/store/sqlite"
)

// SeedReasons are the seed's operator reasons; free text is accepted too.
var SeedReasons = []string{"customer-escalation", "security-vulnerability", "business-decision", "unexpected-behavior", "team-consensus"}

// platformOverride lets tests supply the platform executors.
var platformOverride []daemon.PlatformFunc

type rollbackFlags struct {
	file, system, reason, store, evidence string
	dry                                   bool
}

func rollbackCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollback --policy FILE --system S --reason R [--dry-run] [--store PATH] [--evidence DIR]",
		Short: "Roll a system back now through the rollback plan",
		Long: `An operator's rollback through the same plan and executors as serve's: drain,
check-baseline, undo, scale-down, evidence, verify, each step shown live,
journaled in the store, with notices and the post-mortem draft. A rollback of
the system that a stopped process left unfinished is resumed first (it is the
rollback asked for). --dry-run prints the exact API changes and changes
nothing. SIGINT or SIGTERM interrupts the step under way; it stays in the
journal for the next rollback or serve on the store.

Seed reasons: ` + strings.Join(SeedReasons, ", ") + `; free text is accepted too.

Exit codes: 0 rolled back and verified, 1 otherwise.`,
		Example: `  rewind rollback --policy policy.yaml --system dwcp-manager --reason customer-escalation --dry-run`,
		Args:    cobra.NoArgs,
	}
	var f rollbackFlags
	fs := cmd.Flags()
	fs.StringVar(&f.file, "policy", "", "policy file (YAML)")
	fs.StringVar(&f.system, "system", "", "the system to roll back")
	fs.StringVar(&f.reason, "reason", "", "why: "+strings.Join(SeedReasons, ", ")+", or free text")
	fs.BoolVar(&f.dry, "dry-run", false, "print the plan and the exact API changes; change nothing")
	fs.StringVar(&f.store, "store", daemon.DefaultStorePath(), "the rollback journal (SQLite)")
	fs.StringVar(&f.evidence, "evidence", "", "evidence bundle directory (default: the policy's, else evidence/ beside the store)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return runRollback(cmd.Context(), env, f) }
	return cmd
}

func runRollback(ctx context.Context, env *Env, f rollbackFlags) error {
	file, system, reason, dry, store, evidence := &f.file, &f.system, &f.reason, &f.dry, &f.store, &f.evidence
	if *system == "" || strings.TrimSpace(*reason) == "" {
		return usagef("--system and --reason are required")
	}
	pol, err := loadPolicy(env, *file)
	if err != nil {
		return err
	}
	if pol.System(*system) == nil {
		return fmt.Errorf("no system named %q in %s", *system, pol.File)
	}
	// An operator's rollback goes as far as it can: what this machine
	// lacks is said, the steps that need it fail.
	warnEnvironment(env, pol, policy.Everything)
	var st daemon.Store
	if *dry {
		// A dry run writes nothing: not even the store (a scratch one).
		dir, err := os.MkdirTemp("", "rewind-dry-run-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		s, err := sqlite.Open(ctx, filepath.Join(dir, "scratch.db"))
		if err != nil {
			return err
		}
		defer s.Close()
		st = s
	} else {
		s, err := daemon.OpenStore(ctx, *store)
		if err != nil {
			return fmt.Errorf("not rolling back: %w", err)
		}
		defer s.Close()
		st = s
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := daemon.New(daemon.Options{Policy: pol, Store: st, EvidenceDir: *evidence, EvidenceFallback: besideStore(*store),
		Version: Version, Log: log, Now: env.Now, Platforms: platformOverride,
		Events: []rewind.Publisher{liveSteps(env.Stdout)}})
	if err != nil {
		return reportPolicyErrors(env, err)
	}
	if *dry {
		return printPlan(ctx, env.Stdout, d, *system, *reason)
	}
	// Notices go out while the rollback runs; what is still pending at
	// the end is delivered by the next rewind process on this store.
	octx, stop := context.WithCancel(context.WithoutCancel(ctx))
	delivered := make(chan struct{})
	go func() { defer close(delivered); _ = d.Deliver(octx) }()
	defer func() {
		_ = d.Flush(context.Background(), 5*time.Second)
		stop()
		<-delivered
	}()
	fmt.Fprintf(env.Stdout, "rolling back %s: %s\n", *system, *reason)
	rb, resumed, err := d.Rollback(ctx, *system, *reason, requester())
	if resumed {
		fmt.Fprintf(env.Stdout, "resumed unfinished rollback %s of %s (it is the rollback asked for)\n", rb.ID, rb.System)
	}
	var busy *plan.InProgressError
	switch {
	case errors.As(err, &busy):
		return fmt.Errorf("not rolling back again: %w", err)
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("interrupted (%v): the rollback stays in the journal at the step it was in; the next `rewind rollback` or `rewind serve` on %s resumes it", context.Cause(ctx), *store)
	case err != nil:
		return err
	}
	if p := daemon.PostMortemPath(rb); p != "" {
		if _, err := os.Stat(p); err == nil {
			fmt.Fprintf(env.Stdout, "post-mortem draft: %s\n", p)
		}
	}
	printOutcome(env.Stdout, rb)
	return outcomeErr(rb)
}

// outcomeErr is exit 0 only for a rollback that was done and verified.
func outcomeErr(rb *rewind.Rollback) error {
	if rb.State != rewind.RollbackSucceeded {
		return exitCode(ExitError)
	}
	return nil
}

func requester() string {
	if u := os.Getenv("USER"); u != "" {
		return "cli:" + u
	}
	return "cli"
}

// liveSteps prints each step as it starts and ends.
func liveSteps(w io.Writer) rewind.Publisher {
	var mu sync.Mutex
	return rewind.PublisherFunc(func(_ context.Context, e rewind.Event) error {
		if e.Kind != rewind.EventStep || e.Step == nil {
			return nil
		}
		s := e.Step
		mu.Lock()
		defer mu.Unlock()
		if s.State == rewind.StepRunning {
			fmt.Fprintf(w, "  %-15s running…\n", s.Name)
			return nil
		}
		fmt.Fprintf(w, "  %-15s %-9s %8s  %s\n", s.Name, s.State, s.Duration().Round(time.Millisecond), firstNonEmpty(s.Error, s.Detail))
		return nil
	})
}

func printPlan(ctx context.Context, w io.Writer, d *daemon.Daemon, system, reason string) error {
	steps, err := d.DryRun(ctx, system, reason)
	fmt.Fprintf(w, "dry run: rolling back %s (%s) would change:\n", system, reason)
	for _, s := range steps {
		switch {
		case !s.Configured:
			fmt.Fprintf(w, "  %-15s skipped: not configured\n", s.Step)
		case s.Err != nil:
			fmt.Fprintf(w, "  %-15s cannot plan: %v\n", s.Step, s.Err)
		case len(s.Changes) == 0:
			fmt.Fprintf(w, "  %-15s nothing to change (timeout %s)\n", s.Step, s.Timeout)
		default:
			fmt.Fprintf(w, "  %-15s (timeout %s)\n", s.Step, s.Timeout)
			for _, c := range s.Changes {
				fmt.Fprintf(w, "      %s %s: %s\n", c.Action, c.Target, c.Detail)
			}
		}
	}
	fmt.Fprintln(w, "nothing was changed")
	if err != nil {
		return exitCode(ExitError)
	}
	return nil
}

func historyCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "history [--store PATH] [--system S] [--limit N]",
		Short: "Past rollbacks, newest first",
		Args:  cobra.NoArgs,
	}
	store := cmd.Flags().String("store", daemon.DefaultStorePath(), "the rollback journal: a SQLite file, or kubernetes[:NAMESPACE] (docs/storage.md)")
	system := cmd.Flags().String("system", "", "only this system")
	limit := cmd.Flags().Int("limit", 50, "at most this many rollbacks")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return history(cmd.Context(), env, *store, *system, *limit)
	}
	return cmd
}

func history(ctx context.Context, env *Env, storePath, system string, limit int) error {
	store := &storePath
	st, err := daemon.OpenStoreAt(ctx, *store, daemon.StoreOptions{Shared: true})
	if err != nil {
		return err
	}
	defer st.Close()
	rbs, err := st.List(ctx, plan.ListOptions{System: system, Limit: limit})
	if err != nil {
		return err
	}
	sort.SliceStable(rbs, func(i, j int) bool { return rbs[i].Started.After(rbs[j].Started) })
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSYSTEM\tSTATE\tSTARTED\tDURATION\tREASON")
	for _, rb := range rbs {
		d := "-"
		if !rb.Ended.IsZero() {
			d = rb.Ended.Sub(rb.Started).Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", rb.ID, rb.System, rb.State, rb.Started.UTC().Format(time.RFC3339), d, rb.Reason)
	}
	return tw.Flush()
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func printOutcome(w io.Writer, rb *rewind.Rollback) {
	took := rb.Ended.Sub(rb.Started).Round(time.Millisecond)
	switch rb.State {
	case rewind.RollbackSucceeded:
		fmt.Fprintf(w, "rollback %s of %s: rolled back and verified in %s\n", rb.ID, rb.System, took)
	default:
		fmt.Fprintf(w, "rollback %s of %s: %s after %s: %s\n", rb.ID, rb.System, strings.ToUpper(string(rb.State)), took, rb.Error)
	}
	if rb.Evidence != "" {
		fmt.Fprintf(w, "evidence: %s\n", rb.Evidence)
	}
}
