package testenv

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// TestKubeSmoke starts the control plane and drives it the way the rollback
// executor will: a Deployment through two revisions with kwok-ready pods, a
// VirtualService through the dynamic client, and RBAC for the limited user.
func TestKubeSmoke(t *testing.T) {
	start := time.Now()
	k := StartKube(t)
	t.Logf("StartKube took %s", time.Since(start).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := kubernetes.NewForConfig(k.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}

	const ns, name = "smoke", "web"
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}

	// Revision 1: two replicas, Running and Ready through kwok.
	replicas := int32(2)
	labels := map[string]string{"app": name}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: "registry.example/web:v1"}}},
			},
		},
	}
	phase := time.Now()
	if _, err := admin.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating deployment: %v", err)
	}
	waitDeploymentAvailable(ctx, t, admin, ns, name, "registry.example/web:v1")
	t.Logf("revision 1 available in %s", time.Since(phase).Round(time.Millisecond))

	// Revision 2: a new image.
	phase = time.Now()
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := admin.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		d.Spec.Template.Spec.Containers[0].Image = "registry.example/web:v2"
		_, err = admin.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("updating image: %v", err)
	}
	waitDeploymentAvailable(ctx, t, admin, ns, name, "registry.example/web:v2")
	t.Logf("revision 2 available in %s", time.Since(phase).Round(time.Millisecond))

	d, err := admin.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rev := d.Annotations["deployment.kubernetes.io/revision"]; rev != "2" {
		t.Errorf("deployment revision = %q, want 2", rev)
	}
	rsList, err := admin.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		t.Fatal(err)
	}
	revs := map[string]int32{}
	for _, rs := range rsList.Items {
		revs[rs.Annotations["deployment.kubernetes.io/revision"]] = *rs.Spec.Replicas
	}
	if len(revs) != 2 || revs["1"] != 0 || revs["2"] != 2 {
		t.Errorf("ReplicaSets by revision (replicas) = %v, want revision 1 at 0 and 2 at 2", revs)
	}

	// pods/log is served by kwok's kubelet endpoint from PodLogFiles.
	pods, err := admin.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("listing pods: %v (%d pods)", err, len(pods.Items))
	}
	logs, err := admin.CoreV1().Pods(ns).GetLogs(pods.Items[0].Name, &corev1.PodLogOptions{Container: name}).DoRaw(ctx)
	if err != nil || !strings.Contains(string(logs), "container started") {
		t.Errorf("pod logs = %q, %v; want the lines of %s", logs, err, k.podLogFile)
	}
	logs, err = admin.CoreV1().Pods(ns).GetLogs(pods.Items[0].Name, &corev1.PodLogOptions{Container: name, Previous: true}).DoRaw(ctx)
	if err != nil || !strings.Contains(string(logs), "previous container exited") {
		t.Errorf("previous pod logs = %q, %v; want the lines of %s", logs, err, k.prevLogFile)
	}

	// A VirtualService through the dynamic client, read back in every served version.
	dyn, err := dynamic.NewForConfig(k.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	vsGVR := schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}
	vs := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "VirtualService",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"hosts": []any{"web.smoke.svc.cluster.local"},
			"http": []any{
				map[string]any{
					"name":  "canary-split",
					"match": []any{map[string]any{"uri": map[string]any{"prefix": "/api"}}},
					"route": []any{
						map[string]any{"destination": map[string]any{"host": "web-baseline", "port": map[string]any{"number": int64(8080)}}, "weight": int64(90)},
						map[string]any{"destination": map[string]any{"host": "web-canary", "port": map[string]any{"number": int64(8080)}}, "weight": int64(10)},
					},
					"retries": map[string]any{"attempts": int64(3), "perTryTimeout": "2s"},
				},
				map[string]any{
					"name":  "other",
					"route": []any{map[string]any{"destination": map[string]any{"host": "static"}}},
				},
			},
		},
	}}
	if _, err := dyn.Resource(vsGVR).Namespace(ns).Create(ctx, vs, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating VirtualService: %v", err)
	}
	for _, version := range []string{"v1", "v1beta1", "v1alpha3"} {
		gvr := vsGVR
		gvr.Version = version
		got, err := dyn.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("getting VirtualService %s: %v", version, err)
		}
		routes, _, _ := unstructured.NestedSlice(got.Object, "spec", "http")
		if len(routes) != 2 {
			t.Fatalf("%s: %d http routes, want 2", version, len(routes))
		}
		split, _, _ := unstructured.NestedSlice(routes[0].(map[string]any), "route")
		if w, _, _ := unstructured.NestedInt64(split[1].(map[string]any), "weight"); w != 10 {
			t.Errorf("%s: canary weight = %d, want 10", version, w)
		}
	}
	// The schema is enforced: a weight must be an integer.
	bad := vs.DeepCopy()
	bad.SetName("bad")
	_ = unstructured.SetNestedField(bad.Object, []any{map[string]any{
		"route": []any{map[string]any{"destination": map[string]any{"host": "x"}, "weight": "ninety"}},
	}}, "spec", "http")
	if _, err := dyn.Resource(vsGVR).Namespace(ns).Create(ctx, bad, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("creating a VirtualService with weight \"ninety\": err = %v, want Invalid", err)
	}

	// RBAC: the limited user may do nothing it was not granted.
	limited, err := kubernetes.NewForConfig(k.ConfigFor(KubeRewindUser))
	if err != nil {
		t.Fatal(err)
	}
	err = limited.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("rewind user deleting namespace %s: err = %v, want Forbidden", ns, err)
	}
	if _, err := limited.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("rewind user getting the deployment before a grant: err = %v, want Forbidden", err)
	}
	grantDeploymentReader(ctx, t, admin, ns, KubeRewindUser)
	// The RBAC authorizer sees the new binding through its informer: poll.
	grantCtx, grantCancel := context.WithTimeout(ctx, 10*time.Second)
	defer grantCancel()
	for {
		_, err := limited.AppsV1().Deployments(ns).Get(grantCtx, name, metav1.GetOptions{})
		if err == nil {
			break
		}
		if !apierrors.IsForbidden(err) || grantCtx.Err() != nil {
			t.Fatalf("rewind user getting the deployment after a grant: %v", err)
		}
		select {
		case <-grantCtx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := limited.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("rewind user deleting namespace after an unrelated grant: err = %v, want Forbidden", err)
	}
	// Any other user name is impersonated by the admin, under RBAC too.
	sa, err := kubernetes.NewForConfig(k.ConfigFor("system:serviceaccount:" + ns + ":rewind"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sa.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("service account listing pods: err = %v, want Forbidden", err)
	}

	// The API server can be stopped and started again; the state is kept.
	phase = time.Now()
	k.StopAPIServer()
	t.Logf("API server stopped in %s", time.Since(phase).Round(time.Millisecond))
	if _, err := admin.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
		t.Errorf("getting the deployment with the API server stopped succeeded")
	}
	phase = time.Now()
	k.StartAPIServer()
	t.Logf("API server restarted in %s", time.Since(phase).Round(time.Millisecond))
	if d, err := admin.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{}); err != nil || d.Annotations["deployment.kubernetes.io/revision"] != "2" {
		t.Errorf("deployment after the restart: %v, %v", d, err)
	}
}

// waitDeploymentAvailable polls (bounded by ctx) until the Deployment has
// rolled out image with every replica updated, available and Ready.
func waitDeploymentAvailable(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name, image string) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		switch {
		case err != nil:
			last = err.Error()
		case d.Status.ObservedGeneration < d.Generation:
			last = fmt.Sprintf("observedGeneration %d < generation %d", d.Status.ObservedGeneration, d.Generation)
		default:
			want := *d.Spec.Replicas
			st := d.Status
			last = fmt.Sprintf("replicas %d updated %d ready %d available %d (want %d)", st.Replicas, st.UpdatedReplicas, st.ReadyReplicas, st.AvailableReplicas, want)
			if st.Replicas == want && st.UpdatedReplicas == want && st.ReadyReplicas == want && st.AvailableReplicas == want {
				if ok, why := podsReady(ctx, cs, ns, d, image); ok {
					return
				} else {
					last += "; " + why
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("deployment %s/%s not available with %s: %s", ns, name, image, last)
		case <-tick.C:
		}
	}
}

func podsReady(ctx context.Context, cs kubernetes.Interface, ns string, d *appsv1.Deployment, image string) (bool, string) {
	sel := metav1.FormatLabelSelector(d.Spec.Selector)
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return false, err.Error()
	}
	ready := 0
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || p.Spec.Containers[0].Image != image {
			continue
		}
		if p.Spec.NodeName != KubeNodeName || p.Status.Phase != corev1.PodRunning {
			return false, fmt.Sprintf("pod %s on %q is %s", p.Name, p.Spec.NodeName, p.Status.Phase)
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	if ready != int(*d.Spec.Replicas) {
		return false, fmt.Sprintf("%d pods with %s Ready", ready, image)
	}
	return true, ""
}

func grantDeploymentReader(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, user string) {
	t.Helper()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "deployment-reader", Namespace: ns},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get"}}},
	}
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "deployment-reader", Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: user}},
	}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
