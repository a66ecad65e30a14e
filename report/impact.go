package report

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
)

// FirstSeenLookback is how far before the decision EstimateImpact looks for
// the canary's first traffic.
const FirstSeenLookback = 6 * time.Hour

// Impact is what an incident cost, estimated from the metrics source: the
// window from the first violating sample until the canary was drained, the
// canary's and the baseline's request and error rates at the decision, and
// when the canary first took traffic. Nil values are unknown; Notes say why.
type Impact struct {
	From, To          time.Time
	CanaryRate        *float64 // requests per second
	BaselineRate      *float64
	CanaryErrorRate   *float64 // failed / all requests
	BaselineErrorRate *float64
	// CanaryFirstSeen is the first canary traffic within FirstSeenLookback
	// (zero: unknown); FirstSeenBefore says it had traffic from the start of
	// the lookback, so it was first seen earlier still.
	CanaryFirstSeen time.Time
	FirstSeenBefore bool
	// Thresholds maps each trigger to what it was held against, from the
	// policy (see Thresholds): the decision record keeps values, not
	// conditions.
	Thresholds map[string]string
	Notes      []string
}

// Duration is the length of the window.
func (i Impact) Duration() time.Duration {
	if i.From.IsZero() || i.To.Before(i.From) {
		return 0
	}
	return i.To.Sub(i.From)
}

// CanaryShare is the canary's share of all requests.
func (i Impact) CanaryShare() (float64, bool) {
	if i.CanaryRate == nil || i.BaselineRate == nil || *i.CanaryRate+*i.BaselineRate <= 0 {
		return 0, false
	}
	return *i.CanaryRate / (*i.CanaryRate + *i.BaselineRate), true
}

// Requests estimates the requests the canary served in the window.
func (i Impact) Requests() (float64, bool) {
	if i.CanaryRate == nil || i.Duration() <= 0 {
		return 0, false
	}
	return *i.CanaryRate * i.Duration().Seconds(), true
}

// Affected estimates the failed requests in the window: canary traffic
// share × total request rate × canary error rate × duration.
func (i Impact) Affected() (float64, bool) {
	n, ok := i.Requests()
	if !ok || i.CanaryErrorRate == nil {
		return 0, false
	}
	return n * *i.CanaryErrorRate, true
}

// EstimateImpact measures the impact of rb on sys from src. The window runs
// from the first violating sample (the earliest activeAt of the firing
// triggers; the start, for a manual rollback) to the end of the drain step
// (the decision, if the drain did not finish). Request rates come from the
// policy's traffic query, for the canary and (its selector swapped) the
// baseline; error rates from the first judged proportion trigger's bad and
// total counts. What cannot be measured is left nil with a note; the error
// joins the failed queries, and the Impact is usable with it.
func EstimateImpact(ctx context.Context, src rewind.Source, sys *policy.System, rb *rewind.Rollback) (Impact, error) {
	sys = rolloutSystem(sys, rb) // a watch system: the revisions the undo named
	im := Impact{Thresholds: Thresholds(sys)}
	at := rb.Started
	if d := rb.Decision; d != nil {
		at = d.At
		im.From = firstViolation(d)
	}
	if im.From.IsZero() {
		im.From = at
	}
	im.To = at
	if s := rb.Step(rewind.StepDrain); s != nil && (s.State == rewind.StepDone || s.State == rewind.StepSkipped) && !s.Ended.IsZero() {
		im.To = s.Ended
	}

	var errs []error
	q := func(what, query string) *float64 {
		if query == "" {
			return nil
		}
		v, err := scalar(ctx, src, query, at)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
			im.Notes = append(im.Notes, what+": the query failed")
		case v == nil:
			im.Notes = append(im.Notes, what+": no data at the decision")
		}
		return v
	}
	if t := sys.Traffic; t != nil {
		im.CanaryRate = q("canary request rate", t.Query)
		im.BaselineRate = q("baseline request rate", swapSelector(t.Query, sys))
		im.CanaryFirstSeen, im.FirstSeenBefore = firstSeen(ctx, src, sys, t.Query, at, &errs)
		// A violating sample is canary data: the canary was seen by then,
		// whatever the resolution of the traffic query.
		if rb.Decision != nil && !im.CanaryFirstSeen.IsZero() && im.CanaryFirstSeen.After(im.From) {
			im.CanaryFirstSeen = im.From
		}
	} else {
		im.Notes = append(im.Notes, "request rates: the policy has no traffic query")
	}
	if j := proportionJudge(sys); j != nil {
		im.CanaryErrorRate = ratio(q("canary failed requests", j.Canary.Bad), q("canary requests", j.Canary.Total))
		bad, total := j.Baseline.Bad, j.Baseline.Total
		if total == "" {
			bad, total = swapSelector(j.Canary.Bad, sys), swapSelector(j.Canary.Total, sys)
		}
		im.BaselineErrorRate = ratio(q("baseline failed requests", bad), q("baseline requests", total))
	} else {
		im.Notes = append(im.Notes, "error rates: the policy has no judged proportion trigger")
	}
	if im.CanaryErrorRate == nil && rb.Decision != nil {
		if v := recordedErrorRate(rb.Decision); v != nil {
			im.CanaryErrorRate = v
			im.Notes = append(im.Notes, "canary error rate: taken from the decision record")
		}
	}
	if ctx.Err() != nil {
		return im, ctx.Err()
	}
	return im, errors.Join(errs...)
}

// firstViolation is the earliest activeAt of the decision's firing triggers.
func firstViolation(d *rewind.Decision) time.Time {
	var first time.Time
	for _, t := range d.Triggers {
		if t.State == rewind.StateFiring && !t.ActiveAt.IsZero() && (first.IsZero() || t.ActiveAt.Before(first)) {
			first = t.ActiveAt
		}
	}
	return first
}

// scalar sums every series of query at t; nil for no data.
func scalar(ctx context.Context, src rewind.Source, query string, t time.Time) (*float64, error) {
	vec, err := src.Query(ctx, query, t)
	if err != nil {
		return nil, err
	}
	var sum float64
	n := 0
	for _, s := range vec {
		if !math.IsNaN(s.V) && !math.IsInf(s.V, 0) {
			sum, n = sum+s.V, n+1
		}
	}
	if n == 0 {
		return nil, nil
	}
	return &sum, nil
}

func ratio(bad, total *float64) *float64 {
	if total == nil || *total <= 0 {
		return nil
	}
	b := 0.0 // no failed-request series: none failed
	if bad != nil {
		b = *bad
	}
	return rewind.Float(b / *total)
}

// swapSelector resolves a canary-resolved query for the baseline.
func swapSelector(q string, sys *policy.System) string {
	if q == "" || sys.CanarySelector == "" || !strings.Contains(q, sys.CanarySelector) {
		return ""
	}
	return strings.ReplaceAll(q, sys.CanarySelector, sys.BaselineSelector)
}

// proportionJudge is the first judged proportion trigger, preferring one
// with baseline queries.
func proportionJudge(sys *policy.System) *policy.Judge {
	var first *policy.Judge
	for _, t := range sys.Triggers {
		if t.Form != policy.FormJudge || t.Judge == nil || t.Judge.Test != "proportion" || t.Judge.Canary.Total == "" {
			continue
		}
		if t.Judge.Baseline.Total != "" {
			return t.Judge
		}
		if first == nil {
			first = t.Judge
		}
	}
	return first
}

// recordedErrorRate is the canary value a firing proportion trigger saw.
func recordedErrorRate(d *rewind.Decision) *float64 {
	for _, te := range d.Triggers {
		if te.State != rewind.StateFiring || te.Observation.Judge == nil || te.Observation.Judge.Test != "proportion" {
			continue
		}
		if te.Observation.Canary != nil {
			return te.Observation.Canary
		}
	}
	return nil
}

// firstSeen finds the first canary traffic in the lookback before at: a
// coarse pass (steps of at least a minute) over the lookback, then a pass
// at the system's interval over the coarse step before the first hit.
func firstSeen(ctx context.Context, src rewind.Source, sys *policy.System, query string, at time.Time, errs *[]error) (time.Time, bool) {
	rs, ok := src.(rewind.RangeSource)
	if !ok {
		return time.Time{}, false
	}
	step := max(sys.Interval, time.Minute)
	start := at.Add(-FirstSeenLookback)
	first, err := firstPositive(ctx, rs, query, start, at, step)
	if err == nil && !first.IsZero() && first.After(start) && sys.Interval > 0 && sys.Interval < step {
		var fine time.Time
		if fine, err = firstPositive(ctx, rs, query, first.Add(-step), first, sys.Interval); !fine.IsZero() {
			first = fine
		}
	}
	if err != nil {
		*errs = append(*errs, fmt.Errorf("canary first seen: %w", err))
		return time.Time{}, false
	}
	return first, !first.IsZero() && !first.After(start)
}

// firstPositive is the earliest point above zero of query over [from, to].
func firstPositive(ctx context.Context, rs rewind.RangeSource, query string, from, to time.Time, step time.Duration) (time.Time, error) {
	m, err := rs.QueryRange(ctx, query, from, to, step)
	if err != nil {
		return time.Time{}, err
	}
	var first time.Time
	for _, s := range m {
		for _, p := range s.Points {
			if p.V > 0 && (first.IsZero() || p.T.Before(first)) {
				first = p.T
				break
			}
		}
	}
	return first, nil
}
