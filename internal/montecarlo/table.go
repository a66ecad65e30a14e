package montecarlo

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Markdown writes the results as markdown: the false rollbacks of the
// healthy cases, the detection of the faults, and the default policy's
// bars checked without slack, unless slack is set.
func (r *Results) Markdown(w io.Writer, slack bool) error {
	var b strings.Builder
	o := r.Options
	fmt.Fprintf(&b, "Monte Carlo of the judge's quality bars: %d replays (scenario → embedded TSDB → backtest), seed %d, %d workers, %s.\n", r.Replays, o.Seed, o.workers(), r.Elapsed.Round(100*time.Millisecond))
	fmt.Fprintf(&b, "Reference system: baseline 2 pods at 20 req/s, canary 1 pod; 0.5 %% errors on both sides unless stated; 15 s scrapes, 30 s evaluations; the first %s of each history (window warm-up) is not replayed.\n\n", fmtDuration(WarmUp))

	b.WriteString("### False rollbacks of healthy canaries\n\n")
	fmt.Fprintf(&b, "Independent canary-hours after the warm-up; every rollback episode counts. Bar: ≤ %g %% of canary-hours.\n\n", 100*FalseRollbackBar)
	b.WriteString("| canary | policy | canary-hours | rollbacks | per canary-hour | hours with a rollback | by trigger |\n|---|---|--:|--:|--:|--:|---|\n")
	for _, h := range r.Healthy {
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %.1f %% | %d | %s |\n", h.Case.Name, h.Rules, h.CanaryHours, h.Rollbacks, 100*h.PerHour(), h.RolledBack, byTrigger(h.ByTrigger))
	}

	b.WriteString("\n### Time from fault to rollback\n\n")
	fmt.Fprintf(&b, "The fault starts %s after the warm-up, at a random second of an evaluation interval; a run not rolled back within %s of it is missed (and counts as never in the quantiles). Early: rolled back before the fault.\n\n", fmtDuration(Settle), fmtDuration(Horizon))
	b.WriteString("| fault | policy | runs | median | p90 | max | missed | early | bar (median) | by trigger |\n|---|---|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, f := range r.Faults {
		med, okM := f.Median()
		p90, ok90 := f.Quantile(0.9)
		mx, okX := f.Quantile(1)
		bar := "rolled back"
		if f.Case.Within > 0 {
			bar = "≤ " + fmtDuration(f.Case.Within)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %d | %d | %s | %s |\n", f.Case.Name, f.Rules, f.Runs,
			fmtMedian(med, okM), fmtMedian(p90, ok90), fmtMedian(mx, okX), f.Missed, f.Early, bar, byTrigger(f.ByTrigger))
	}

	mode := "point estimates"
	if slack {
		mode = "with the slack of a small sample"
	}
	fmt.Fprintf(&b, "\n### Bars (default policy, %s)\n\n| bar | measured | |\n|---|---|---|\n", mode)
	for _, v := range r.Verdicts(slack) {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", v.Bar, v.Measured, passWord(v.Pass))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func passWord(ok bool) string {
	if ok {
		return "pass"
	}
	return "**FAIL**"
}

func byTrigger(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
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
