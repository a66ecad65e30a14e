package verify

import (
	"context"
	"errors"
	"fmt"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
)

// Drain is the drain step: it runs Route (the traffic executor: Istio, the
// demo's router, exec, webhook; nil when none is configured) and then waits
// until the canary's request rate is below the threshold. An empty result
// reads as drained (no canary series left); a drain that is not confirmed
// within the bound escalates without stopping the rollback.
type Drain struct {
	Route  rewind.Executor
	Source rewind.Source
	Drain  policy.Drain
	Now    func() time.Time
	Poll   time.Duration
}

var _ rewind.Executor = (*Drain)(nil)

func (d *Drain) Plan(ctx context.Context, rb *rewind.Rollback) ([]rewind.Change, error) {
	var out []rewind.Change
	if d.Route != nil {
		ch, err := d.Route.Plan(ctx, rb)
		if err != nil {
			return nil, err
		}
		out = append(out, ch...)
	}
	return append(out, rewind.Change{Target: "metrics", Action: "wait",
		Detail: fmt.Sprintf("until %s < %g, at most %s", d.Drain.Query, d.Drain.Below, d.Drain.Within)}), nil
}

func (d *Drain) Do(ctx context.Context, rb *rewind.Rollback) (rewind.StepResult, error) {
	now := clock(d.Now)
	var res rewind.StepResult
	if d.Route != nil {
		var err error
		if res, err = d.Route.Do(ctx, rb); err != nil {
			return res, err
		}
	}
	if res.Facts == nil {
		res.Facts = map[string]string{}
	}
	var last float64
	waited, ok, err := waitFor(ctx, now, d.Drain.Within, poll(d.Poll), func(at time.Time) (bool, error) {
		v, err := value(ctx, d.Source, d.Drain.Query, at)
		if errors.Is(err, errNoData) {
			return true, nil
		}
		last = v
		return err == nil && v < d.Drain.Below, err
	})
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	res.Facts["drainSeconds"] = fmt.Sprintf("%.3f", waited.Seconds())
	if !ok {
		res.Escalate = true
		res.Detail = join(res.Detail, fmt.Sprintf("canary traffic not confirmed drained within %s (last %.3g req/s; %v)", d.Drain.Within, last, err))
		return res, nil
	}
	res.Detail = join(res.Detail, fmt.Sprintf("canary traffic below %g req/s after %s", d.Drain.Below, fmtDur(waited)))
	return res, nil
}

// Baseline is the check-baseline step: the verify condition on the baseline,
// once, now. An unhealthy or unreadable baseline escalates; it never stops
// the rollback.
type Baseline struct {
	Source rewind.Source
	Verify policy.Verify
	Now    func() time.Time
}

var _ rewind.Executor = (*Baseline)(nil)

func (b *Baseline) Plan(context.Context, *rewind.Rollback) ([]rewind.Change, error) {
	return []rewind.Change{{Target: "metrics", Action: "read", Detail: fmt.Sprintf("baseline %s must satisfy %s", b.Verify.Query, b.Verify.Condition)}}, nil
}

func (b *Baseline) Do(ctx context.Context, _ *rewind.Rollback) (rewind.StepResult, error) {
	v, err := value(ctx, b.Source, b.Verify.Query, clock(b.Now)())
	if ctx.Err() != nil {
		return rewind.StepResult{}, ctx.Err()
	}
	if err != nil {
		return rewind.StepResult{Escalate: true, Detail: "baseline health unknown: " + err.Error()}, nil
	}
	facts := map[string]string{"baseline": fmt.Sprintf("%.6g", v)}
	ok, err := b.Verify.Holds(v)
	switch {
	case err != nil:
		return rewind.StepResult{Escalate: true, Detail: "baseline condition: " + err.Error(), Facts: facts}, nil
	case !ok:
		return rewind.StepResult{Escalate: true, Detail: fmt.Sprintf("baseline unhealthy during the rollback: %.4g does not satisfy %s", v, b.Verify.Condition), Facts: facts}, nil
	}
	return rewind.StepResult{Detail: fmt.Sprintf("baseline healthy: %.4g satisfies %s", v, b.Verify.Condition), Facts: facts}, nil
}

func clock(now func() time.Time) func() time.Time {
	if now == nil {
		return time.Now
	}
	return now
}

func poll(p time.Duration) time.Duration {
	if p <= 0 {
		return defaultPoll
	}
	return p
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
