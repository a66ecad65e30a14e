package verify

import (
	"context"
	"errors"
	"fmt"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/observe"
	"github.com/rewind-sre/rewind/policy"
)

// Validator is the verify step: the post-rollback validator (the policy's
// verify condition must hold on the baseline for verify.for, within
// verify.timeout) and the metrics comparator (every trigger's values before
// the canary started against now). A verification that fails escalates.
type Validator struct {
	Source rewind.Source
	System *policy.System
	Now    func() time.Time
	Poll   time.Duration
	// Before is when the canary was not yet running; zero: one hour before
	// the decision (or before now, for a manual rollback).
	Before time.Time
}

var _ rewind.Executor = (*Validator)(nil)

func (v *Validator) Plan(context.Context, *rewind.Rollback) ([]rewind.Change, error) {
	vf := v.System.Rollback.Verify
	return []rewind.Change{{Target: "metrics", Action: "wait",
		Detail: fmt.Sprintf("until baseline %s satisfies %s for %s, at most %s; then compare every trigger before and after", vf.Query, vf.Condition, vf.For, vf.Timeout)}}, nil
}

func (v *Validator) Do(ctx context.Context, rb *rewind.Rollback) (rewind.StepResult, error) {
	now := clock(v.Now)
	vf := v.System.Rollback.Verify
	var heldSince time.Time
	var last float64
	waited, ok, err := waitFor(ctx, now, vf.Timeout, poll(v.Poll), func(at time.Time) (bool, error) {
		val, err := value(ctx, v.Source, vf.Query, at)
		if err == nil {
			last = val
			var holds bool
			if holds, err = vf.Holds(val); err == nil && holds {
				if heldSince.IsZero() {
					heldSince = at
				}
				return at.Sub(heldSince) >= vf.For, nil
			}
			if err == nil {
				err = fmt.Errorf("%.4g does not satisfy %s", val, vf.Condition)
			}
		}
		heldSince = time.Time{}
		return false, err
	})
	if ctx.Err() != nil {
		return rewind.StepResult{}, ctx.Err()
	}
	res := rewind.StepResult{Facts: map[string]string{"verifySeconds": fmt.Sprintf("%.3f", waited.Seconds()), "baseline": fmt.Sprintf("%.6g", last)}}
	v.compare(ctx, rb, now(), res.Facts)
	if !ok {
		res.Escalate = true
		res.Detail = fmt.Sprintf("verification failed: baseline did not satisfy %s for %s within %s (%v)", vf.Condition, vf.For, vf.Timeout, err)
		if errors.Is(err, rewind.ErrQuery) {
			res.Detail = fmt.Sprintf("verification failed: the metrics source could not be read within %s (%v)", vf.Timeout, err)
		}
		return res, nil
	}
	res.Detail = fmt.Sprintf("verified: baseline satisfied %s for %s (after %s)", vf.Condition, vf.For, fmtDur(waited))
	return res, nil
}

// compare records each trigger's canary and baseline values before the
// canary started and now, as facts "compare/<trigger>".
func (v *Validator) compare(ctx context.Context, rb *rewind.Rollback, now time.Time, facts map[string]string) {
	before := v.Before
	if before.IsZero() {
		before = now.Add(-time.Hour)
		if rb.Decision != nil {
			before = rb.Decision.At.Add(-time.Hour)
		}
	}
	pre := observe.Cycle(ctx, v.Source, v.System, before, 0)
	post := observe.Cycle(ctx, v.Source, v.System, now, 0)
	for i, t := range v.System.Triggers {
		facts["compare/"+t.Name] = fmt.Sprintf("before %s → after %s", pair(pre[i]), pair(post[i]))
	}
}

func pair(o rewind.Observation) string {
	f := func(p *float64) string {
		if p == nil {
			return "—"
		}
		return fmt.Sprintf("%.4g", *p)
	}
	return fmt.Sprintf("canary %s, baseline %s", f(o.Canary), f(o.Baseline))
}
