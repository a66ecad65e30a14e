package daemon

import (
	"context"
	"fmt"
	"sync"
	"time"

	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/executor/istio"
	"github.com/rewind-sre/rewind/executor/kubernetes"
	"github.com/rewind-sre/rewind/policy"
)

// kubeRetry is how long a failed load of the client configuration is
// remembered before the next use tries again.
const kubeRetry = 5 * time.Second

// Kube is one Kubernetes connection: the client configuration of one
// kubeconfig path ("" : in-cluster, else $KUBECONFIG and ~/.kube/config),
// loaded when first needed and again after a failure, so that a cluster
// configured or reachable later is used then. Until it is, the steps that
// need it fail with the reason, and /readyz names it.
type Kube struct {
	path string
	now  func() time.Time

	mu    sync.Mutex
	cfg   *rest.Config
	cs    *clientset.Clientset
	err   error
	tried time.Time
}

func newKube(path string, now func() time.Time) *Kube { return &Kube{path: path, now: now} }

// Name is how /readyz and errors name the connection.
func (k *Kube) Name() string {
	if k.path == "" {
		return "kubernetes"
	}
	return "kubernetes (kubeconfig " + k.path + ")"
}

// Config returns the client configuration, loading it if needed.
func (k *Kube) Config() (*rest.Config, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cfg != nil {
		return k.cfg, nil
	}
	if k.err != nil && k.now().Sub(k.tried) < kubeRetry {
		return nil, k.err
	}
	k.tried = k.now()
	cfg, err := kubernetes.RESTConfig(k.path)
	var cs *clientset.Clientset
	if err == nil {
		cs, err = clientset.NewForConfig(cfg)
	}
	if err != nil {
		k.err = fmt.Errorf("%s unavailable: %w", k.Name(), err)
		return nil, k.err
	}
	k.cfg, k.cs, k.err = cfg, cs, nil
	return cfg, nil
}

// Check asks the API server for its version: configured and reachable.
func (k *Kube) Check(ctx context.Context) error {
	if _, err := k.Config(); err != nil {
		return err
	}
	k.mu.Lock()
	cs := k.cs
	k.mu.Unlock()
	if err := cs.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Error(); err != nil {
		return fmt.Errorf("%s unreachable: %w", k.Name(), err)
	}
	return nil
}

// Target returns the executors of one canary Deployment on this cluster.
func (k *Kube) Target(spec policy.Kubernetes, evidenceDir string, tailLines int, now func() time.Time) *KubeTarget {
	return &KubeTarget{kube: k, spec: spec, dir: evidenceDir, tail: tailLines, now: now}
}

// KubeTarget is a kubernetes.Target built at first use.
type KubeTarget struct {
	kube *Kube
	spec policy.Kubernetes
	dir  string
	tail int
	now  func() time.Time

	mu sync.Mutex
	t  *kubernetes.Target
}

func (t *KubeTarget) get() (*kubernetes.Target, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.t != nil {
		return t.t, nil
	}
	cfg, err := t.kube.Config()
	if err != nil {
		return nil, err
	}
	if t.t, err = kubernetes.New(cfg, t.spec, kubernetes.WithEvidence(t.dir, t.tail), kubernetes.WithClock(t.now)); err != nil {
		return nil, err
	}
	return t.t, nil
}

func (t *KubeTarget) step(name rewind.StepName) rewind.Executor {
	return &lazyExecutor{build: func() (rewind.Executor, error) {
		tg, err := t.get()
		if err != nil {
			return nil, err
		}
		return tg.Executors()[name], nil
	}}
}

func (t *KubeTarget) fence() rewind.Fence { return &lazyFence{t: t} }

// Drain returns the Istio drain executor of a VirtualService on this cluster.
func (k *Kube) Drain(spec policy.Istio) rewind.Executor {
	return &lazyExecutor{build: func() (rewind.Executor, error) {
		cfg, err := k.Config()
		if err != nil {
			return nil, err
		}
		return istio.New(cfg, spec)
	}}
}

// lazyExecutor builds its executor at first use, and again after a failure.
type lazyExecutor struct {
	build func() (rewind.Executor, error)
	mu    sync.Mutex
	ex    rewind.Executor
}

func (l *lazyExecutor) get() (rewind.Executor, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ex == nil {
		ex, err := l.build()
		if err != nil {
			return nil, err
		}
		l.ex = ex
	}
	return l.ex, nil
}

func (l *lazyExecutor) Plan(ctx context.Context, rb *rewind.Rollback) ([]rewind.Change, error) {
	ex, err := l.get()
	if err != nil {
		return nil, err
	}
	return ex.Plan(ctx, rb)
}

func (l *lazyExecutor) Do(ctx context.Context, rb *rewind.Rollback) (rewind.StepResult, error) {
	ex, err := l.get()
	if err != nil {
		return rewind.StepResult{}, err
	}
	return ex.Do(ctx, rb)
}

// lazyFence is the Deployment's fence, built at first use.
type lazyFence struct{ t *KubeTarget }

func (f *lazyFence) Acquire(ctx context.Context, system, id string) (string, error) {
	tg, err := f.t.get()
	if err != nil {
		return "", err
	}
	return tg.Fence().Acquire(ctx, system, id)
}

func (f *lazyFence) Complete(ctx context.Context, system, id string) error {
	tg, err := f.t.get()
	if err != nil {
		return err
	}
	return tg.Fence().Complete(ctx, system, id)
}

// Holder reads the fence's holder (the controller adopts what another
// controller left unfinished).
func (f *lazyFence) Holder(ctx context.Context) (string, bool, error) {
	tg, err := f.t.get()
	if err != nil {
		return "", false, err
	}
	return tg.Fence().Holder(ctx)
}
