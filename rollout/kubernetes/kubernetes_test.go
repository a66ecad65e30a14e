package kubernetes_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/rewind-sre/rewind/executor/kubernetes/kubetest"
	"github.com/rewind-sre/rewind/internal/testenv"
	"github.com/rewind-sre/rewind/policy"
	rolloutkube "github.com/rewind-sre/rewind/rollout/kubernetes"
)

// role is the ClusterRole of deploy/optional/rbac-rollout-watch.yaml.
func role(t *testing.T) *rbacv1.ClusterRole {
	data, err := os.ReadFile("../../deploy/optional/rbac-rollout-watch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var r rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict([]byte(strings.Split(string(data), "\n---\n")[0]), &r); err != nil {
		t.Fatal(err)
	}
	if r.Kind != "ClusterRole" || len(r.Rules) != 1 {
		t.Fatalf("rbac-rollout-watch.yaml: %+v", r)
	}
	return &r
}

// grant binds rules to user in ns as a Role.
func grant(t *testing.T, admin clientset.Interface, ns, user string, rules []rbacv1.PolicyRule) {
	t.Helper()
	ctx := context.Background()
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: user}, Rules: rules}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: user},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: user}}}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func watchSystem(t *testing.T, ns string) *policy.System {
	t.Helper()
	src := `apiVersion: rewind/v1
kind: Policy
systems:
  - name: web
    watch: { namespace: ` + ns + `, deployment: web, selector: 'namespace="` + ns + `",app="web"', discovery: kubernetes }
    triggers:
      - name: errors
        judge:
          test: proportion
          bad: 'sum(increase(http_requests_total{status=~"5..", {{selector}} }[5m]))'
          total: 'sum(increase(http_requests_total{ {{selector}} }[5m]))'
`
	p, err := policy.Parse("web.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p.Systems[0]
}

// TestDiscoverer: on a real control plane, the rollouts of a Deployment are
// found from a watch of its ReplicaSets, under exactly the role that
// deploy/optional ships, and a new rollout shows at the next call; without
// list or without watch, discovery fails loudly.
func TestDiscoverer(t *testing.T) {
	k := testenv.StartKube(t)
	admin, err := clientset.NewForConfig(k.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	ns := kubetest.Namespace(t, admin)
	kubetest.CanaryDeployment(t, admin, ns, "web", kubetest.Canary{}) // revision 1 (v1), then 2 (v2)
	r := role(t)
	grant(t, admin, ns, "watcher", r.Rules)
	sys := watchSystem(t, ns)
	cfgFor := func(user string) func() (*rest.Config, error) {
		return func() (*rest.Config, error) { return k.ConfigFor(user), nil }
	}

	d, err := rolloutkube.New(sys, 3*time.Hour, cfgFor("watcher"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), kubetest.Timeout)
	defer cancel()
	rss, err := admin.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(rss.Items) != 2 {
		t.Fatalf("replicasets: %v %v", rss, err)
	}
	hash := func(image string) string {
		for _, rs := range rss.Items {
			if rs.Spec.Template.Spec.Containers[0].Image == image {
				return rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
			}
		}
		t.Fatalf("no ReplicaSet of %s", image)
		return ""
	}
	got, err := d.Rollouts(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Revision != hash(kubetest.ImageV2) || got[0].Previous != hash(kubetest.ImageV1) || got[0].Missing != "" || got[0].System != "web" {
		t.Fatalf("rollouts %+v, want v2 (%s) from v1 (%s)", got, hash(kubetest.ImageV2), hash(kubetest.ImageV1))
	}

	// A new rollout appears through the watch.
	kubetest.SetImage(t, admin, ns, "web", "registry.example/web:v3")
	testenv.Eventually(t, kubetest.Timeout, "the v3 rollout to be listed", func() (bool, string) {
		got, err = d.Rollouts(ctx, time.Now())
		return err == nil && len(got) == 2 && got[1].Previous == hash(kubetest.ImageV2), "the v3 rollout is not listed"
	})

	// Without watch the discovery fails; it never says "no rollouts". (Without
	// list it works on this API server, which serves the initial list as a
	// stream of watch events; list is the fallback of servers that do not.)
	for _, verb := range []string{"watch"} {
		user := "without-" + verb
		rule := r.Rules[0]
		rule.Verbs = nil
		for _, v := range r.Rules[0].Verbs {
			if v != verb {
				rule.Verbs = append(rule.Verbs, v)
			}
		}
		grant(t, admin, ns, user, []rbacv1.PolicyRule{rule})
		d, _ := rolloutkube.New(sys, 3*time.Hour, cfgFor(user))
		var err error
		testenv.Eventually(t, 30*time.Second, "discovery to fail without "+verb, func() (bool, string) {
			short, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			got, err = d.Rollouts(short, time.Now())
			return err != nil, fmt.Sprintf("%+v", got)
		})
		d.Close()
		t.Logf("without %s: %v", verb, err)
	}
}
