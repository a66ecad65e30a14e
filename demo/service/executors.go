package service

import (
	"context"
	"errors"
	"fmt"

	rewind "github.com/rewind-sre/rewind"
)

// Undo is the demo's undo step: restart the canary at the baseline's
// release, as `kubectl rollout undo` puts the previous revision back. The
// baseline's release is read when the step runs. It is skipped when the
// canary already runs that release; the restart clears the injected fault
// with the old process (see Service.Restart).
type Undo struct {
	Canary   *Service
	Baseline *Service
}

var _ rewind.Executor = Undo{}

func (u Undo) Plan(context.Context, *rewind.Rollback) ([]rewind.Change, error) {
	if u.Canary == nil || u.Baseline == nil {
		return nil, errors.New("undo: needs the canary and the baseline")
	}
	from, to := u.Canary.Release(), u.Baseline.Release()
	if from == to {
		return nil, nil
	}
	return []rewind.Change{{Target: target(u.Canary), Action: "restart",
		Detail: fmt.Sprintf("restart the canary at the baseline's release: %s → %s", from, to)}}, nil
}

func (u Undo) Do(ctx context.Context, _ *rewind.Rollback) (rewind.StepResult, error) {
	if err := ctx.Err(); err != nil {
		return rewind.StepResult{}, err
	}
	if u.Canary == nil || u.Baseline == nil {
		return rewind.StepResult{}, errors.New("undo: needs the canary and the baseline")
	}
	from, fault, to := u.Canary.Release(), u.Canary.Fault(), u.Baseline.Release()
	facts := map[string]string{"fromRelease": from, "toRelease": to}
	if from == to {
		return rewind.StepResult{Skipped: true, Facts: facts, Detail: "the canary already runs the baseline's release " + to}, nil
	}
	if err := u.Canary.Restart(to); err != nil {
		return rewind.StepResult{}, fmt.Errorf("restarting the canary at %s: %w", to, err)
	}
	res := rewind.StepResult{Facts: facts, Detail: fmt.Sprintf("restarted the canary at the baseline's release %s (was %s, fault %s)", to, from, fault)}
	if !u.Canary.Running() {
		res.Detail += "; it is scaled to zero and stays down"
	}
	return res, nil
}

// ScaleDown is the demo's scale-down step: the canary's process exits
// (Service.Stop), so it answers nothing and its /metrics goes away — its
// series go stale in Prometheus, as a deleted pod's do. The router should
// be drained first: requests it still sends to the canary fail with 502.
// Skipped when the canary is already stopped.
type ScaleDown struct{ Service *Service }

var _ rewind.Executor = ScaleDown{}

func (s ScaleDown) Plan(context.Context, *rewind.Rollback) ([]rewind.Change, error) {
	if s.Service == nil {
		return nil, errors.New("scale-down: no service")
	}
	if !s.Service.Running() {
		return nil, nil
	}
	return []rewind.Change{{Target: target(s.Service), Action: "scale",
		Detail: fmt.Sprintf("replicas 1 → 0: stop the %s's process; its /metrics goes away", s.Service.Version())}}, nil
}

func (s ScaleDown) Do(ctx context.Context, _ *rewind.Rollback) (rewind.StepResult, error) {
	if err := ctx.Err(); err != nil {
		return rewind.StepResult{}, err
	}
	if s.Service == nil {
		return rewind.StepResult{}, errors.New("scale-down: no service")
	}
	v := s.Service.Version()
	if !s.Service.Running() {
		return rewind.StepResult{Skipped: true, Detail: fmt.Sprintf("the %s is already scaled to zero", v)}, nil
	}
	facts := map[string]string{"fromReplicas": "1"}
	if err := s.Service.Stop(ctx); err != nil {
		return rewind.StepResult{Facts: facts}, err
	}
	return rewind.StepResult{Facts: facts, Detail: fmt.Sprintf("scaled the %s to zero: its process stopped", v)}, nil
}

// target names a service in a plan's changes.
func target(s *Service) string { return "service " + s.Version() + " at " + s.Addr() }
