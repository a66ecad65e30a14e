package daemon

import (
	"sync"
	"time"

	"k8s.io/client-go/dynamic"

	"github.com/rewind-sre/rewind/gitops"
	"github.com/rewind-sre/rewind/policy"
)

// DefaultPlatforms are the platforms of a policy when Options.Platforms is
// empty: the policy's executors and its GitOps steps.
var DefaultPlatforms = []PlatformFunc{PolicyPlatform, GitOpsPlatform}

// GitOpsPlatform adds the GitOps steps of rollback.gitops (docs/gitops.md):
// suspend-gitops, which suspends the Flux or Argo CD owner of the canary
// before any other step changes the cluster, and git-revert, which proposes
// the revert in Git. A system with `gitops: none`, or without a Kubernetes
// target or a named owner, gets neither. The cluster is the one of
// rollback.kubernetes.kubeconfig, connected when a step first needs it.
func GitOpsPlatform(sys *policy.System, env Env) (Platform, error) {
	s := GitOpsSystem(sys, env.Kube)
	if s == nil {
		return Platform{}, nil
	}
	return Platform{Executors: s.Executors()}, nil
}

// GitOpsSystem is sys's GitOps configuration on the cluster that kube
// returns for the system's kubeconfig (for resume-gitops, the API and
// analyze); nil when the system has none.
func GitOpsSystem(sys *policy.System, kube func(kubeconfig string) *Kube) *gitops.System {
	var kubeconfig string
	if k := sys.Rollback.Kubernetes; k != nil {
		kubeconfig = k.Kubeconfig
	}
	k := kube(kubeconfig)
	var (
		mu  sync.Mutex
		dyn dynamic.Interface
	)
	connect := func() (dynamic.Interface, error) {
		mu.Lock()
		defer mu.Unlock()
		if dyn != nil {
			return dyn, nil
		}
		cfg, err := k.Config()
		if err != nil {
			return nil, err
		}
		d, err := dynamic.NewForConfig(cfg)
		if err != nil {
			return nil, err
		}
		dyn = d
		return dyn, nil
	}
	return gitops.ForSystem(connect, sys)
}

// NewKube is a Kubernetes connection of a kubeconfig path outside a Daemon
// (a command that needs one cluster call).
func NewKube(path string) *Kube { return newKube(path, time.Now) }
