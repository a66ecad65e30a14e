// Package kubernetes learns of rollouts from the API server: a watch of the
// ReplicaSets of the watched Deployment's namespace (metadata only: names,
// creation times, owners), turned into the same inventory that
// kube-state-metrics gives and judged by the same rollout.Discover.
package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/rollout"
)

var replicaSets = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}

// revisionAnnotation numbers a Deployment's ReplicaSets in rollout order.
const revisionAnnotation = "deployment.kubernetes.io/revision"

// Discoverer lists the rollouts of one watch system's Deployment from a
// watch of its namespace's ReplicaSets. The watch starts at the first call
// of Rollouts (after a failure, again at the next call) and stops with
// Close. It needs list and watch on apps/replicasets in the namespace.
type Discoverer struct {
	system, namespace, deployment, label string
	lookback                             time.Duration
	config                               func() (*rest.Config, error)

	mu       sync.Mutex
	informer informers.GenericInformer
	stop     context.CancelFunc
	lastErr  error     // the watch's last error (forbidden, unreachable)
	errAt    time.Time // when
}

// failingFor is how long after its last error the watch counts as failing:
// the reflector retries with a backoff of at most about 30 s, so a watch
// that keeps failing reports an error at least that often.
const failingFor = time.Minute

// New prepares the discovery of sys's rollouts; config gives the client
// configuration when the watch starts.
func New(sys *policy.System, lookback time.Duration, config func() (*rest.Config, error)) (*Discoverer, error) {
	w := sys.Watch
	if w == nil || w.Deployment == "" {
		return nil, fmt.Errorf("system %s: discovery from the API server needs watch.deployment", sys.Name)
	}
	return &Discoverer{system: sys.Name, namespace: w.Namespace, deployment: w.Deployment, label: w.RevisionLabel,
		lookback: lookback, config: config}, nil
}

// Rollouts lists the rollouts that started within the lookback before at,
// from the watch's cache. Until the cache has synced, it is an error: the
// system is degraded, not without rollouts.
func (d *Discoverer) Rollouts(ctx context.Context, at time.Time) ([]rollout.Rollout, error) {
	inf, err := d.start()
	if err != nil {
		return nil, err
	}
	if !inf.Informer().HasSynced() {
		if !cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced) {
			d.mu.Lock()
			last := d.lastErr
			d.mu.Unlock()
			if last != nil {
				return nil, fmt.Errorf("the watch of ReplicaSets in %s has not synced: %w", d.namespace, last)
			}
			return nil, fmt.Errorf("the watch of ReplicaSets in %s has not synced yet", d.namespace)
		}
	}
	d.mu.Lock()
	last, failedAt := d.lastErr, d.errAt
	d.mu.Unlock()
	if last != nil && time.Since(failedAt) < failingFor {
		// The cache may be filled by lists alone: without the watch it
		// misses new ReplicaSets for a backoff at a time.
		return nil, fmt.Errorf("the watch of ReplicaSets in %s fails: %w", d.namespace, last)
	}
	objs, err := inf.Lister().ByNamespace(d.namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	return rollout.Discover(d.system, d.namespace, d.deployment, d.label, Inventory(d.namespace, objs), at.Add(-d.lookback), at), nil
}

// Inventory turns ReplicaSet metadata into the inventory kube-state-metrics
// would give: an owner series per ReplicaSet owned by a Deployment, and its
// creation time.
func Inventory[T any](namespace string, objs []T) rollout.Inventory {
	var inv rollout.Inventory
	for _, o := range objs {
		m, ok := any(o).(metav1.Object)
		if !ok || m.GetNamespace() != namespace {
			continue
		}
		for _, ref := range m.GetOwnerReferences() {
			if ref.Kind != "Deployment" || ref.Controller == nil || !*ref.Controller {
				continue
			}
			inv.Owners = append(inv.Owners, rewind.Sample{Labels: map[string]string{
				"namespace": namespace, "replicaset": m.GetName(), "owner_kind": "Deployment", "owner_name": ref.Name}, V: 1})
		}
		if n, err := strconv.ParseInt(m.GetAnnotations()[revisionAnnotation], 10, 64); err == nil {
			if inv.Numbers == nil {
				inv.Numbers = map[string]int64{}
			}
			inv.Numbers[m.GetName()] = n
		}
		if c := m.GetCreationTimestamp(); !c.IsZero() {
			inv.Created = append(inv.Created, rewind.Sample{Labels: map[string]string{"namespace": namespace, "replicaset": m.GetName()},
				V: float64(c.Unix())})
		}
	}
	return inv
}

func (d *Discoverer) start() (informers.GenericInformer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.informer != nil {
		return d.informer, nil
	}
	cfg, err := d.config()
	if err != nil {
		return nil, err
	}
	client, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	inf := metadatainformer.NewFilteredMetadataInformer(client, replicaSets, d.namespace, 0,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	if err := inf.Informer().SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		d.watchErr(err)
	}); err != nil {
		cancel()
		return nil, err
	}
	go inf.Informer().RunWithContext(ctx)
	d.informer, d.stop = inf, cancel
	return inf, nil
}

// lastErr keeps the watch's last error for the next caller.
func (d *Discoverer) watchErr(err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	d.mu.Lock()
	d.lastErr, d.errAt = err, time.Now()
	d.mu.Unlock()
}

// Close stops the watch; the next Rollouts starts it again.
func (d *Discoverer) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stop != nil {
		d.stop()
	}
	d.informer, d.stop = nil, nil
	return nil
}
