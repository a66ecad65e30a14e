package montecarlo

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Markdown writes the results as markdown, the judges side by side: the
// false rollbacks of healthy canaries (per canary-hour and per 4-hour life,
// with 95 % intervals), the time from fault to rollback, and each judge's
// bars (checked with the slack of a small sample when slack is set).
func (r *Results) Markdown(w io.Writer, slack bool) error {
	var b strings.Builder
	o := r.Options
	fmt.Fprintf(&b, "Monte Carlo of the judges under the seed's hold times: %d replays (scenario → embedded TSDB → backtest), seed %d, %d workers, %s.\n", r.Replays, o.Seed, o.workers(), r.Elapsed.Round(100*time.Millisecond))
	fmt.Fprintf(&b, "Reference system: baseline 2 pods at 20 req/s, canary 1 pod; 0.5 %% errors on both sides unless stated; 15 s scrapes, 30 s evaluations; the first %s of each history (window warm-up) is not replayed.\n\n", fmtDuration(WarmUp))

	b.WriteString("### False rollbacks of healthy canaries\n\n")
	fmt.Fprintf(&b, "Canaries as good as their baseline, each monitored every 30 s for a %s life; every rollback episode counts. Intervals: 95 %% (exact Poisson per canary-hour, Clopper–Pearson per life).\n\n", fmtDuration(Life))
	r.judgeHeader(&b, []string{"canary", "canary-hours"}, "rollbacks", "per canary-hour", "lives rolled back")
	for _, c := range HealthyCases() {
		row := byJudge(r.Judges, r.Healthy, c.Name, func(h HealthyResult) (string, string) { return h.Case.Name, h.Rules })
		if len(row) == 0 {
			continue
		}
		fmt.Fprintf(&b, "| %s | %g |", c.Name, row[0].CanaryHours())
		for _, h := range row {
			rate, lo, hi := h.PerHour()
			share, slo, shi := h.PerLife()
			fmt.Fprintf(&b, " %d%s | %s [%s, %s] | %d/%d = %s [%s, %s] |", h.Rollbacks, triggers(h.ByTrigger),
				sci(rate), sci(lo), sci(hi), h.RolledBack, h.Lives, pct(share), pct(slo), pct(shi))
		}
		b.WriteString("\n")
	}

	b.WriteString("\n### Time from fault to rollback\n\n")
	fmt.Fprintf(&b, "The fault starts %s after the warm-up, at a random second of an evaluation interval; a run not rolled back within %s of it is missed (and counts as never in the quantiles). Bar: the median at most the seed's hold (%s) plus 2 min at ≥ 5 req/s, 5 min at 1–2 req/s, 10 min at 0.2 req/s; none missed.\n\n", fmtDuration(Settle), fmtDuration(Horizon), fmtDuration(SeedHold))
	r.judgeHeader(&b, []string{"fault", "runs", "bar (median)"}, "median", "p90", "missed")
	for _, c := range FaultCases() {
		row := byJudge(r.Judges, r.Faults, c.Name, func(f FaultResult) (string, string) { return f.Case.Name, f.Rules })
		if len(row) == 0 {
			continue
		}
		fmt.Fprintf(&b, "| %s | %d | ≤ %s |", c.Name, row[0].Runs, fmtDuration(c.Within))
		for _, f := range row {
			med, okM := f.Median()
			p90, ok90 := f.Quantile(0.9)
			early := ""
			if f.Early > 0 {
				early = fmt.Sprintf(" (%d early)", f.Early)
			}
			fmt.Fprintf(&b, " %s | %s | %d%s |", mark(fmtMedian(med, okM), okM && med <= c.Within), fmtMedian(p90, ok90), f.Missed, early)
		}
		b.WriteString("\n")
	}
	b.WriteString("\nFirst firing triggers (all runs):\n\n")
	for _, f := range r.Faults {
		fmt.Fprintf(&b, "- %s, %s: %s\n", f.Case.Name, f.Rules, byTrigger(f.ByTrigger))
	}

	mode := "point estimates"
	if slack {
		mode = "with the slack of a small sample"
	}
	for _, j := range r.Judges {
		if j == seedName {
			continue
		}
		ok, missed := r.Passes(j, slack)
		verdict := "meets every bar"
		switch {
		case !ok:
			verdict = fmt.Sprintf("misses %d bars, some within reach", missed)
		case missed > 0:
			verdict = fmt.Sprintf("meets every bar within reach; misses %d out of reach", missed)
		}
		fmt.Fprintf(&b, "\n### Bars: %s judge (%s): %s\n\n| bar | measured | |\n|---|---|---|\n", j, mode, verdict)
		for _, v := range r.Verdicts(j, slack) {
			word := passWord(v.Pass)
			if !v.Pass && v.OutOfReach != "" {
				word = "missed, out of reach: " + v.OutOfReach
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", v.Bar, v.Measured, word)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// judgeHeader writes the header of a table of the judges side by side: the
// columns lead (the first one text, the others numbers), then the numbers
// cols for each judge.
func (r *Results) judgeHeader(b *strings.Builder, lead []string, cols ...string) {
	b.WriteString("| " + strings.Join(lead, " | ") + " |")
	for _, j := range r.Judges {
		b.WriteString(" " + j + ": " + strings.Join(cols, " | ") + " |")
	}
	b.WriteString("\n|---|" + strings.Repeat("--:|", len(lead)-1+len(cols)*len(r.Judges)) + "\n")
}

// byJudge is a table's row: the results of the case named name, in the
// order of the judges; key gives a result's case and judge.
func byJudge[T any](judges []string, results []T, name string, key func(T) (name, judge string)) []T {
	var out []T
	for _, j := range judges {
		for _, x := range results {
			if n, rules := key(x); n == name && rules == j {
				out = append(out, x)
			}
		}
	}
	return out
}

func passWord(ok bool) string {
	if ok {
		return "pass"
	}
	return "**FAIL**"
}

// mark bolds a value that misses its bar.
func mark(s string, ok bool) string {
	if ok {
		return s
	}
	return "**" + s + "**"
}

func triggers(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	return " (" + byTrigger(m) + ")"
}

func byTrigger(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func sci(v float64) string {
	if v == 0 {
		return "0"
	}
	return fmt.Sprintf("%.2g", v)
}

func pct(v float64) string {
	if v == 0 {
		return "0 %"
	}
	return fmt.Sprintf("%.2g %%", 100*v)
}

// fmtDuration writes d to the second, without a zero seconds part (4m, 7m33s).
func fmtDuration(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	return strings.Replace(s, "h0m", "h", 1)
}

func fmtMedian(d time.Duration, ok bool) string {
	if !ok {
		return "never"
	}
	return fmtDuration(d)
}
