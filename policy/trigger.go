package policy

import (
	"fmt"
	"regexp"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

func (c *compiler) trigger(path string, s *triggerSpec, sys *System) *Trigger {
	t := &Trigger{
		Name: s.Name, Condition: s.Condition, Severity: "critical",
		Action: rewind.ActionRollback, OnNoData: NoDataIgnore, Guarded: true,
	}
	if !nameRE.MatchString(s.Name) {
		c.errf(path+".name", "must be a lowercase name of letters, digits, '-', '.', '_' (got %q)", s.Name)
	}
	if s.For != nil {
		if t.For = time.Duration(*s.For); t.For < 0 {
			c.errf(path+".for", "must not be negative")
		}
	}
	if s.Severity != "" {
		t.Severity = s.Severity
	}
	if !oneOf(t.Severity, "critical", "error", "warning", "info") {
		c.errf(path+".severity", "must be critical, error, warning or info, not %q", s.Severity)
	}
	if s.Action != "" {
		t.Action = rewind.Action(s.Action)
	}
	if t.Action != rewind.ActionRollback && t.Action != rewind.ActionNotify {
		c.errf(path+".action", "must be rollback or notify, not %q", s.Action)
	}
	if s.OnNoData != "" {
		t.OnNoData = OnNoData(s.OnNoData)
	}
	if t.OnNoData != NoDataIgnore && t.OnNoData != NoDataFire {
		c.errf(path+".onNoData", "must be ignore or fire, not %q", s.OnNoData)
	}

	forms := 0
	for _, set := range []bool{s.Query != "", s.Canary != "" || s.Baseline != "", s.Expr != "", s.Judge != nil, s.Probe != nil} {
		if set {
			forms++
		}
	}
	if forms != 1 {
		c.errf(path, "a trigger has exactly one of query, canary (+ baseline), expr, judge or probe")
		return t
	}
	switch {
	case s.Query != "":
		c.queryForm(path, s, sys, t)
	case s.Canary != "" || s.Baseline != "":
		c.explicitForm(path, s, t)
	case s.Expr != "":
		c.exprForm(path, s, sys, t)
	case s.Probe != nil:
		c.probeForm(path, s, t)
	default:
		c.judgeForm(path, s, sys, t)
	}
	return t
}

func (c *compiler) queryForm(path string, s *triggerSpec, sys *System, t *Trigger) {
	t.Form = FormQuery
	if !hasPlaceholder(s.Query) {
		c.errf(path+".query", "the query form needs {{selector}} where the canary or baseline matchers go (or use the explicit canary/baseline form)")
	} else {
		t.Canary, t.Baseline = resolve(s.Query, sys.CanarySelector), resolve(s.Query, sys.BaselineSelector)
		if _, err := checkPromQL(t.Canary); err != nil {
			c.errf(path+".query", "%v", err)
		}
	}
	c.condition(path, s.Condition, t, true)
}

func (c *compiler) explicitForm(path string, s *triggerSpec, t *Trigger) {
	t.Form, t.Canary, t.Baseline = FormExplicit, s.Canary, s.Baseline
	if s.Canary == "" {
		c.errf(path+".canary", "required in the explicit form (baseline alone is not a trigger)")
	} else if _, err := checkPromQL(s.Canary); err != nil {
		c.errf(path+".canary", "%v", err)
	}
	if s.Baseline != "" {
		if _, err := checkPromQL(s.Baseline); err != nil {
			c.errf(path+".baseline", "%v", err)
		}
	}
	c.condition(path, s.Condition, t, s.Baseline != "")
}

func (c *compiler) condition(path, cond string, t *Trigger, haveBaseline bool) {
	if cond == "" {
		c.errf(path+".condition", "required: a CEL expression over canary and baseline, e.g. canary > baseline * 1.5")
		return
	}
	prg, usesBaseline, err := compileCondition(cond)
	switch {
	case err != nil:
		c.errf(path+".condition", "%v", err)
	case usesBaseline && !haveBaseline:
		c.errf(path+".condition", "refers to baseline, but the trigger has no baseline query")
	}
	t.program = prg
}

func (c *compiler) exprForm(path string, s *triggerSpec, sys *System, t *Trigger) {
	t.Form, t.Expr, t.Guarded = FormExpr, resolve(s.Expr, sys.CanarySelector), false
	if s.Condition != "" {
		c.errf(path+".condition", "not used by the expr form: the trigger holds while the PromQL returns a sample")
	}
	expr, err := checkPromQL(t.Expr)
	if err != nil {
		c.errf(path+".expr", "%v", err)
		return
	}
	t.Alert = splitAlert(expr)
}

func (c *compiler) judgeForm(path string, s *triggerSpec, sys *System, t *Trigger) {
	t.Form = FormJudge
	jp := path + ".judge"
	js := s.Judge
	if s.Condition != "" {
		c.errf(path+".condition", "not used by the judge form: it holds when the test is significant and the effect reaches minEffect")
	}
	j := &Judge{Test: js.Test, Alpha: 0.001, Direction: "increase", MinEffect: 1}
	t.Judge = j
	if js.Alpha != nil {
		if j.Alpha = *js.Alpha; j.Alpha <= 0 || j.Alpha >= 0.5 {
			c.errf(jp+".alpha", "must be in (0, 0.5)")
		}
	}
	if js.Direction != "" {
		j.Direction = js.Direction
	}
	if !oneOf(j.Direction, "increase", "decrease") {
		c.errf(jp+".direction", "must be increase or decrease, not %q", js.Direction)
	}
	if js.MinEffect != nil {
		if j.MinEffect = *js.MinEffect; j.MinEffect <= 0 {
			c.errf(jp+".minEffect", "must be positive")
		}
	}
	side := func(field, tmpl string) (string, string) {
		if tmpl == "" {
			c.errf(jp+"."+field, "required by test %s", js.Test)
			return "", ""
		}
		if !hasPlaceholder(tmpl) {
			c.errf(jp+"."+field, "needs {{selector}} where the canary or baseline matchers go")
			return "", ""
		}
		cq, bq := resolve(tmpl, sys.CanarySelector), resolve(tmpl, sys.BaselineSelector)
		if _, err := checkPromQL(cq); err != nil {
			c.errf(jp+"."+field, "%v", err)
		}
		return cq, bq
	}
	switch js.Test {
	case "proportion":
		j.Canary.Bad, j.Baseline.Bad = side("bad", js.Bad)
		j.Canary.Total, j.Baseline.Total = side("total", js.Total)
		if js.Buckets != "" || js.Quantile != nil {
			c.errf(jp, "buckets and quantile belong to test latency")
		}
		if js.Above != nil {
			j.Above = js.Above
			j.Baseline = JudgeQueries{}
			if *js.Above <= 0 || *js.Above >= 1 {
				c.errf(jp+".above", "must be a proportion in (0, 1)")
			}
			if js.MinEffect != nil {
				c.errf(jp+".minEffect", "not used with above (a one-sample test against a fixed proportion)")
			}
		}
	case "latency":
		j.Canary.Buckets, j.Baseline.Buckets = side("buckets", js.Buckets)
		j.Quantile = 0.99
		if js.Quantile != nil {
			if j.Quantile = *js.Quantile; j.Quantile <= 0 || j.Quantile >= 1 {
				c.errf(jp+".quantile", "must be in (0, 1)")
			}
		}
		if js.Bad != "" || js.Total != "" || js.Above != nil {
			c.errf(jp, "bad, total and above belong to test proportion")
		}
		if j.Direction != "increase" {
			c.errf(jp+".direction", "test latency judges slower canaries only (direction: increase)")
		}
	default:
		c.errf(jp+".test", "must be proportion or latency, not %q", js.Test)
	}
	if js.Sequential != nil && *js.Sequential {
		c.sequential(jp, j, sys.Interval)
	}
}

// sequential derives the interval count queries of a sequential judge from
// its window queries (stepQuery), the interval being the system's.
func (c *compiler) sequential(jp string, j *Judge, interval time.Duration) {
	j.Sequential, j.Step = true, interval
	// Both sides come from one template: an error is reported once.
	step := func(field, canary, baseline string) (string, string) {
		if canary == "" {
			return "", ""
		}
		cs, w, err := stepQuery(canary, interval)
		if err != nil {
			c.errf(jp+"."+field, "%v", err)
			return "", ""
		}
		j.Window = max(j.Window, w)
		if baseline == "" {
			return cs, ""
		}
		bs, _, err := stepQuery(baseline, interval)
		if err != nil {
			c.errf(jp+"."+field, "%v", err)
		}
		return cs, bs
	}
	j.Canary.BadStep, j.Baseline.BadStep = step("bad", j.Canary.Bad, j.Baseline.Bad)
	j.Canary.TotalStep, j.Baseline.TotalStep = step("total", j.Canary.Total, j.Baseline.Total)
	j.Canary.BucketsStep, j.Baseline.BucketsStep = step("buckets", j.Canary.Buckets, j.Baseline.Buckets)
}

func (c *compiler) probeForm(path string, s *triggerSpec, t *Trigger) {
	t.Form, t.Guarded = FormProbe, false
	pp, ps := path+".probe", s.Probe
	if s.Condition != "" {
		c.errf(path+".condition", "not used by the probe form: it holds while the health check fails")
	}
	p := &Probe{URL: ps.URL, ExpectStatus: ps.ExpectStatus, Timeout: 5 * time.Second}
	t.Probe = p
	if err := checkURL(ps.URL, urlEndpoint, "a probe sends no credentials"); err != nil {
		c.errf(pp+".url", "%v", err)
	}
	for i, code := range ps.ExpectStatus {
		if code < 100 || code > 599 {
			c.errf(fmt.Sprintf("%s.expectStatus[%d]", pp, i), "%d is not an HTTP status", code)
		}
	}
	if ps.Timeout != nil {
		if p.Timeout = time.Duration(*ps.Timeout); p.Timeout <= 0 {
			c.errf(pp+".timeout", "must be positive")
		}
	}
	if ps.MaxLatency != nil {
		p.MaxLatency = time.Duration(*ps.MaxLatency)
		if p.MaxLatency <= 0 || p.MaxLatency > p.Timeout {
			c.errf(pp+".maxLatency", "must be positive and at most the timeout (%s)", p.Timeout)
		}
	}
	if ps.BodyMatch != "" {
		re, err := regexp.Compile(ps.BodyMatch)
		if err != nil {
			c.errf(pp+".bodyMatch", "%v", err)
		}
		p.BodyMatch = re
	}
}
