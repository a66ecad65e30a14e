package wire

import (
	"fmt"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/executor/exec"
	"github.com/rewind-sre/rewind/executor/istio"
	"github.com/rewind-sre/rewind/executor/kubernetes"
	"github.com/rewind-sre/rewind/executor/webhook"
	"github.com/rewind-sre/rewind/policy"
)

// platformFromPolicy builds the executors of sys's rollback section:
// Kubernetes and Istio (client configuration from kubernetes.kubeconfig,
// in-cluster when empty) and the generic exec and webhook executors per
// step. Evidence goes to evidenceDir/<rollback id>.
func platformFromPolicy(sys *policy.System, evidenceDir string, now func() time.Time) (Platform, error) {
	rb := sys.Rollback
	if rb.Kubernetes == nil && rb.Istio == nil && len(rb.Exec) == 0 && len(rb.Webhook) == 0 {
		return Platform{}, errNoPlatform
	}
	var p Platform
	if rb.Kubernetes != nil || rb.Istio != nil {
		var kubeconfig string
		if rb.Kubernetes != nil {
			kubeconfig = rb.Kubernetes.Kubeconfig
		}
		cfg, err := kubernetes.RESTConfig(kubeconfig)
		if err != nil {
			return Platform{}, fmt.Errorf("system %s: %w", sys.Name, err)
		}
		if rb.Kubernetes != nil {
			t, err := kubernetes.New(cfg, *rb.Kubernetes, kubernetes.WithEvidence(evidenceDir, rb.Evidence.LogTailLines), kubernetes.WithClock(now))
			if err != nil {
				return Platform{}, err
			}
			p.Undo, p.ScaleDown, p.Evidence, p.Fence = t.Undo(), t.ScaleDown(), t.Evidence(), t.Fence()
		}
		if rb.Istio != nil {
			if p.Route, err = istio.New(cfg, *rb.Istio); err != nil {
				return Platform{}, err
			}
		}
	}
	set := func(step string, ex rewind.Executor) {
		switch step {
		case "drain":
			p.Route = ex
		case "undo":
			p.Undo = ex
		case "scale-down":
			p.ScaleDown = ex
		case "evidence":
			if p.Evidence != nil {
				ex = Sequence{p.Evidence, ex}
			}
			p.Evidence = ex
		}
	}
	for step, e := range rb.Exec {
		set(step, &exec.Executor{Step: rewind.StepName(step), Command: e.Command, Timeout: e.Timeout, EvidenceDir: evidenceDir})
	}
	for step, h := range rb.Webhook {
		set(step, &webhook.Executor{Step: rewind.StepName(step), Hook: h})
	}
	return p, nil
}
