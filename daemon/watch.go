package daemon

import (
	"errors"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/controller"
	"github.com/rewind-sre/rewind/policy"
	rolloutkube "github.com/rewind-sre/rewind/rollout/kubernetes"
	"github.com/rewind-sre/rewind/watch"
)

// watchSteps shapes the plan of a rollout-watch system: its rollback is
// `rollout undo` of the Deployment, so there is no traffic to drain, no
// baseline to check beside the canary (the previous revision comes back
// with the undo) and nothing to scale down. Those steps are skipped as not
// configured; undo, evidence and verify run as for any system.
func watchSteps(ex map[rewind.StepName]rewind.Executor) {
	delete(ex, rewind.StepDrain)
	delete(ex, rewind.StepCheckBaseline)
	delete(ex, rewind.StepScaleDown)
}

// watcherFor builds the live watch of a rollout-watch system: rollouts from
// kube-state-metrics through its metrics source, or from the API server
// (watch.discovery: kubernetes) through the generation's cluster of its
// kubeconfig.
func (d *Daemon) watcherFor(pol *policy.Policy, sys *policy.System, src rewind.Source, reg *watch.Registry) (controller.Watcher, error) {
	var disc watch.Discoverer
	if sys.Watch.Discovery == policy.DiscoveryKubernetes {
		if d.next == nil {
			return nil, errors.New("daemon: no generation being applied")
		}
		var kubeconfig string
		if k := sys.Rollback.Kubernetes; k != nil {
			kubeconfig = k.Kubeconfig
		}
		kd, err := rolloutkube.New(sys, watch.Lookback(sys), d.next.kube(kubeconfig).Config)
		if err != nil {
			return nil, err
		}
		disc = kd
	}
	return watch.NewLive(pol, sys, src, disc, reg)
}
