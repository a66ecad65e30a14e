package router

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

// Drain is the rollback plan's drain step on the demo's router, as the
// Istio executor drains a VirtualService: the canary's weight goes to the
// baseline (canary 0, baseline 100). Requests already routed to the canary
// finish there. It is skipped when the canary's weight is already 0.
// Confirming that the canary's traffic stopped is not its job: the plan's
// drain step (verify.Drain) watches the canary's request rate after it.
type Drain struct{ Router *Router }

var _ rewind.Executor = Drain{}

func (d Drain) Plan(context.Context, *rewind.Rollback) ([]rewind.Change, error) {
	if d.Router == nil {
		return nil, errors.New("drain: no router")
	}
	b, c := d.Router.Weights()
	if c == 0 {
		return nil, nil
	}
	return []rewind.Change{{Target: d.target(), Action: "set weights",
		Detail: fmt.Sprintf("route canary %d → 0, baseline %d → 100", c, b)}}, nil
}

func (d Drain) Do(ctx context.Context, _ *rewind.Rollback) (rewind.StepResult, error) {
	if err := ctx.Err(); err != nil {
		return rewind.StepResult{}, err
	}
	if d.Router == nil {
		return rewind.StepResult{}, errors.New("drain: no router")
	}
	from := d.Router.drain()
	if from == 0 {
		return rewind.StepResult{Skipped: true, Detail: d.target() + " already drained: baseline 100, canary 0"}, nil
	}
	return rewind.StepResult{
		Detail: fmt.Sprintf("drained %s: canary %d → 0, baseline %d → 100", d.target(), from, 100-from),
		Facts:  map[string]string{"fromCanaryWeight": strconv.Itoa(from), "drainedAt": time.Now().UTC().Format(time.RFC3339Nano)},
	}, nil
}

func (d Drain) target() string { return "router " + d.Router.Addr() }
