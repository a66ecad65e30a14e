package daemon

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/controller"
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
		mu   sync.Mutex
		dyn  dynamic.Interface
		disc discovery.DiscoveryInterface
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
	s := gitops.ForSystem(connect, sys)
	if s != nil {
		s.Finder.Discovery = func() (discovery.DiscoveryInterface, error) {
			mu.Lock()
			defer mu.Unlock()
			if disc != nil {
				return disc, nil
			}
			cfg, err := k.Config()
			if err != nil {
				return nil, err
			}
			d, err := discovery.NewDiscoveryClientForConfig(cfg)
			if err != nil {
				return nil, err
			}
			disc = d
			return disc, nil
		}
	}
	return s
}

// NewKube is a Kubernetes connection of a kubeconfig path outside a Daemon
// (a command that needs one cluster call).
func NewKube(path string) *Kube { return newKube(path, time.Now) }

// kube returns the generation's connection of a kubeconfig path (a new one
// for a path no system of the generation uses).
func (g *generation) kube(path string) *Kube {
	if k := g.kubes[path]; k != nil {
		return k
	}
	return newKube(path, time.Now)
}

// ResumeGitOps resumes the GitOps owners of system that a rollback
// suspended, at requester's request (the API's resume-gitops): each gets
// its recorded previous setting back, and a gitops-resumed notice says so.
// An unknown system is controller.ErrUnknownSystem; a system without
// GitOps resumes nothing.
func (d *Daemon) ResumeGitOps(ctx context.Context, system, requester string) ([]gitops.Resumed, error) {
	g := d.gen.Load()
	b := g.systems[system]
	if b == nil {
		return nil, fmt.Errorf("%w: %q", controller.ErrUnknownSystem, system)
	}
	s := GitOpsSystem(b.sys, g.kube)
	if s == nil {
		return nil, nil
	}
	resumed, err := s.Resume(ctx)
	byRollback := map[string][]gitops.Resumed{}
	for _, r := range resumed {
		if r.By != "" {
			byRollback[r.By] = append(byRollback[r.By], r)
		}
	}
	for id, rs := range byRollback {
		rb, gerr := d.opt.Store.Get(ctx, id)
		if gerr != nil {
			rb = &rewind.Rollback{ID: id, System: system} // suspended by a rollback this store does not hold
		}
		d.publishResumed(ctx, rb, rs, "by "+requester)
	}
	if len(byRollback) > 0 {
		d.setGitOpsStatus(system, s.Status(ctx, d.opt.Now()))
	}
	return resumed, err
}
