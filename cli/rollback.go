package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/notify"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/store/sqlite"
	"github.com/rewind-sre/rewind/wire"
)

// SeedReasons are the seed's operator reasons; free text is accepted too.
var SeedReasons = []string{"customer-escalation", "security-vulnerability", "business-decision", "unexpected-behavior", "team-consensus"}

// platformOverride lets tests and the demo supply the platform executors.
var platformOverride func(system string) wire.Platform

func runRollback(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "rollback", "--policy FILE --system S --reason R [--dry-run] [--store PATH] [--evidence DIR]")
	file := fs.String("policy", "", "policy file (YAML)")
	system := fs.String("system", "", "the system to roll back")
	reason := fs.String("reason", "", "why: "+strings.Join(SeedReasons, ", ")+", or free text")
	dry := fs.Bool("dry-run", false, "print the plan and the exact API changes; change nothing")
	store := fs.String("store", "rewind.db", "the rollback journal (SQLite)")
	evidence := fs.String("evidence", "", "evidence bundle directory (default: the policy's, else rewind-evidence)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *system == "" || strings.TrimSpace(*reason) == "" {
		return errors.New("--system and --reason are required")
	}
	pol, err := loadPolicy(env, *file)
	if err != nil {
		return err
	}
	sys := pol.System(*system)
	if sys == nil {
		return fmt.Errorf("no system named %q in %s", *system, pol.File)
	}
	if !*dry {
		unlock, err := wire.LockStore(*store)
		if err != nil {
			return fmt.Errorf("not rolling back: %w", err)
		}
		defer unlock()
	}
	st, err := wire.OpenStore(ctx, *store)
	if err != nil {
		return err
	}
	defer st.Close()
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	outbox, err := wire.Outbox(pol, st, log, nil)
	if err != nil {
		return err
	}
	opt := wire.Options{EvidenceDir: *evidence, Now: env.Now, Progress: liveSteps(env.Stdout)}
	if !*dry {
		opt.Progress = wire.Fanout(opt.Progress, outbox.Progress(pol, wire.Links))
	}
	if platformOverride != nil {
		opt.Platform = platformOverride(*system)
	}
	runner, src, err := wire.Runner(sys, st, opt)
	if err != nil {
		return err
	}
	if !*dry {
		// Notices go out while the rollback runs; what is still pending at
		// the end is delivered by the next rewind process on this store.
		octx, stop := context.WithCancel(ctx)
		go outbox.Run(octx)
		defer flush(st, stop)
	}
	if *dry {
		return printPlan(ctx, env.Stdout, runner, *system, *reason)
	}
	// A rollback of this system that a killed process left unfinished is
	// finished first: it is the rollback asked for.
	resumed, err := runner.ResumeSystem(ctx, *system)
	for _, rb := range resumed {
		fmt.Fprintf(env.Stdout, "resumed unfinished rollback %s of %s\n", rb.ID, rb.System)
		postMortem(env.Stdout, st, src, sys, rb, log)
		printOutcome(env.Stdout, rb)
		if rb.System == *system {
			return outcomeErr(rb)
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "rolling back %s: %s\n", *system, *reason)
	rb, err := runner.Start(ctx, *system, *reason, requester(), nil)
	var busy *plan.InProgressError
	switch {
	case errors.As(err, &busy):
		return fmt.Errorf("not rolling back again: %w", err)
	case err != nil:
		return err
	}
	postMortem(env.Stdout, st, src, sys, rb, log)
	printOutcome(env.Stdout, rb)
	return outcomeErr(rb)
}

func postMortem(w io.Writer, st plan.Store, src rewind.Source, sys *policy.System, rb *rewind.Rollback, log *slog.Logger) {
	if path := wire.PostMortem(st, src, sys, rb, log); path != "" {
		fmt.Fprintf(w, "post-mortem draft: %s\n", path)
	}
}

// flush gives pending notices a few seconds to go out, then stops the outbox.
func flush(st *sqlite.Store, stop func()) {
	defer stop()
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond) // the store has no change feed
	defer tick.Stop()
	for {
		pending, err := st.Notices(context.Background(), notify.Filter{State: notify.Pending, Limit: 1})
		if err != nil || len(pending) == 0 {
			return
		}
		select {
		case <-deadline:
			return
		case <-tick.C:
		}
	}
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
func liveSteps(w io.Writer) func(*rewind.Rollback, rewind.StepRecord) {
	var mu sync.Mutex
	return func(_ *rewind.Rollback, s rewind.StepRecord) {
		mu.Lock()
		defer mu.Unlock()
		if s.State == rewind.StepRunning {
			fmt.Fprintf(w, "  %-15s running…\n", s.Name)
			return
		}
		fmt.Fprintf(w, "  %-15s %-9s %8s  %s\n", s.Name, s.State, s.Duration().Round(time.Millisecond), firstNonEmpty(s.Error, s.Detail))
	}
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

func printPlan(ctx context.Context, w io.Writer, r *plan.Runner, system, reason string) error {
	steps, err := r.DryRun(ctx, system, reason)
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

func runHistory(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "history", "[--store PATH] [--system S] [--limit N]")
	store := fs.String("store", "rewind.db", "the rollback journal (SQLite)")
	system := fs.String("system", "", "only this system")
	limit := fs.Int("limit", 50, "at most this many rollbacks")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if _, err := os.Stat(*store); err != nil {
		return fmt.Errorf("no rollback journal at %s", *store)
	}
	st, err := sqlite.Open(ctx, *store)
	if err != nil {
		return err
	}
	defer st.Close()
	rbs, err := st.List(ctx, plan.ListOptions{System: *system, Limit: *limit})
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
