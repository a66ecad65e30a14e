package gitops_test

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/gitops"
	"github.com/rewind-sre/rewind/internal/testenv"
	"github.com/rewind-sre/rewind/plan/plantest"
)

var deploymentsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}

// TestOwnersAndSuspension runs on one control plane with Flux's and Argo
// CD's CRDs: owner detection from every marker, and Suspend/Resume on
// every owner kind, restoring exactly what was there.
func TestOwnersAndSuspension(t *testing.T) {
	k := testenv.StartKube(t)
	testenv.InstallArgoCDCRDs(t, k)
	cl := clientsFor(t, k.Kubeconfig())
	for _, ns := range []string{"shop", "flux-system", "argocd"} {
		createNamespace(t, cl.cs, ns)
	}
	f := &gitops.Finder{Dyn: cl.dyn}
	t.Run("Owners", func(t *testing.T) { testOwners(t, cl, f) })
	t.Run("SuspendResumeExactly", func(t *testing.T) { testSuspendResume(t, cl, f) })
	t.Run("ApplicationSet", func(t *testing.T) { testApplicationSet(t, cl, f) })
	t.Run("FailureStopsOrProceeds", func(t *testing.T) { testFailure(t, cl, f) })
	t.Run("Suite", func(t *testing.T) {
		n := 0
		plantest.ExecutorSuite(t, func(t *testing.T) (rewind.Executor, *rewind.Rollback, func() string) {
			n++
			name := "suite-" + string(rune('a'+n))
			fluxObject(t, cl, name, map[string]any{"interval": "1m", "path": "./", "prune": false, "sourceRef": map[string]any{"kind": "GitRepository", "name": "x"}})
			ex := &gitops.Suspend{Finder: f, Owners: []gitops.Owner{{Kind: gitops.KindKustomization, Namespace: "flux-system", Name: name}}}
			return ex, &rewind.Rollback{ID: "rb-suite", System: "checkout"}, func() string {
				u := get(t, cl.dyn, gitops.KustomizationGVR, "flux-system", name)
				b, _ := yaml.Marshal(map[string]any{"spec": u.Object["spec"], "annotations": u.GetAnnotations()})
				return string(b)
			}
		})
	})
}

func deployment(t *testing.T, cl clients, name string, labels, annotations map[string]string) gitops.Ref {
	t.Helper()
	sel := map[string]string{"app": name}
	r := int32(0)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: labels, Annotations: annotations},
		Spec: appsv1.DeploymentSpec{Replicas: &r, Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: imageV1}}}}},
	}
	if _, err := cl.cs.AppsV1().Deployments("shop").Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return gitops.Ref{GVR: deploymentsGVR, Kind: "Deployment", Namespace: "shop", Name: name}
}

func fluxObject(t *testing.T, cl clients, name string, spec map[string]any) {
	t.Helper()
	create(t, cl.dyn, gitops.KustomizationGVR, map[string]any{"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
		"metadata": map[string]any{"name": name, "namespace": "flux-system"}, "spec": spec})
}

func application(t *testing.T, cl clients, name string, syncPolicy map[string]any, meta map[string]any) {
	t.Helper()
	md := map[string]any{"name": name, "namespace": "argocd"}
	for k, v := range meta {
		md[k] = v
	}
	spec := map[string]any{"project": "default", "source": map[string]any{"repoURL": "http://git.invalid/apps.git", "path": "apps", "targetRevision": "main"},
		"destination": map[string]any{"server": "https://kubernetes.default.svc", "namespace": "shop"}}
	if syncPolicy != nil {
		spec["syncPolicy"] = syncPolicy
	}
	create(t, cl.dyn, gitops.ApplicationGVR, map[string]any{"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": md, "spec": spec})
}

func testOwners(t *testing.T, cl clients, f *gitops.Finder) {
	application(t, cl, "web", nil, nil)
	application(t, cl, "parent", nil, nil)
	application(t, cl, "child", nil, map[string]any{"annotations": map[string]any{gitops.AnnotationArgoTracking: "parent:argoproj.io/Application:argocd/child"}})
	cases := []struct {
		name        string
		labels, ann map[string]string
		want        string // owners, or "error: ..."
	}{
		{"plain", nil, nil, ""},
		{"flux-kustomization", map[string]string{gitops.LabelKustomizeName: "apps", gitops.LabelKustomizeNamespace: "flux-system"}, nil, "Flux Kustomization flux-system/apps"},
		{"flux-helm", map[string]string{gitops.LabelHelmName: "web", gitops.LabelHelmNamespace: "shop", gitops.LabelKustomizeName: "x"}, nil, "Flux HelmRelease shop/web"},
		{"argo-annotation", nil, map[string]string{gitops.AnnotationArgoTracking: "web:apps/Deployment:shop/argo-annotation"}, "Argo CD Application argocd/web"},
		{"argo-copied", nil, map[string]string{gitops.AnnotationArgoTracking: "web:apps/Deployment:shop/other"}, "error: does not name this object"},
		{"argo-label", map[string]string{gitops.LabelArgoInstance: "web"}, nil, "Argo CD Application argocd/web"},
		{"helm-release-label", map[string]string{gitops.LabelArgoInstance: "my-helm-release"}, nil, ""},
		{"app-of-apps", nil, map[string]string{gitops.AnnotationArgoTracking: "child:apps/Deployment:shop/app-of-apps"}, "Argo CD Application argocd/child, Argo CD Application argocd/parent"},
		{"argo-missing-app", nil, map[string]string{gitops.AnnotationArgoTracking: "gone:apps/Deployment:shop/argo-missing-app"}, "error: not found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ref := deployment(t, cl, c.name, c.labels, c.ann)
			owners, err := f.Owners(t.Context(), ref)
			if want, ok := strings.CutPrefix(c.want, "error: "); ok {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("owners %v, err %v; want an error with %q", owners, err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, o := range owners {
				names = append(names, o.String())
			}
			if got := strings.Join(names, ", "); got != c.want {
				t.Fatalf("owners %q, want %q", got, c.want)
			}
		})
	}
	if _, err := f.Owners(t.Context(), gitops.Ref{GVR: deploymentsGVR, Kind: "Deployment", Namespace: "shop", Name: "nope"}); err == nil {
		t.Error("a missing target has no error")
	}
}

// testSuspendResume: Resume puts back exactly what was there before —
// absent, false or true for Flux, the whole automated block for Argo CD —
// and a second Suspend of the same rollback changes nothing.
func testSuspendResume(t *testing.T, cl clients, f *gitops.Finder) {
	fluxObject(t, cl, "absent", map[string]any{"interval": "1m", "path": "./", "prune": false, "sourceRef": map[string]any{"kind": "GitRepository", "name": "x"}})
	fluxObject(t, cl, "was-false", map[string]any{"interval": "1m", "path": "./", "prune": false, "suspend": false, "sourceRef": map[string]any{"kind": "GitRepository", "name": "x"}})
	fluxObject(t, cl, "was-true", map[string]any{"interval": "1m", "path": "./", "prune": false, "suspend": true, "sourceRef": map[string]any{"kind": "GitRepository", "name": "x"}})
	auto := map[string]any{"automated": map[string]any{"prune": true, "selfHeal": true, "allowEmpty": false}, "syncOptions": []any{"CreateNamespace=true"}}
	application(t, cl, "auto", auto, nil)
	owners := []gitops.Owner{
		{Kind: gitops.KindKustomization, Namespace: "flux-system", Name: "absent"},
		{Kind: gitops.KindKustomization, Namespace: "flux-system", Name: "was-false"},
		{Kind: gitops.KindKustomization, Namespace: "flux-system", Name: "was-true"},
		{Kind: gitops.KindApplication, Namespace: "argocd", Name: "auto"},
	}
	specs := func() []string {
		var out []string
		for _, o := range owners {
			u := get(t, cl.dyn, o.Kind.GVR(), o.Namespace, o.Name)
			out = append(out, toJSON(u.Object["spec"]))
		}
		return out
	}
	before := specs()
	s := &gitops.Suspend{Finder: f, Owners: owners}
	rb := &rewind.Rollback{ID: "rb-exact", System: "checkout"}
	changes, err := s.Plan(t.Context(), rb)
	if err != nil || len(changes) != 4 {
		t.Fatalf("Plan: %+v, %v", changes, err)
	}
	res, err := s.Do(t.Context(), rb)
	if err != nil || res.Skipped {
		t.Fatalf("Do: %+v, %v", res, err)
	}
	for _, o := range owners[:3] {
		u := get(t, cl.dyn, o.Kind.GVR(), o.Namespace, o.Name)
		if v, _, _ := unstructured.NestedBool(u.Object, "spec", "suspend"); !v {
			t.Errorf("%s not suspended", o)
		}
	}
	app := get(t, cl.dyn, gitops.ApplicationGVR, "argocd", "auto")
	if _, found, _ := unstructured.NestedFieldNoCopy(app.Object, "spec", "syncPolicy", "automated"); found {
		t.Error("automated sync still on")
	}
	if opts, _, _ := unstructured.NestedStringSlice(app.Object, "spec", "syncPolicy", "syncOptions"); len(opts) != 1 {
		t.Errorf("syncOptions lost: %v", opts)
	}
	again, err := s.Do(t.Context(), rb)
	if err != nil || !again.Skipped {
		t.Fatalf("second Do: %+v, %v; want skipped", again, err)
	}
	// Plan after Do writes nothing: each owner is named, to be kept.
	if p, _ := s.Plan(t.Context(), rb); len(p) != 4 || p[0].Action != "keep" || p[3].Action != "keep" ||
		p[0].Target != owners[0].String() || !strings.Contains(p[0].Detail, "already suspended by rollback rb-exact") {
		t.Errorf("Plan after Do: %+v", p)
	}
	// Another rollback finds the suspension in place and keeps its record.
	other, err := s.Do(t.Context(), &rewind.Rollback{ID: "rb-other"})
	if err != nil || !strings.Contains(other.Facts[gitops.FactOwners], `"by":"rb-exact"`) {
		t.Fatalf("a later rollback's Do: %+v, %v", other, err)
	}
	resumed, err := gitops.Resume(t.Context(), f, owners)
	if err != nil || len(resumed) != 4 {
		t.Fatalf("Resume: %+v, %v", resumed, err)
	}
	want := []string{"spec.suspend: null", "spec.suspend: false", "spec.suspend: true", `spec.syncPolicy.automated: {"allowEmpty":false,"prune":true,"selfHeal":true}`}
	for i, r := range resumed {
		if r.Restored != want[i] || r.By != "rb-exact" {
			t.Errorf("resumed %s: %+v, want %q", r.Owner, r, want[i])
		}
	}
	after := specs()
	for i := range before {
		if before[i] != after[i] {
			t.Errorf("%s after Resume:\n%s\nwant exactly:\n%s", owners[i], after[i], before[i])
		}
	}
	for _, o := range owners {
		if by, err := gitops.SuspendedBy(t.Context(), f, o); err != nil || by != "" {
			t.Errorf("%s still marked suspended by %q (%v)", o, by, err)
		}
	}
}

// testApplicationSet: an Application generated by an ApplicationSet is
// suspended with an ignoreApplicationDifferences rule on the set, which
// Resume removes again (a rule of the user's stays).
func testApplicationSet(t *testing.T, cl clients, f *gitops.Finder) {
	userRule := map[string]any{"name": "other", "jsonPointers": []any{"/spec/source/targetRevision"}}
	set := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet",
		"metadata": map[string]any{"name": "shops", "namespace": "argocd"},
		"spec": map[string]any{"generators": []any{map[string]any{"list": map[string]any{"elements": []any{map[string]any{"name": "eu"}}}}},
			"template": map[string]any{"metadata": map[string]any{"name": "{{name}}"}, "spec": map[string]any{"project": "default",
				"source": map[string]any{"repoURL": "http://git.invalid/x.git", "path": "x"}, "destination": map[string]any{"server": "https://kubernetes.default.svc", "namespace": "shop"}}},
			"ignoreApplicationDifferences": []any{userRule}}}}
	created, err := cl.dyn.Resource(gitops.ApplicationSetGVR).Namespace("argocd").Create(t.Context(), set, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctrl := true
	application(t, cl, "eu", map[string]any{"automated": map[string]any{"selfHeal": true}}, map[string]any{"ownerReferences": []any{map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet", "name": "shops", "uid": string(created.GetUID()), "controller": ctrl}}})
	ref := deployment(t, cl, "appset-web", nil, map[string]string{gitops.AnnotationArgoTracking: "eu:apps/Deployment:shop/appset-web"})
	owners, err := f.Owners(t.Context(), ref)
	if err != nil || len(owners) != 1 || owners[0].ApplicationSet != "shops" {
		t.Fatalf("owners %+v, %v", owners, err)
	}
	s := &gitops.Suspend{Finder: f, Refs: []gitops.Ref{ref}}
	plan, err := s.Plan(t.Context(), &rewind.Rollback{ID: "rb-set"})
	if err != nil || len(plan) != 2 || plan[0].Target != "Argo CD ApplicationSet argocd/shops" {
		t.Fatalf("Plan: %+v, %v", plan, err)
	}
	if _, err := s.Do(t.Context(), &rewind.Rollback{ID: "rb-set"}); err != nil {
		t.Fatal(err)
	}
	rules := func() string {
		u := get(t, cl.dyn, gitops.ApplicationSetGVR, "argocd", "shops")
		r, _, _ := unstructured.NestedSlice(u.Object, "spec", "ignoreApplicationDifferences")
		return toJSON(r)
	}
	if got, want := rules(), toJSON([]any{userRule, map[string]any{"name": "eu", "jsonPointers": []any{"/spec/syncPolicy"}}}); got != want {
		t.Fatalf("rules after Suspend %s, want %s", got, want)
	}
	if _, err := gitops.Resume(t.Context(), f, owners); err != nil {
		t.Fatal(err)
	}
	if got, want := rules(), toJSON([]any{userRule}); got != want {
		t.Fatalf("rules after Resume %s, want %s", got, want)
	}
	app := get(t, cl.dyn, gitops.ApplicationGVR, "argocd", "eu")
	if v, _, _ := unstructured.NestedBool(app.Object, "spec", "syncPolicy", "automated", "selfHeal"); !v {
		t.Error("self-heal not restored")
	}
}

// testFailure: an owner that cannot be suspended fails the step (the plan
// stops), unless the policy says proceed.
func testFailure(t *testing.T, cl clients, f *gitops.Finder) {
	missing := []gitops.Owner{{Kind: gitops.KindKustomization, Namespace: "flux-system", Name: "not-there"}}
	s := &gitops.Suspend{Finder: f, Owners: missing}
	if _, err := s.Do(t.Context(), &rewind.Rollback{ID: "rb-f"}); err == nil || !strings.Contains(err.Error(), "not-there") {
		t.Fatalf("stop: %v", err)
	}
	s.Proceed = true
	res, err := s.Do(t.Context(), &rewind.Rollback{ID: "rb-f"})
	if err != nil || !res.Escalate || !strings.Contains(res.Detail, "the reconciler may undo this rollback") {
		t.Fatalf("proceed: %+v, %v", res, err)
	}
	ref := deployment(t, cl, "no-owner", nil, nil)
	res, err = (&gitops.Suspend{Finder: f, Refs: []gitops.Ref{ref}}).Do(t.Context(), &rewind.Rollback{ID: "rb-f"})
	if err != nil || !res.Skipped || !strings.Contains(res.Detail, "no GitOps owner") {
		t.Fatalf("no owner: %+v, %v", res, err)
	}
}
