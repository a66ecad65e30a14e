package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	clientset "k8s.io/client-go/kubernetes"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/executor/istio/istiotest"
	"github.com/rewind-sre/rewind/executor/kubernetes/kubetest"
	"github.com/rewind-sre/rewind/internal/testenv"
)

// grants are the verbs of rbac.yaml's ClusterRole, as group/resource:verb.
// The executors use exactly these: WholeFlow passes under the role, and
// EveryVerbIsNeeded fails without any one of them.
var grants = []string{
	"apps/deployments:get", "apps/deployments:update", "apps/deployments:watch",
	"apps/deployments/scale:get", "apps/deployments/scale:update",
	"apps/replicasets:list",
	"/pods:list", "/pods/log:get",
	"/events:list",
	"networking.istio.io/virtualservices:get", "networking.istio.io/virtualservices:update",
}

type env struct {
	k     *testenv.Kube
	admin clientset.Interface
	dyn   dynamic.Interface
	m     manifests
}

func start(t testing.TB) *env {
	begin := time.Now()
	k := testenv.StartKube(t)
	t.Logf("StartKube took %s", time.Since(begin).Round(time.Millisecond))
	admin, err := clientset.NewForConfig(k.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(k.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	return &env{k: k, admin: admin, dyn: dyn, m: loadRBAC(t)}
}

// fixture creates a namespace with the canary Deployment "web" at
// revision 2 of 2 and the VirtualService "web" splitting traffic.
func (e *env) fixture(t testing.TB) string {
	ns := kubetest.Namespace(t, e.admin)
	kubetest.CanaryDeployment(t, e.admin, ns, "web", kubetest.Canary{})
	istiotest.Create(t, e.dyn, istiotest.VirtualService(ns, "web"))
	return ns
}

// TestRBAC runs the executors under rbac.yaml's role, as its ServiceAccount,
// on a real API server with RBAC on (started once for every subtest).
func TestRBAC(t *testing.T) {
	e := start(t)
	t.Run("RulesAreTheExecutorsVerbs", e.testRules)
	t.Run("WholeFlow", e.testWholeFlow)
	t.Run("EveryVerbIsNeeded", e.testEveryVerbIsNeeded)
	t.Run("Latency", e.testLatency)
}

func ruleGrants(rules []rbacv1.PolicyRule) []string {
	var out []string
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					out = append(out, g+"/"+res+":"+v)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func (e *env) testRules(t *testing.T) {
	want := slices.Sorted(slices.Values(grants))
	if got := ruleGrants(e.m.role.Rules); !reflect.DeepEqual(got, want) {
		t.Errorf("rbac.yaml grants %v\nthe executors use %v", got, want)
	}
	for _, r := range e.m.role.Rules {
		if len(r.ResourceNames) > 0 || len(r.NonResourceURLs) > 0 {
			t.Errorf("rule %+v: resourceNames or nonResourceURLs are not expected", r)
		}
	}
}

// testWholeFlow: fence, drain, undo, scale-down, evidence and complete
// under the role; then every executor again (a resume) is a no-op; and
// the ServiceAccount can do nothing beyond the role.
func (e *env) testWholeFlow(t *testing.T) {
	ns := e.fixture(t)
	before := istiotest.Get(t, e.dyn, ns, "web")
	cfg := grant(t, e.k, e.admin, e.m, e.m.role, "rewind", "rewind", ns, authorizationv1.ResourceAttributes{Group: "apps", Resource: "deployments", Verb: "get"})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	rb := newRollback("rb-rbac-1")
	dir := t.TempDir()
	f, err := runFlow(ctx, cfg, ns, dir, rb, time.Minute)
	if err != nil {
		t.Fatalf("the flow under rbac.yaml's role: %v", err)
	}
	t.Logf("decision → route written %s, → Deployment undone and available %s", f.route.Round(time.Millisecond), f.undone.Round(time.Millisecond))
	for _, name := range []rewind.StepName{rewind.StepDrain, rewind.StepUndo, rewind.StepScaleDown, rewind.StepEvidence} {
		if res := f.results[name]; res.Skipped {
			t.Errorf("step %s skipped: %s", name, res.Detail)
		}
	}

	after := istiotest.Get(t, e.dyn, ns, "web")
	if got := istiotest.Weights(after); got["api-split"][0] != istiotest.Baseline+"=100" || got["api-split"][1] != istiotest.Canary+"=0" {
		t.Errorf("weights after the drain: %v", got)
	}
	if b, a := istiotest.WithoutWeights(before), istiotest.WithoutWeights(after); b != a {
		t.Errorf("the drain changed more than weights:\nbefore %s\nafter  %s", b, a)
	}
	d, err := e.admin.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := d.Spec.Template.Spec.Containers[0].Image; img != kubetest.ImageV1 || *d.Spec.Replicas != 0 {
		t.Errorf("Deployment at %s with %d replicas; want %s scaled to 0", img, *d.Spec.Replicas, kubetest.ImageV1)
	}
	if d.Annotations["rewind.dev/rollback-state"] != "done" {
		t.Errorf("fence not completed: %v", d.Annotations)
	}

	// A resume of the whole rollback changes nothing.
	again, err := runFlow(ctx, cfg, ns, dir, rb, time.Minute)
	if err != nil {
		t.Fatalf("re-run: %v", err)
	}
	for name, res := range again.results {
		if !res.Skipped {
			t.Errorf("re-run of %s was not skipped: %s", name, res.Detail)
		}
	}

	// The role is all the ServiceAccount has.
	sa, err := clientset.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	forbidden := map[string]error{
		"delete deployment": sa.AppsV1().Deployments(ns).Delete(ctx, "web", metav1.DeleteOptions{}),
		"patch deployment": func() error {
			_, err := sa.AppsV1().Deployments(ns).Patch(ctx, "web", "application/merge-patch+json", []byte(`{}`), metav1.PatchOptions{})
			return err
		}(),
		"list deployments": func() error { _, err := sa.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{}); return err }(),
		"get a deployment elsewhere": func() error {
			_, err := sa.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
			return err
		}(),
		"list secrets": func() error { _, err := sa.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); return err }(),
	}
	for what, err := range forbidden {
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s as the ServiceAccount: %v; want Forbidden", what, err)
		}
	}
}

// testEveryVerbIsNeeded: for each verb of the role, a role without it makes
// the rollback fail (an error, or evidence not collected): no verb is there
// that the executors do not use.
func (e *env) testEveryVerbIsNeeded(t *testing.T) {
	for i, g := range grants {
		t.Run(g, func(t *testing.T) {
			role := without(e.m.role, g)
			role.Name = fmt.Sprintf("rewind-executor-without-%d", i)
			ns := e.fixture(t)
			probe := authorizationv1.ResourceAttributes{Group: "networking.istio.io", Resource: "virtualservices", Verb: "get"}
			if strings.HasPrefix(g, "networking.istio.io/virtualservices:get") {
				probe = authorizationv1.ResourceAttributes{Group: "apps", Resource: "deployments", Verb: "get"}
			}
			cfg := grant(t, e.k, e.admin, e.m, role, "rewind", fmt.Sprintf("rewind-without-%d", i), ns, probe)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			_, err := runFlow(ctx, cfg, ns, t.TempDir(), newRollback(fmt.Sprintf("rb-without-%d", i)), 10*time.Second)
			if err == nil {
				t.Fatalf("the flow succeeded without %s: the role grants a verb the executors do not use", g)
			}
			if !strings.Contains(err.Error(), "forbidden") || errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("without %s: %v; want a forbidden error, not a timeout", g, err)
			}
			t.Logf("without %s: %v", g, err)
		})
	}
}

// without returns role less one group/resource:verb grant.
func without(role *rbacv1.ClusterRole, grant string) *rbacv1.ClusterRole {
	out := role.DeepCopy()
	out.ResourceVersion = ""
	out.Rules = nil
	for _, r := range role.Rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				var verbs []string
				for _, v := range r.Verbs {
					if g+"/"+res+":"+v != grant {
						verbs = append(verbs, v)
					}
				}
				if len(verbs) > 0 {
					out.Rules = append(out.Rules, rbacv1.PolicyRule{APIGroups: []string{g}, Resources: []string{res}, Verbs: verbs})
				}
			}
		}
	}
	return out
}
