package istio

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/dynamic"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/util/retry"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/executor/istio/istiotest"
	"github.com/rewind-sre/rewind/executor/kubernetes/kubetest"
	"github.com/rewind-sre/rewind/internal/testenv"
	"github.com/rewind-sre/rewind/plan/plantest"
	"github.com/rewind-sre/rewind/policy"
)

type env struct {
	k     *testenv.Kube
	admin clientset.Interface
	dyn   dynamic.Interface
}

// TestIstio runs the drain against a real API server with Istio's
// VirtualService CRD; the control plane is started once for all subtests.
func TestIstio(t *testing.T) {
	start := time.Now()
	k := testenv.StartKube(t)
	t.Logf("StartKube took %s", time.Since(start).Round(time.Millisecond))
	admin, err := clientset.NewForConfig(k.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(k.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{k: k, admin: admin, dyn: dyn}
	t.Run("Drain", e.testDrain)
	t.Run("AnyOtherHostIsTheCanary", e.testAnyOtherHost)
	t.Run("Missing", e.testMissing)
	t.Run("InjectedConflict", e.testInjectedConflict)
	t.Run("ConcurrentEditor", e.testConcurrentEditor)
	t.Run("V1beta1Fallback", e.testFallback)
	t.Run("Suite", func(t *testing.T) { plantest.ExecutorSuite(t, e.suiteTarget) })
}

func (e *env) drainer(t *testing.T, cfg *rest.Config, ns, canaryHost string) *Drain {
	t.Helper()
	d, err := New(cfg, policy.Istio{Namespace: ns, VirtualService: "web", BaselineHost: istiotest.Baseline, CanaryHost: canaryHost})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

var wantDrained = map[string][]string{
	"api-split":     {istiotest.Baseline + "=100", istiotest.Canary + "=0"},
	"static":        {"static-files=-1"},
	"default-split": {istiotest.Canary + "=0", istiotest.Baseline + "=100"},
}

func (e *env) testDrain(t *testing.T) {
	ns := kubetest.Namespace(t, e.admin)
	before := istiotest.Create(t, e.dyn, istiotest.VirtualService(ns, "web"))
	d := e.drainer(t, e.k.AdminConfig(), ns, istiotest.Canary)
	ctx := ctxFor(t)

	changes, err := d.Plan(ctx, &rewind.Rollback{ID: "rb-1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []rewind.Change{
		{Target: "VirtualService " + ns + "/web", Action: "update", Detail: `http[0] "api-split": web-baseline 90 → 100, web-canary 10 → 0`},
		{Target: "VirtualService " + ns + "/web", Action: "update", Detail: `http[2] "default-split": web-canary 25 → 0, web-baseline 75 → 100`},
	}
	if !reflect.DeepEqual(changes, want) {
		t.Errorf("Plan = %+v\nwant %+v", changes, want)
	}
	if got := istiotest.Get(t, e.dyn, ns, "web"); got.GetResourceVersion() != before.GetResourceVersion() {
		t.Fatalf("Plan changed the VirtualService")
	}

	res, err := d.Do(ctx, &rewind.Rollback{ID: "rb-1"})
	if err != nil || res.Skipped || res.Escalate {
		t.Fatalf("Do = %+v, %v", res, err)
	}
	t.Logf("drain: %s; facts %v", res.Detail, res.Facts)
	if _, err := time.Parse(time.RFC3339Nano, res.Facts["drainedAt"]); err != nil || res.Facts["routes"] != "2" || res.Facts["apiVersion"] != "networking.istio.io/v1" {
		t.Errorf("facts %v", res.Facts)
	}
	after := istiotest.Get(t, e.dyn, ns, "web")
	if got := istiotest.Weights(after); !reflect.DeepEqual(got, wantDrained) {
		t.Errorf("weights after the drain %v, want %v", got, wantDrained)
	}
	if b, a := istiotest.WithoutWeights(before), istiotest.WithoutWeights(after); b != a {
		t.Errorf("the drain changed more than weights:\nbefore %s\nafter  %s", b, a)
	}
	if !reflect.DeepEqual(before.GetLabels(), after.GetLabels()) || !reflect.DeepEqual(before.GetAnnotations(), after.GetAnnotations()) {
		t.Errorf("metadata changed: labels %v → %v, annotations %v → %v", before.GetLabels(), after.GetLabels(), before.GetAnnotations(), after.GetAnnotations())
	}

	again, err := d.Do(ctx, &rewind.Rollback{ID: "rb-1"})
	if err != nil || !again.Skipped || !strings.Contains(again.Detail, "already drained") {
		t.Errorf("second Do = %+v, %v; want skipped", again, err)
	}
	if changes, err := d.Plan(ctx, &rewind.Rollback{ID: "rb-1"}); err != nil || len(changes) != 0 {
		t.Errorf("Plan after the drain = %+v, %v; want nothing", changes, err)
	}
	if got := istiotest.Get(t, e.dyn, ns, "web"); got.GetResourceVersion() != after.GetResourceVersion() {
		t.Errorf("the second Do wrote the VirtualService")
	}
}

// testAnyOtherHost: without canaryHost, the destinations beside the
// baseline in a split are the canary; a route to another host alone is not
// a split.
func (e *env) testAnyOtherHost(t *testing.T) {
	ns := kubetest.Namespace(t, e.admin)
	istiotest.Create(t, e.dyn, istiotest.VirtualService(ns, "web"))
	res, err := e.drainer(t, e.k.AdminConfig(), ns, "").Do(ctxFor(t), &rewind.Rollback{ID: "rb-1"})
	if err != nil || res.Skipped {
		t.Fatalf("Do = %+v, %v", res, err)
	}
	if got := istiotest.Weights(istiotest.Get(t, e.dyn, ns, "web")); !reflect.DeepEqual(got, wantDrained) {
		t.Errorf("weights %v, want %v", got, wantDrained)
	}
}

func (e *env) testMissing(t *testing.T) {
	ns := kubetest.Namespace(t, e.admin)
	ctx := ctxFor(t)
	d := e.drainer(t, e.k.AdminConfig(), ns, istiotest.Canary)
	if _, err := d.Do(ctx, &rewind.Rollback{ID: "rb-1"}); err == nil || !strings.Contains(err.Error(), "VirtualService "+ns+"/web not found") {
		t.Errorf("Do without the VirtualService: %v", err)
	}
	if _, err := d.Plan(ctx, &rewind.Rollback{ID: "rb-1"}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("Plan without the VirtualService: %v", err)
	}
	// A VirtualService that does not route to the policy's baseline.
	other, err := New(e.k.AdminConfig(), policy.Istio{Namespace: ns, VirtualService: "web", BaselineHost: "no-such-host"})
	if err != nil {
		t.Fatal(err)
	}
	istiotest.Create(t, e.dyn, istiotest.VirtualService(ns, "web"))
	if _, err := other.Do(ctx, &rewind.Rollback{ID: "rb-1"}); err == nil || !strings.Contains(err.Error(), "no HTTP route to the baseline host no-such-host") {
		t.Errorf("Do with a wrong baseline host: %v", err)
	}
}

// countingConfig returns cfg with a transport that counts 409 Conflict
// answers to updates, and runs before (once) ahead of the first update.
func countingConfig(cfg *rest.Config, conflicts *atomic.Int64, before func()) *rest.Config {
	var once sync.Once
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodPut && before != nil {
				once.Do(before)
			}
			resp, err := rt.RoundTrip(req)
			if err == nil && req.Method == http.MethodPut && resp.StatusCode == http.StatusConflict {
				conflicts.Add(1)
			}
			return resp, err
		})
	})
	return cfg
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// editTimeout changes http[1]'s timeout (a field the drain must keep).
func (e *env) editTimeout(ctx context.Context, ns, timeout string) error {
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		vs, err := e.dyn.Resource(istiotest.GVR).Namespace(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
		http[1].(map[string]any)["timeout"] = timeout
		_ = unstructured.SetNestedSlice(vs.Object, http, "spec", "http")
		_, err = e.dyn.Resource(istiotest.GVR).Namespace(ns).Update(ctx, vs, metav1.UpdateOptions{})
		return err
	})
}

func timeoutOf(vs *unstructured.Unstructured) string {
	http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	s, _ := http[1].(map[string]any)["timeout"].(string)
	return s
}

// testInjectedConflict: another writer updates the VirtualService between
// the drain's read and its write; the write conflicts, the drain re-reads
// and both changes are kept.
func (e *env) testInjectedConflict(t *testing.T) {
	ns := kubetest.Namespace(t, e.admin)
	istiotest.Create(t, e.dyn, istiotest.VirtualService(ns, "web"))
	ctx := ctxFor(t)
	var conflicts atomic.Int64
	cfg := countingConfig(e.k.AdminConfig(), &conflicts, func() {
		if err := e.editTimeout(ctx, ns, "7s"); err != nil {
			t.Errorf("concurrent edit: %v", err)
		}
	})
	res, err := e.drainer(t, cfg, ns, istiotest.Canary).Do(ctx, &rewind.Rollback{ID: "rb-1"})
	if err != nil || res.Skipped {
		t.Fatalf("Do = %+v, %v", res, err)
	}
	if conflicts.Load() < 1 {
		t.Errorf("the drain saw no conflict")
	}
	vs := istiotest.Get(t, e.dyn, ns, "web")
	if got := istiotest.Weights(vs); !reflect.DeepEqual(got, wantDrained) {
		t.Errorf("weights %v, want %v", got, wantDrained)
	}
	if got := timeoutOf(vs); got != "7s" {
		t.Errorf("the concurrent edit was lost: timeout %q", got)
	}
}

// testConcurrentEditor: a goroutine rewrites another field in a loop while
// the drain runs; the drain retries its conflicts, the weights end right and
// the editor's last write is kept.
func (e *env) testConcurrentEditor(t *testing.T) {
	ns := kubetest.Namespace(t, e.admin)
	istiotest.Create(t, e.dyn, istiotest.VirtualService(ns, "web"))
	ctx := ctxFor(t)
	stop := make(chan struct{})
	var (
		edits   atomic.Int64
		lastSet atomic.Value
		wg      sync.WaitGroup
	)
	wg.Go(func() {
		for i := 1; i <= 2000; i++ { // bounded; stopped after the drain
			select {
			case <-stop:
				return
			default:
			}
			v := fmt.Sprintf("%ds", i)
			if err := e.editTimeout(ctx, ns, v); err != nil {
				t.Errorf("editor: %v", err)
				return
			}
			lastSet.Store(v)
			edits.Add(1)
		}
	})
	for edits.Load() < 5 { // the editor is running
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	var conflicts atomic.Int64
	res, err := e.drainer(t, countingConfig(e.k.AdminConfig(), &conflicts, nil), ns, istiotest.Canary).Do(ctx, &rewind.Rollback{ID: "rb-1"})
	editsDuring := edits.Load()
	// Let the editor write a few times after the drain too.
	for target := editsDuring + 5; edits.Load() < target; {
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("drain: %v; %d conflicts retried; editor wrote %d times", err, conflicts.Load(), edits.Load())
	if err != nil || res.Skipped {
		t.Fatalf("Do = %+v, %v", res, err)
	}
	vs := istiotest.Get(t, e.dyn, ns, "web")
	if got := istiotest.Weights(vs); !reflect.DeepEqual(got, wantDrained) {
		t.Errorf("weights %v, want %v", got, wantDrained)
	}
	if got, want := timeoutOf(vs), lastSet.Load().(string); got != want {
		t.Errorf("timeout %q, want the editor's last %q", got, want)
	}
}

// testFallback: where discovery serves no v1 VirtualService, the drain uses
// v1beta1; where neither is served, it says so.
func (e *env) testFallback(t *testing.T) {
	ns := kubetest.Namespace(t, e.admin)
	istiotest.Create(t, e.dyn, istiotest.VirtualService(ns, "web"))
	ctx := ctxFor(t)
	disc := func(versions ...string) discovery.DiscoveryInterface {
		f := &fakediscovery.FakeDiscovery{Fake: &clienttesting.Fake{}}
		for _, v := range versions {
			f.Resources = append(f.Resources, &metav1.APIResourceList{GroupVersion: Group + "/" + v,
				APIResources: []metav1.APIResource{{Name: "virtualservices", Namespaced: true, Kind: "VirtualService"}}})
		}
		return f
	}
	cfg := policy.Istio{Namespace: ns, VirtualService: "web", BaselineHost: istiotest.Baseline, CanaryHost: istiotest.Canary}
	d, err := NewForClient(e.dyn, disc("v1beta1", "v1alpha3"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := d.Do(ctx, &rewind.Rollback{ID: "rb-1"})
	if err != nil || res.Facts["apiVersion"] != Group+"/v1beta1" {
		t.Fatalf("Do = %+v, %v; want done through v1beta1", res, err)
	}
	if got := istiotest.Weights(istiotest.Get(t, e.dyn, ns, "web")); !reflect.DeepEqual(got, wantDrained) {
		t.Errorf("weights %v, want %v", got, wantDrained)
	}
	none, _ := NewForClient(e.dyn, disc("v1alpha3"), cfg)
	if _, err := none.Do(ctx, &rewind.Rollback{ID: "rb-1"}); err == nil || !strings.Contains(err.Error(), "not served") {
		t.Errorf("Do without a served version: %v", err)
	}
}

func (e *env) suiteTarget(t *testing.T) (rewind.Executor, *rewind.Rollback, func() string) {
	ns := kubetest.Namespace(t, e.admin)
	istiotest.Create(t, e.dyn, istiotest.VirtualService(ns, "web"))
	state := func() string {
		vs := istiotest.Get(t, e.dyn, ns, "web")
		return fmt.Sprintf("%v %s", istiotest.Weights(vs), istiotest.WithoutWeights(vs))
	}
	return e.drainer(t, e.k.AdminConfig(), ns, istiotest.Canary), &rewind.Rollback{ID: "rb-suite"}, state
}
