package gitops_test

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/gitops"
	"github.com/rewind-sre/rewind/internal/testenv"
)

// TestHelmInstanceLabelWithoutArgoRBAC: Helm sets app.kubernetes.io/instance
// too. Under a role that may read the canary but not Argo CD's
// Applications (deploy/rbac.yaml without deploy/gitops/rbac.yaml), a
// rollback goes on exactly as without GitOps where Argo CD is not
// installed (discovery says so), and stops with a clear error where it is.
func TestHelmInstanceLabelWithoutArgoRBAC(t *testing.T) {
	k := testenv.StartKube(t)
	admin := clientsFor(t, k.Kubeconfig())
	createNamespace(t, admin.cs, appNS)
	replicas := int32(1)
	labels := map[string]string{"app": "checkout", gitops.LabelArgoInstance: "checkout"}
	if _, err := admin.cs.AppsV1().Deployments(appNS).Create(context.Background(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: canary, Namespace: appNS, Labels: labels},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: imageV1}}}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const user = "rewind-helm"
	if _, err := admin.cs.RbacV1().Roles(appNS).Create(context.Background(), &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "read-deployments", Namespace: appNS},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.cs.RbacV1().RoleBindings(appNS).Create(context.Background(), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "read-deployments", Namespace: appNS},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "read-deployments"},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: user}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := k.ConfigFor(user)
	dyn := dynamic.NewForConfigOrDie(cfg)
	disc := discovery.NewDiscoveryClientForConfigOrDie(cfg)
	refs := []gitops.Ref{{GVR: deploymentsGVR, Kind: "Deployment", Namespace: appNS, Name: canary}}
	f := &gitops.Finder{Dyn: dyn, Discovery: func() (discovery.DiscoveryInterface, error) { return disc, nil }}
	testenv.Eventually(t, 30*time.Second, "the role to take effect", func() (bool, string) {
		_, err := f.Owners(t.Context(), refs...)
		return err == nil || !strings.Contains(err.Error(), "deployments"), errString(err)
	})

	// No Argo CD: the label is Helm's; the step is skipped as without GitOps.
	owners, err := f.Owners(t.Context(), refs...)
	if err != nil || len(owners) != 0 {
		t.Fatalf("without Argo CD installed: %+v, %v; want no owner", owners, err)
	}
	res, err := (&gitops.Suspend{Finder: f, Refs: refs}).Do(t.Context(), &rewind.Rollback{ID: "rb-helm"})
	if err != nil || !res.Skipped || !strings.HasPrefix(res.Detail, "no GitOps owner") {
		t.Fatalf("suspend-gitops without Argo CD: %+v, %v", res, err)
	}
	// Without a way to ask discovery, the label cannot be ruled out.
	if _, err := (&gitops.Finder{Dyn: dyn}).Owners(t.Context(), refs...); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("without discovery: %v; want forbidden", err)
	}

	// Argo CD installed: the label may be its; no silent guess.
	testenv.InstallArgoCDCRDs(t, k)
	_, err = f.Owners(t.Context(), refs...)
	if err == nil || !strings.Contains(err.Error(), "forbidden") || !strings.Contains(err.Error(), "rollback.gitops: none") {
		t.Fatalf("with Argo CD installed: %v; want forbidden, naming gitops: none", err)
	}
	if _, err := (&gitops.Suspend{Finder: f, Refs: refs}).Do(t.Context(), &rewind.Rollback{ID: "rb-helm-2"}); err == nil {
		t.Fatal("suspend-gitops with Argo CD installed and no RBAC on Applications went on")
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
