// Package istio holds the rollback plan's drain executor (docs/rollback.md):
// an Istio VirtualService's HTTP routes that split traffic between the
// canary and the baseline send it all to the baseline. It uses the dynamic
// client on networking.istio.io/v1 VirtualServices, or v1beta1 where v1 is
// not served, and writes with an update of the object as read: never a
// JSON merge patch, which would replace whole arrays (spec.http) and lose a
// concurrent edit of another route.
package istio

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
)

// Group and the versions tried, in order.
const Group = "networking.istio.io"

var versions = []string{"v1", "v1beta1"}

// conflictBackoff bounds the re-read-and-update loop: enough attempts to
// win against a busy writer, each delay short. The step's ctx bounds it too.
var conflictBackoff = wait.Backoff{Steps: 30, Duration: 10 * time.Millisecond, Factor: 1.5, Jitter: 0.5, Cap: 500 * time.Millisecond}

// Drain is the drain executor for one VirtualService. In every HTTP route
// (spec.http[*].route[*]) with both a baseline and a canary destination
// (the policy's canaryHost, or any destination that is not the baseline
// host when none is set), the canary's weight goes to the baseline and the
// canary stays in place at weight 0 (see drain). Matches, retries, other
// routes, other hosts and tcp/tls routes are left as they are. Read, change
// the weights, update with the read resourceVersion, re-read and retry on
// conflict. A VirtualService already drained is skipped.
type Drain struct {
	dyn  dynamic.Interface
	disc discovery.DiscoveryInterfaceWithContext
	ns   string
	name string
	h    hosts
	now  func() time.Time

	mu  sync.Mutex
	gvr schema.GroupVersionResource // resolved once discovery answered
}

var _ rewind.Executor = (*Drain)(nil)

// New returns the drain executor of the policy's istio section, with
// clients built from cfg.
func New(cfg *rest.Config, i policy.Istio) (*Drain, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	return NewForClient(dyn, disc, i)
}

// NewForClient is New with ready clients.
func NewForClient(dyn dynamic.Interface, disc discovery.DiscoveryInterface, i policy.Istio) (*Drain, error) {
	if i.Namespace == "" || i.VirtualService == "" || i.BaselineHost == "" {
		return nil, errors.New("istio executor: the policy needs namespace, virtualService and baselineHost")
	}
	return &Drain{
		dyn: dyn, disc: discovery.ToDiscoveryInterfaceWithContext(disc),
		ns: i.Namespace, name: i.VirtualService,
		h:   hosts{namespace: i.Namespace, baseline: i.BaselineHost, canary: i.CanaryHost},
		now: time.Now,
	}, nil
}

func (d *Drain) ref() string { return "VirtualService " + d.ns + "/" + d.name }

func (d *Drain) Plan(ctx context.Context, _ *rewind.Rollback) ([]rewind.Change, error) {
	res, err := d.resource(ctx)
	if err != nil {
		return nil, err
	}
	vs, err := d.get(ctx, res)
	if err != nil {
		return nil, err
	}
	found, err := d.drain(vs)
	if err != nil {
		return nil, err
	}
	var out []rewind.Change
	for _, c := range found.changes {
		out = append(out, rewind.Change{Target: d.ref(), Action: "update", Detail: c.String()})
	}
	return out, nil
}

func (d *Drain) Do(ctx context.Context, _ *rewind.Rollback) (rewind.StepResult, error) {
	if err := ctx.Err(); err != nil {
		return rewind.StepResult{}, err
	}
	res, err := d.resource(ctx)
	if err != nil {
		return rewind.StepResult{}, err
	}
	var (
		found   drainResult
		written *unstructured.Unstructured
		at      time.Time
	)
	err = retry.RetryOnConflict(conflictBackoff, func() error {
		vs, err := d.get(ctx, res)
		if err != nil {
			return err
		}
		if found, err = d.drain(vs); err != nil || len(found.changes) == 0 {
			return err
		}
		written, err = res.Update(ctx, vs, metav1.UpdateOptions{FieldManager: "rewind"})
		at = d.now()
		return err
	})
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return rewind.StepResult{}, fmt.Errorf("draining %s: %w", d.ref(), err)
	}
	out := rewind.StepResult{Facts: map[string]string{"virtualService": d.ns + "/" + d.name, "apiVersion": res.gvr.GroupVersion().String()}}
	var routes []string
	for _, c := range found.changes {
		routes = append(routes, c.String())
	}
	switch {
	case found.splits == 0:
		out.Skipped, out.Detail = true, fmt.Sprintf("no HTTP route of %s sends traffic to the canary: nothing to drain", d.ref())
	case len(found.changes) == 0:
		out.Skipped, out.Detail = true, fmt.Sprintf("%s already drained: %d routes send everything to the baseline %s", d.ref(), found.splits, d.h.baseline)
	default:
		out.Detail = fmt.Sprintf("drained %s: %s", d.ref(), strings.Join(routes, "; "))
		out.Facts["drainedAt"] = at.UTC().Format(time.RFC3339Nano)
		out.Facts["routes"] = fmt.Sprint(len(found.changes))
		out.Facts["resourceVersion"] = written.GetResourceVersion()
	}
	if len(found.canaryOnly) > 0 {
		out.Escalate = true
		out.Detail += fmt.Sprintf("; left as they are: HTTP routes %v send traffic to the canary %s without a baseline destination", found.canaryOnly, d.h.canary)
	}
	return out, nil
}

// drain changes vs's weights in place (see drain in routes.go), with
// errors for a VirtualService that does not name the policy's hosts.
func (d *Drain) drain(vs *unstructured.Unstructured) (drainResult, error) {
	http, _, err := unstructured.NestedFieldNoCopy(vs.Object, "spec", "http")
	if err != nil {
		return drainResult{}, fmt.Errorf("%s: spec.http: %w", d.ref(), err)
	}
	routes, _ := http.([]any)
	found, err := drain(routes, d.h)
	switch {
	case err != nil:
		return found, fmt.Errorf("%s: %w", d.ref(), err)
	case !found.baseline:
		return found, fmt.Errorf("%s has no HTTP route to the baseline host %s", d.ref(), d.h.baseline)
	case found.splits == 0 && len(found.canaryOnly) > 0:
		return found, fmt.Errorf("%s: HTTP routes %v send traffic to the canary %s without a baseline destination: cannot drain", d.ref(), found.canaryOnly, d.h.canary)
	}
	return found, nil
}

// vsResource is the VirtualService resource in the served version.
type vsResource struct {
	dynamic.ResourceInterface
	gvr schema.GroupVersionResource
}

func (d *Drain) get(ctx context.Context, res vsResource) (*unstructured.Unstructured, error) {
	vs, err := res.Get(ctx, d.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%s not found", d.ref())
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", d.ref(), err)
	}
	return vs, nil
}

// resource finds the served VirtualService version through discovery,
// once: v1, else v1beta1.
func (d *Drain) resource(ctx context.Context) (vsResource, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gvr.Version == "" {
		var errs []error
		for _, v := range versions {
			gv := schema.GroupVersion{Group: Group, Version: v}
			list, err := d.disc.ServerResourcesForGroupVersionWithContext(ctx, gv.String())
			if err != nil {
				if ctx.Err() != nil {
					return vsResource{}, fmt.Errorf("discovering %s: %w", gv, ctx.Err())
				}
				errs = append(errs, err)
				continue
			}
			if served(list, "virtualservices") {
				d.gvr = gv.WithResource("virtualservices")
				break
			}
			errs = append(errs, fmt.Errorf("%s serves no virtualservices", gv))
		}
		if d.gvr.Version == "" {
			return vsResource{}, fmt.Errorf("VirtualServices are not served (is Istio installed?): %w", errors.Join(errs...))
		}
	}
	return vsResource{ResourceInterface: d.dyn.Resource(d.gvr).Namespace(d.ns), gvr: d.gvr}, nil
}

func served(list *metav1.APIResourceList, resource string) bool {
	for _, r := range list.APIResources {
		if r.Name == resource {
			return true
		}
	}
	return false
}
