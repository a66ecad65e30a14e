package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/executor/exec"
	"github.com/rewind-sre/rewind/executor/webhook"
	"github.com/rewind-sre/rewind/policy"
)

// Platform is what a rollback changes on one system: an executor per plan
// step and the fence on the target.
//
//   - drain: the traffic change (Istio, the demo's router, exec, webhook);
//     the daemon runs it and then waits for the canary's traffic to fall
//     (verify.Drain);
//   - evidence: what the platform adds to the bundle (logs, objects,
//     events); the daemon adds the metrics and the index after it;
//   - undo, scale-down, and any other step of rewind.PlanSteps: run as
//     they are.
//
// check-baseline and verify are the daemon's own (metrics) steps.
type Platform struct {
	Executors map[rewind.StepName]rewind.Executor
	// Fence makes the rollback exactly-once across processes; nil: the
	// store's check only.
	Fence rewind.Fence
}

// Env is what a PlatformFunc may use.
type Env struct {
	EvidenceDir string // the parent directory of evidence bundles
	Now         func() time.Time
	Log         *slog.Logger
	// Kube returns the Kubernetes connection of a kubeconfig path ("" :
	// in-cluster, else the usual kubeconfig rules), shared by every system
	// of a policy and reported in /readyz. It never fails: a cluster that
	// is not configured or not reachable fails the steps that use it.
	Kube func(kubeconfig string) *Kube
}

// PlatformFunc builds one part of a system's platform from the policy: the
// daemon merges the parts of every PlatformFunc in Options.Platforms. It
// must not contact anything: a platform that is unreachable now fails the
// steps that need it when they run (and shows in /readyz), it does not
// stop the daemon. An error is a configuration error: the policy is
// refused. A system whose parts are all empty has no executor.
type PlatformFunc func(sys *policy.System, env Env) (Platform, error)

// PolicyPlatform is the platform the policy's rollback section names:
// Kubernetes (undo, scale-down, evidence, fence) and Istio (drain) through
// client-go, and the generic exec and webhook executors per step.
func PolicyPlatform(sys *policy.System, env Env) (Platform, error) {
	rb := sys.Rollback
	p := Platform{Executors: map[rewind.StepName]rewind.Executor{}}
	if k := rb.Kubernetes; k != nil {
		t := env.Kube(k.Kubeconfig).Target(*k, env.EvidenceDir, rb.Evidence.LogTailLines, env.Now)
		p.Executors[rewind.StepUndo] = t.step(rewind.StepUndo)
		p.Executors[rewind.StepScaleDown] = t.step(rewind.StepScaleDown)
		p.Executors[rewind.StepEvidence] = t.step(rewind.StepEvidence)
		p.Fence = t.fence()
	}
	if i := rb.Istio; i != nil {
		var kubeconfig string
		if rb.Kubernetes != nil {
			kubeconfig = rb.Kubernetes.Kubeconfig
		}
		p.Executors[rewind.StepDrain] = env.Kube(kubeconfig).Drain(*i)
	}
	add := func(step string, ex rewind.Executor) {
		name := rewind.StepName(step)
		if prev := p.Executors[name]; prev != nil && name == rewind.StepEvidence {
			ex = Sequence{prev, ex}
		}
		p.Executors[name] = ex
	}
	for _, step := range slices.Sorted(maps.Keys(rb.Exec)) {
		e := rb.Exec[step]
		add(step, &exec.Executor{Step: rewind.StepName(step), Command: e.Command, Timeout: e.Timeout, EvidenceDir: env.EvidenceDir})
	}
	for _, step := range slices.Sorted(maps.Keys(rb.Webhook)) {
		add(step, &webhook.Executor{Step: rewind.StepName(step), Hook: rb.Webhook[step]})
	}
	return p, nil
}

// merge combines the parts of a system's platform: one executor per step,
// except evidence, whose parts run in order; at most one fence.
func merge(parts []Platform) (Platform, error) {
	out := Platform{Executors: map[rewind.StepName]rewind.Executor{}}
	for _, p := range parts {
		for step, ex := range p.Executors {
			if ex == nil {
				continue
			}
			prev := out.Executors[step]
			switch {
			case prev == nil:
				out.Executors[step] = ex
			case step == rewind.StepEvidence:
				out.Executors[step] = Sequence{prev, ex}
			default:
				return Platform{}, fmt.Errorf("step %s has two executors", step)
			}
		}
		if p.Fence != nil {
			if out.Fence != nil {
				return Platform{}, fmt.Errorf("two fences for one target")
			}
			out.Fence = p.Fence
		}
	}
	return out, nil
}

// empty reports whether the platform changes nothing.
func (p Platform) empty() bool { return len(p.Executors) == 0 }

// Sequence runs executors in order as one step; nil entries are left out.
// The step is skipped only when every part skipped.
type Sequence []rewind.Executor

var _ rewind.Executor = Sequence(nil)

func (s Sequence) Plan(ctx context.Context, rb *rewind.Rollback) ([]rewind.Change, error) {
	var out []rewind.Change
	for _, e := range s {
		if e == nil {
			continue
		}
		ch, err := e.Plan(ctx, rb)
		if err != nil {
			return out, err
		}
		out = append(out, ch...)
	}
	return out, nil
}

func (s Sequence) Do(ctx context.Context, rb *rewind.Rollback) (rewind.StepResult, error) {
	out := rewind.StepResult{Skipped: true, Facts: map[string]string{}}
	for _, e := range s {
		if e == nil {
			continue
		}
		r, err := e.Do(ctx, rb)
		if err != nil {
			return out, err
		}
		out.Skipped = out.Skipped && r.Skipped
		out.Escalate = out.Escalate || r.Escalate
		if r.Detail != "" {
			if out.Detail != "" {
				out.Detail += "; "
			}
			out.Detail += r.Detail
		}
		maps.Copy(out.Facts, r.Facts)
	}
	return out, nil
}
