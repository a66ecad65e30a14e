package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/backtest"
	"github.com/rewind-sre/rewind/daemon"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/source/embedded"
)

func runAnalyze(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "analyze", "--policy FILE [--system S] [--output text|json]")
	file := fs.String("policy", "", "policy file (YAML)")
	system := fs.String("system", "", "only this system (default: every system)")
	output := fs.String("output", "text", "text or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkOutput(*output); err != nil {
		return err
	}
	pol, err := loadPolicy(env, *file)
	if err != nil {
		return err
	}
	if err := needEnvironment(env, pol, policy.Scope{Metrics: true}); err != nil {
		return err
	}
	now := env.Now().UTC().Truncate(time.Second)
	rep := &backtest.Report{To: now}
	for _, sys := range pol.Systems {
		if *system != "" && sys.Name != *system {
			continue
		}
		src, err := daemon.NewPrometheus(sys.Prometheus)
		if err != nil {
			return fmt.Errorf("system %s: %w", sys.Name, err)
		}
		// One instant cannot show a hold time: replay max(for)+interval up to now.
		steps := int(sys.MaxFor()/sys.Interval) + 1
		from := now.Add(-time.Duration(steps) * sys.Interval)
		r, err := backtest.Run(ctx, src, pol, backtest.Options{From: from, To: now, System: sys.Name})
		if err != nil {
			return err
		}
		if rep.From.IsZero() || from.Before(rep.From) {
			rep.From = from
		}
		rep.Systems = append(rep.Systems, r.Systems...)
	}
	if len(rep.Systems) == 0 {
		return fmt.Errorf("no system named %q in %s", *system, pol.File)
	}
	return report(env, rep, *output)
}

func runBacktest(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "backtest", "--policy FILE (--data FILE.om | --prometheus URL) --from T --to T [--step D] [--output text|json]")
	file := fs.String("policy", "", "policy file (YAML)")
	data := fs.String("data", "", "OpenMetrics file with timestamps (as promtool tsdb create-blocks-from openmetrics reads)")
	promURL := fs.String("prometheus", "", "Prometheus HTTP API URL (overrides the policy's); range queries")
	fromS := fs.String("from", "", "start: RFC 3339 or unix seconds")
	toS := fs.String("to", "", "end: RFC 3339 or unix seconds")
	var step policy.Duration
	fs.Func("step", "evaluation step (default: each system's interval)", func(s string) error { return decodeDuration(&step, s) })
	system := fs.String("system", "", "only this system (default: every system)")
	output := fs.String("output", "text", "text or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkOutput(*output); err != nil {
		return err
	}
	if (*data == "") == (*promURL == "") {
		return errors.New("give exactly one of --data FILE or --prometheus URL")
	}
	from, err := parseTime(*fromS)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	to, err := parseTime(*toS)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	pol, err := loadPolicy(env, *file)
	if err != nil {
		return err
	}
	var src rewind.Source
	if *data != "" {
		db, err := embedded.Open(embedded.Options{})
		if err != nil {
			return err
		}
		defer db.Close()
		if err := db.LoadFile(*data); err != nil {
			return err
		}
		src = db
	} else {
		if err := needEnvironment(env, pol, policy.Scope{Metrics: true}); err != nil {
			return err
		}
		var cfg policy.Prometheus
		if s := pol.System(*system); s != nil {
			cfg = s.Prometheus
		} else if len(pol.Systems) > 0 {
			cfg = pol.Systems[0].Prometheus
		}
		cfg.URL = *promURL
		if src, err = daemon.NewPrometheus(cfg); err != nil {
			return err
		}
	}
	rep, err := backtest.Run(ctx, src, pol, backtest.Options{From: from, To: to, Step: time.Duration(step), System: *system, Progress: env.Stderr})
	if err != nil {
		return err
	}
	return report(env, rep, *output)
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
		return fmt.Errorf("--output must be text or json, not %q", o)
	}
	return nil
}

// report prints a replay and turns its decisions into the exit code:
// any rollback → 2, else any inconclusive → 3, else 0.
func report(env *Env, rep *backtest.Report, output string) error {
	if output == "json" {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printText(env.Stdout, rep)
	}
	code := ExitOK
	for _, s := range rep.Systems {
		switch {
		case s.Decision == backtest.Rollback:
			code = ExitRollback
		case s.Decision == backtest.Inconclusive && code == ExitOK:
			code = ExitInconclusive
		}
	}
	if code != ExitOK {
		return exitCode(code)
	}
	return nil
}

func printText(w io.Writer, rep *backtest.Report) {
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
	}
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
