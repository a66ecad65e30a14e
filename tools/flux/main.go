// Command flux-reconciler is the Flux stand-in of Rewind's GitOps tests: it
// does for a Kustomization what Flux's kustomize-controller does, built on
// Flux's own server-side-apply engine (github.com/fluxcd/pkg/ssa), because
// kustomize-controller and source-controller themselves do not build from
// the module proxy (they pin fluxcd/pkg modules it does not serve).
//
// For every GitRepository (source.toolkit.fluxcd.io/v1), at each
// spec.interval, as source-controller does: it lists the branch's head on
// the Git server (go-git; basic auth from the GitRepository's secretRef)
// and records it ("BRANCH@sha1:HASH") in status.artifact.revision — also
// while the Kustomizations that use it are suspended.
//
// For every Kustomization (kustomize.toolkit.fluxcd.io/v1) that is not
// suspended, at each spec.interval, as kustomize-controller does:
//
//   - checks out its GitRepository's artifact revision (not the branch's
//     head: a Kustomization applies what its source last fetched);
//   - builds spec.path with kustomize (a kustomization.yaml is generated over
//     the directory's manifests when there is none, as kustomize-controller
//     does);
//   - applies the result with ssa.ResourceManager.ApplyAllStaged under the
//     field manager "kustomize-controller", with the owner labels
//     kustomize.toolkit.fluxcd.io/name and /namespace; the apply forces
//     ownership, so drift in the cluster is corrected at every interval;
//   - records status.lastAppliedRevision and a Ready condition.
//
// spec.suspend: true stops all of it until it is false again. It logs one
// line per reconcile ("reconciled NS/NAME revision R: changes") and per new
// source revision ("fetched NS/NAME revision R") on stderr.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster")
	tick := flag.Duration("tick", 200*time.Millisecond, "how often due Kustomizations are looked for")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*kubeconfig, *tick, log); err != nil {
		log.Error("flux-reconciler stopped", "err", err)
		os.Exit(1)
	}
}

func run(kubeconfig string, tick time.Duration, log *slog.Logger) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 50, 100
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, kustomizev1.AddToScheme, sourcev1.AddToScheme} {
		if err := add(scheme); err != nil {
			return err
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r := &reconciler{c: c, log: log, last: map[string]state{}, fetched: map[string]state{},
		poller: polling.NewStatusPoller(c, c.RESTMapper(), polling.Options{})}
	log.Info("flux-reconciler started", "host", cfg.Host)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		if err := r.pass(ctx); err != nil && ctx.Err() == nil {
			log.Error("listing Kustomizations or GitRepositories", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// state is what the reconciler remembers of one Kustomization.
type state struct {
	at         time.Time // last reconcile attempt
	generation int64
}

type reconciler struct {
	c      client.Client
	log    *slog.Logger
	poller *polling.StatusPoller // waits for namespaces and CRDs applied first
	// last and fetched are keyed by namespace/name (Kustomizations,
	// GitRepositories); only pass uses them.
	last, fetched map[string]state
}

// pass reconciles every Kustomization that is due: its interval has passed
// since the last attempt, or its spec changed (a resumed one is due at once).
func (r *reconciler) pass(ctx context.Context) error {
	if err := r.sources(ctx); err != nil {
		return err
	}
	var list kustomizev1.KustomizationList
	if err := r.c.List(ctx, &list); err != nil {
		return err
	}
	for i := range list.Items {
		k := &list.Items[i]
		key := k.Namespace + "/" + k.Name
		if k.Spec.Suspend {
			r.last[key] = state{generation: k.Generation} // due at once when resumed
			continue
		}
		st := r.last[key]
		if st.generation == k.Generation && time.Since(st.at) < k.Spec.Interval.Duration {
			continue
		}
		r.last[key] = state{at: time.Now(), generation: k.Generation}
		rev, changes, err := r.reconcile(ctx, k)
		if err != nil {
			r.log.Error("reconcile failed", "kustomization", key, "err", err)
			r.setStatus(ctx, k, rev, err)
			continue
		}
		r.log.Info(fmt.Sprintf("reconciled %s revision %s: %s", key, rev, changes))
		r.setStatus(ctx, k, rev, nil)
	}
	return nil
}

func (r *reconciler) setStatus(ctx context.Context, k *kustomizev1.Kustomization, rev string, failure error) {
	cond := metaCondition(k.Generation, failure, rev)
	k.Status.ObservedGeneration = k.Generation
	k.Status.LastAttemptedRevision = rev
	if failure == nil {
		k.Status.LastAppliedRevision = rev
	}
	setCondition(&k.Status.Conditions, cond)
	if err := r.c.Status().Update(ctx, k); err != nil {
		r.log.Warn("status update", "kustomization", k.Namespace+"/"+k.Name, "err", err)
	}
}

// sources fetches every GitRepository that is due: its interval has passed
// since the last fetch, or its spec changed.
func (r *reconciler) sources(ctx context.Context) error {
	var list sourcev1.GitRepositoryList
	if err := r.c.List(ctx, &list); err != nil {
		return err
	}
	for i := range list.Items {
		repo := &list.Items[i]
		key := repo.Namespace + "/" + repo.Name
		st := r.fetched[key]
		if repo.Spec.Suspend || st.generation == repo.Generation && time.Since(st.at) < repo.Spec.Interval.Duration {
			continue
		}
		r.fetched[key] = state{at: time.Now(), generation: repo.Generation}
		rev, err := r.fetch(ctx, repo)
		if err != nil {
			r.log.Error("fetch failed", "gitrepository", key, "err", err)
			continue
		}
		if rev != "" {
			r.log.Info(fmt.Sprintf("fetched %s revision %s", key, rev))
		}
	}
	return nil
}
