package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/backtest"
	"github.com/rewind-sre/rewind/daemon"
	"github.com/rewind-sre/rewind/gitops"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/source/embedded"
)

func analyzeCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "analyze --policy FILE [--system S] [--output text|json]",
		Short: "One evaluation now against the live metrics source",
		Long: `The decision now, against each system's Prometheus: the last max(for) + interval
is replayed so that hold times count. A metrics source that fails is never a
rollback: it is inconclusive.

Exit codes: 0 healthy, 2 rollback decided, 3 inconclusive (no data or failing
queries), 1 usage or configuration error. A CI gate.`,
		Example: `  rewind analyze --policy policy.yaml --system dwcp-manager --output json`,
		Args:    cobra.NoArgs,
	}
	file := cmd.Flags().String("policy", "", "policy file (YAML)")
	system := cmd.Flags().String("system", "", "only this system (default: every system)")
	output := cmd.Flags().String("output", "text", "text or json")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return analyze(cmd.Context(), env, *file, *system, *output)
	}
	return cmd
}

func analyze(ctx context.Context, env *Env, file, system, output string) error {
	if err := checkOutput(output); err != nil {
		return err
	}
	pol, err := loadPolicy(env, file)
	if err != nil {
		return err
	}
	if err := needEnvironment(env, pol, policy.Scope{Metrics: true}); err != nil {
		return err
	}
	now := env.Now().UTC().Truncate(time.Second)
	rep := &backtest.Report{To: now}
	for _, sys := range pol.Systems {
		if system != "" && sys.Name != system {
			continue
		}
		src, err := daemon.NewPrometheus(sys.Prometheus)
		if err != nil {
			return fmt.Errorf("system %s: %w", sys.Name, err)
		}
		// One instant cannot show a hold time: replay max(for)+interval up to now.
		steps := int(sys.MaxFor()/sys.Interval) + 1
		if sys.Watch != nil {
			// A watch judges a rollout from its start: replay every rollout
			// whose watch may still run (started within its duration and
			// two hours for the rollout itself).
			steps = int((sys.Watch.Duration+2*time.Hour)/sys.Interval) + 1
		}
		from := now.Add(-time.Duration(steps) * sys.Interval)
		r, err := backtest.Run(ctx, src, pol, backtest.Options{From: from, To: now, System: sys.Name})
		if err != nil {
			return err
		}
		if rep.From.IsZero() || from.Before(rep.From) {
			rep.From = from
		}
		rep.Systems = append(rep.Systems, r.Systems...)
		rep.Rollouts = append(rep.Rollouts, r.Rollouts...)
		rep.Watches = append(rep.Watches, r.Watches...)
	}
	if len(rep.Systems) == 0 && len(rep.Watches) == 0 {
		return fmt.Errorf("no system named %q in %s", system, pol.File)
	}
	// The GitOps owners, all looked at within gitopsLookTimeout: a cluster
	// that cannot be read is in a status's error, never a failure of analyze.
	gctx, cancel := context.WithTimeout(ctx, gitopsLookTimeout)
	defer cancel()
	owners := map[string]*gitops.Status{}
	for _, s := range rep.Systems {
		if sys := pol.System(s.System); sys != nil {
			owners[s.System] = gitopsStatus(gctx, sys, env.Now())
		}
	}
	return reportWith(env, rep, output, owners)
}

// gitopsStatus looks at sys's GitOps owners now; nil when it has no
// Kubernetes target to look at.
func gitopsStatus(ctx context.Context, sys *policy.System, now time.Time) *gitops.Status {
	if sys.Rollback.GitOps.None {
		return gitops.NoneStatus()
	}
	s := daemon.GitOpsSystem(sys, daemon.NewKube)
	if s == nil {
		return nil
	}
	return s.Status(ctx, now)
}

// gitopsLookTimeout bounds analyze's look at every system's GitOps owners.
const gitopsLookTimeout = 10 * time.Second

type backtestFlags struct {
	file, data, prometheus, from, to, system, output string
	step                                             policy.Duration
}

func backtestCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backtest --policy FILE (--data FILE.om | --prometheus URL) --from T --to T [--step D] [--output text|json]",
		Short: "Replay the decision engine over history",
		Long: `Replay the decision engine over history: when would this policy have rolled
back, and how often. --data takes OpenMetrics text with timestamps (the format
promtool tsdb create-blocks-from openmetrics reads); --prometheus queries a
Prometheus HTTP API. Times are RFC 3339 or unix seconds.

Exit codes: as analyze (0 healthy, 2 rollback, 3 inconclusive, 1 error).`,
		Example: `  rewind backtest --policy examples/policy.yaml --data examples/error-rate.om \
      --from 2026-01-01T00:00:00Z --to 2026-01-01T01:00:00Z`,
		Args: cobra.NoArgs,
	}
	var f backtestFlags
	fs := cmd.Flags()
	fs.StringVar(&f.file, "policy", "", "policy file (YAML)")
	fs.StringVar(&f.data, "data", "", "OpenMetrics file with timestamps (as promtool tsdb create-blocks-from openmetrics reads)")
	fs.StringVar(&f.prometheus, "prometheus", "", "Prometheus HTTP API URL (overrides the policy's); range queries")
	fs.StringVar(&f.from, "from", "", "start: RFC 3339 or unix seconds")
	fs.StringVar(&f.to, "to", "", "end: RFC 3339 or unix seconds")
	fs.Var((*stepFlag)(&f.step), "step", "evaluation step, e.g. 30s or 1m30s (default: each system's interval)")
	fs.StringVar(&f.system, "system", "", "only this system (default: every system)")
	fs.StringVar(&f.output, "output", "text", "text or json")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return runBacktest(cmd.Context(), env, f) }
	return cmd
}

func runBacktest(ctx context.Context, env *Env, f backtestFlags) error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	if (f.data == "") == (f.prometheus == "") {
		return usagef("give exactly one of --data FILE or --prometheus URL")
	}
	from, err := parseTime(f.from)
	if err != nil {
		return usagef("--from: %w", err)
	}
	to, err := parseTime(f.to)
	if err != nil {
		return usagef("--to: %w", err)
	}
	pol, err := loadPolicy(env, f.file)
	if err != nil {
		return err
	}
	var src rewind.Source
	if f.data != "" {
		db, err := embedded.Open(embedded.Options{})
		if err != nil {
			return err
		}
		defer db.Close()
		if err := db.LoadFile(f.data); err != nil {
			return err
		}
		src = db
	} else {
		if err := needEnvironment(env, pol, policy.Scope{Metrics: true}); err != nil {
			return err
		}
		var cfg policy.Prometheus
		if s := pol.System(f.system); s != nil {
			cfg = s.Prometheus
		} else if len(pol.Systems) > 0 {
			cfg = pol.Systems[0].Prometheus
		}
		cfg.URL = f.prometheus
		if err := cfg.CheckURL(); err != nil {
			return usagef("--prometheus: %w", err)
		}
		if src, err = daemon.NewPrometheus(cfg); err != nil {
			return err
		}
	}
	rep, err := backtest.Run(ctx, src, pol, backtest.Options{From: from, To: to, Step: time.Duration(f.step), System: f.system, Progress: env.Stderr})
	if err != nil {
		return err
	}
	return report(env, rep, f.output)
}

// stepFlag is a positive Prometheus-syntax duration flag.
type stepFlag policy.Duration

func (f *stepFlag) Set(s string) error { return decodeDuration((*policy.Duration)(f), s) }
func (f *stepFlag) Type() string       { return "duration" }
func (f *stepFlag) String() string {
	if *f == 0 {
		return ""
	}
	return policy.Duration(*f).String()
}

func decodeDuration(d *policy.Duration, s string) error {
	v, err := policy.ParseDuration(s)
	if err != nil {
		return err
	}
	if v <= 0 {
		return errors.New("must be positive")
	}
	*d = policy.Duration(v)
	return nil
}

func checkOutput(o string) error {
	if o != "text" && o != "json" {
		return usagef("--output must be text or json, not %q", o)
	}
	return nil
}

// report prints a replay and turns its decisions into the exit code:
// any rollback → 2, else any inconclusive → 3, else 0.
func report(env *Env, rep *backtest.Report, output string) error {
	return reportWith(env, rep, output, nil)
}

// analyzed is analyze's JSON: the replay, with each system's GitOps owners.
type analyzed struct {
	From    time.Time        `json:"from"`
	To      time.Time        `json:"to"`
	Systems []analyzedSystem `json:"systems"`
}

type analyzedSystem struct {
	backtest.SystemReport
	GitOps *gitops.Status `json:"gitops,omitempty"`
}

// reportWith is report with the systems' GitOps owners (nil: none shown).
func reportWith(env *Env, rep *backtest.Report, output string, owners map[string]*gitops.Status) error {
	if output == "json" {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		var v any = rep
		if owners != nil {
			a := analyzed{From: rep.From, To: rep.To, Systems: make([]analyzedSystem, len(rep.Systems))}
			for i, s := range rep.Systems {
				a.Systems[i] = analyzedSystem{SystemReport: s, GitOps: owners[s.System]}
			}
			v = a
		}
		if err := enc.Encode(v); err != nil {
			return err
		}
	} else {
		printText(env.Stdout, rep, owners)
		printRollouts(env.Stdout, rep)
	}
	code := ExitOK
	decisions := make([]string, 0, len(rep.Systems)+len(rep.Rollouts))
	for _, s := range rep.Systems {
		decisions = append(decisions, s.Decision)
	}
	for _, r := range rep.Rollouts {
		decisions = append(decisions, r.Decision)
	}
	for _, d := range decisions {
		switch {
		case d == backtest.Rollback:
			code = ExitRollback
		case d == backtest.Inconclusive && code == ExitOK:
			code = ExitInconclusive
		}
	}
	if code != ExitOK {
		return exitCode(code)
	}
	return nil
}

func printText(w io.Writer, rep *backtest.Report, owners map[string]*gitops.Status) {
	for _, s := range rep.Systems {
		switch s.Decision {
		case backtest.Rollback:
			fmt.Fprintf(w, "%s: ROLLBACK at %s — firing: %v\n", s.System, s.RollbackAt.Format(time.RFC3339), s.Firing)
		case backtest.Inconclusive:
			fmt.Fprintf(w, "%s: INCONCLUSIVE — some triggers have no data or their queries fail\n", s.System)
		default:
			fmt.Fprintf(w, "%s: HEALTHY\n", s.System)
		}
		fmt.Fprintf(w, "  %d evaluations every %s, %d queries per cycle, %s … %s\n", s.Evaluations, s.Step, s.Queries,
			rep.From.Format(time.RFC3339), rep.To.Format(time.RFC3339))
		if len(s.Rollbacks) > 1 {
			fmt.Fprintf(w, "  would have rolled back %d times:", len(s.Rollbacks))
			for _, e := range s.Rollbacks {
				fmt.Fprintf(w, " %s", e.At.Format(time.RFC3339))
			}
			fmt.Fprintln(w)
		}
		for _, t := range s.BlindAt {
			fmt.Fprintf(w, "  BLIND at %s: queries failed %d cycles in a row\n", t.Format(time.RFC3339), 3)
		}
		const maxShown = 40
		if n := len(s.Transitions); n > 0 {
			fmt.Fprintln(w, "  transitions:")
			shown := s.Transitions
			if n > maxShown {
				fmt.Fprintf(w, "    … %d earlier transitions (see --output json)\n", n-maxShown)
				shown = shown[n-maxShown:]
			}
			for _, t := range shown {
				fmt.Fprintf(w, "    %s  %-28s %s → %s%s%s\n", t.At.Format(time.RFC3339), t.Trigger, t.From, t.To, values(t.Canary, t.Baseline), reason(t.Reason))
			}
		}
		fmt.Fprintln(w, "  now:")
		for _, f := range s.Final {
			fmt.Fprintf(w, "    %-28s %-17s%s%s\n", f.Trigger, f.State, values(f.Canary, f.Baseline), reason(f.Reason))
		}
		if st := owners[s.System]; st != nil {
			for _, l := range st.Lines() {
				fmt.Fprintf(w, "  gitops owner: %s\n", l)
			}
		}
	}
}

// printRollouts prints each rollout of the watch systems with its decision.
func printRollouts(w io.Writer, rep *backtest.Report) {
	seen := map[string]bool{}
	for _, r := range rep.Rollouts {
		seen[r.System] = true
		if r.Deployment != "" {
			seen[strings.SplitN(r.System, ".", 2)[0]] = true
		}
	}
	for _, s := range rep.Watches {
		if !seen[s] {
			fmt.Fprintf(w, "%s: no rollout in %s … %s\n", s, rep.From.Format(time.RFC3339), rep.To.Format(time.RFC3339))
		}
	}
	for _, r := range rep.Rollouts {
		head := fmt.Sprintf("%s: rollout of %s/%s to %s", r.System, r.Namespace, r.Deployment, r.Revision)
		if r.Previous != "" {
			head += " (from " + r.Previous + ")"
		}
		if !r.Start.IsZero() {
			head += " at " + r.Start.Format(time.RFC3339)
		}
		switch r.Decision {
		case backtest.Rollback:
			fmt.Fprintf(w, "%s: ROLLBACK at %s (%s phase, %s after the start) — firing: %v\n", head, r.RollbackAt.Format(time.RFC3339), r.Phase, r.RollbackAt.Sub(r.Start), r.Firing)
		case backtest.SharedIncident:
			fmt.Fprintf(w, "%s: SHARED INCIDENT — not rolled back\n", head)
			for _, s := range r.Shared {
				fmt.Fprintf(w, "  %s … %s %s: the same degradation in %s (%d evaluations)\n", s.From.Format(time.RFC3339), s.To.Format(time.TimeOnly), s.Trigger, strings.Join(s.Peers, ", "), s.Evaluations)
			}
		case backtest.Inconclusive:
			fmt.Fprintf(w, "%s: INCONCLUSIVE — %s\n", head, orDefault(r.Reason, "some triggers have no data or their queries fail"))
		default:
			fmt.Fprintf(w, "%s: HEALTHY\n", head)
		}
		if r.Evaluations == 0 {
			continue
		}
		line := fmt.Sprintf("  %d evaluations", r.Evaluations)
		if r.Completed != nil {
			line += fmt.Sprintf("; previous revision stopped serving at %s, watched until %s", r.Completed.Format(time.RFC3339), r.Ends.Format(time.RFC3339))
		}
		switch r.Cut {
		case "range":
			line += "; the range ends before the watch does"
		case "superseded":
			line += "; superseded by a newer rollout"
		}
		fmt.Fprintln(w, line)
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func values(c, b *float64) string {
	s := ""
	if c != nil {
		s += fmt.Sprintf("  canary=%.4g", *c)
	}
	if b != nil {
		s += fmt.Sprintf("  baseline=%.4g", *b)
	}
	return s
}

func reason(r string) string {
	if r == "" {
		return ""
	}
	return "  (" + r + ")"
}
