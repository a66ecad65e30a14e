package kubernetes

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rewind-sre/rewind/executor/kubernetes/kubetest"
)

const changeCause = "kubernetes.io/change-cause"

func (e *env) testUndo(t *testing.T) {
	ns := kubetest.Namespace(t, e.admin)
	kubetest.CanaryDeployment(t, e.admin, ns, "web", kubetest.Canary{Annotations: map[string]string{changeCause: "deploy v1"}})
	// Annotations as the deployment moves to v2: kubectl's undo takes the
	// change cause back from revision 1's ReplicaSet, and drops an
	// annotation revision 1 did not have; Rewind's own survive.
	kubetest.Update(t, e.admin, ns, "web", func(d *appsv1.Deployment) {
		d.Annotations[changeCause] = "deploy v2"
		d.Annotations["team"] = "checkout"
	})
	tg, dir := e.target(t, ns, "web")
	ctx := ctxFor(t, time.Minute)
	rb := rollback()
	if _, err := tg.Fence().Acquire(ctx, rb.System, rb.ID); err != nil {
		t.Fatal(err)
	}
	bad := e.replicaSetByRevision(t, ns, "web", "2")

	before := e.desired(t, ns, "web")
	changes, err := tg.Undo().Plan(ctx, rb)
	if err != nil || len(changes) != 1 {
		t.Fatalf("Plan = %+v, %v; want one change", changes, err)
	}
	if want := "template revision 2 → 1, images web=" + kubetest.ImageV2 + " → web=" + kubetest.ImageV1; !strings.Contains(changes[0].Detail, want) {
		t.Errorf("Plan detail %q; want it to contain %q", changes[0].Detail, want)
	}
	if got := e.desired(t, ns, "web"); got != before {
		t.Fatalf("Plan changed the Deployment")
	}

	res, err := tg.Undo().Do(ctx, rb)
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	t.Logf("undo: %s; facts %v", res.Detail, res.Facts)
	if res.Skipped {
		t.Errorf("first Do skipped")
	}
	want := map[string]string{"fromRevision": "2", "toRevision": "1", "revision": "3",
		"fromImages": "web=" + kubetest.ImageV2, "toImages": "web=" + kubetest.ImageV1,
		"canaryStartedAt": bad.CreationTimestamp.UTC().Format(time.RFC3339)}
	for k, v := range want {
		if res.Facts[k] != v {
			t.Errorf("fact %s = %q, want %q", k, res.Facts[k], v)
		}
	}
	if _, err := time.ParseDuration(res.Facts["rolloutSeconds"] + "s"); err != nil {
		t.Errorf("fact rolloutSeconds = %q: %v", res.Facts["rolloutSeconds"], err)
	}
	// Do returned once the rollout completed: no poll needed.
	d, err := e.admin.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ok, why := kubetest.Available(d, kubetest.ImageV1); !ok {
		t.Errorf("after Do the Deployment is not available at v1: %s", why)
	}
	if _, ok := d.Spec.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey]; ok {
		t.Errorf("the restored template kept its pod-template-hash label: %v", d.Spec.Template.Labels)
	}
	if d.Annotations[changeCause] != "deploy v1" || d.Annotations["team"] != "" {
		t.Errorf("annotations after undo: change-cause %q, team %q; want kubectl's: revision 1's change cause, no team",
			d.Annotations[changeCause], d.Annotations["team"])
	}
	if d.Annotations[AnnotationRollback] != rb.ID || d.Annotations[AnnotationRollbackState] != FenceActive {
		t.Errorf("the fence did not survive the undo: %v", d.Annotations)
	}
	rec, err := readUndoRecord(d)
	if err != nil || rec == nil || rec.Rollback != rb.ID || rec.ToRevision != 1 || rec.FromHash != bad.Labels[appsv1.DefaultDeploymentUniqueLabelKey] {
		t.Errorf("undo record %+v, %v", rec, err)
	}
	// The bad revision's pods were kept before they went away.
	pre := filepath.Join(dir, rb.ID, PreUndoDir)
	if data, err := os.ReadFile(filepath.Join(pre, "pods.yaml")); err != nil || !strings.Contains(string(data), kubetest.ImageV2) {
		t.Errorf("pre-undo pods.yaml: %v; want the v2 pods", err)
	}
	if idx, err := ReadIndex(pre); err != nil || len(idx.Files) < 3 {
		t.Errorf("pre-undo index %+v, %v; want pods.yaml and two logs", idx, err)
	} else {
		for _, f := range idx.Files {
			if f.Missing {
				t.Errorf("pre-undo snapshot missed %s: %s", f.Path, f.Error)
			}
		}
	}

	// The revisions as the UI lists them: revision 1 came back as 3.
	revs, err := tg.Revisions(ctx)
	if err != nil || len(revs) != 2 ||
		revs[0].Number != 3 || !revs[0].Current || revs[0].Image != kubetest.ImageV1 ||
		revs[1].Number != 2 || revs[1].Current || revs[1].Image != kubetest.ImageV2 || revs[1].ReplicaSet != bad.Name ||
		revs[1].Hash != bad.Labels[appsv1.DefaultDeploymentUniqueLabelKey] || revs[1].Created.IsZero() {
		t.Errorf("Revisions after the undo = %+v, %v; want 3 (v1, current), 2 (v2)", revs, err)
	}

	// Re-run (a resume after the undo was written): skipped, nothing written.
	before = e.desired(t, ns, "web")
	again, err := tg.Undo().Do(ctx, rb)
	if err != nil || !again.Skipped || !strings.Contains(again.Detail, "this rollback restored") {
		t.Fatalf("second Do = %+v, %v; want skipped, restored by this rollback", again, err)
	}
	if again.Facts["toRevision"] != "1" || again.Facts["canaryStartedAt"] != want["canaryStartedAt"] {
		t.Errorf("second Do facts %v; want those of the undo", again.Facts)
	}
	// Another rollback of the same system: the previous revision is now
	// the bad one (revision 2); it must not be restored.
	other := rollback()
	third, err := tg.Undo().Do(ctx, other)
	if err != nil || !third.Skipped || !strings.Contains(third.Detail, "rollback "+rb.ID+" restored") {
		t.Fatalf("Do of another rollback = %+v, %v; want skipped, restored by %s", third, err, rb.ID)
	}
	if changes, err := tg.Undo().Plan(ctx, other); err != nil || len(changes) != 0 {
		t.Errorf("Plan after the undo = %+v, %v; want no change", changes, err)
	}
	if got := e.desired(t, ns, "web"); got != before {
		t.Errorf("re-runs wrote the Deployment \nbefore: %s\nafter:  %s", before, got)
	}
}

// testUndoAfterNewRevision: a Deployment changed after this rollback's
// undo is an error for this rollback, and a new rollback undoes the new
// revision.
func (e *env) testUndoAfterNewRevision(t *testing.T) {
	ns := kubetest.Namespace(t, e.admin)
	kubetest.CanaryDeployment(t, e.admin, ns, "web", kubetest.Canary{})
	tg, _ := e.target(t, ns, "web")
	ctx := ctxFor(t, time.Minute)
	rb := rollback()
	if _, err := tg.Undo().Do(ctx, rb); err != nil {
		t.Fatal(err)
	}
	const v3 = "registry.example/web:v3"
	kubetest.SetImage(t, e.admin, ns, "web", v3)
	kubetest.WaitAvailable(t, e.admin, ns, "web", v3)

	_, err := tg.Undo().Do(ctx, rb)
	if err == nil || !strings.Contains(err.Error(), "not undoing a second time") {
		t.Fatalf("re-run after a new revision: %v; want an error", err)
	}
	res, err := tg.Undo().Do(ctx, rollback())
	if err != nil || res.Skipped || res.Facts["fromImages"] != "web="+v3 || res.Facts["toImages"] != "web="+kubetest.ImageV1 {
		t.Fatalf("a new rollback = %+v, %v; want v3 undone to v1", res, err)
	}
	kubetest.WaitAvailable(t, e.admin, ns, "web", kubetest.ImageV1)
}

func (e *env) testUndoPaused(t *testing.T) {
	ns := kubetest.Namespace(t, e.admin)
	kubetest.CanaryDeployment(t, e.admin, ns, "web", kubetest.Canary{})
	kubetest.Update(t, e.admin, ns, "web", func(d *appsv1.Deployment) { d.Spec.Paused = true })
	tg, _ := e.target(t, ns, "web")
	ctx := ctxFor(t, time.Minute)
	before := e.desired(t, ns, "web")
	for name, run := range map[string]func() error{
		"Plan": func() error { _, err := tg.Undo().Plan(ctx, rollback()); return err },
		"Do":   func() error { _, err := tg.Undo().Do(ctx, rollback()); return err },
	} {
		if err := run(); err == nil || !strings.Contains(err.Error(), "is paused") {
			t.Errorf("%s on a paused Deployment: %v; want a clear error", name, err)
		}
	}
	if got := e.desired(t, ns, "web"); got != before {
		t.Errorf("a failed undo of a paused Deployment wrote it")
	}
}

func (e *env) testUndoNoPreviousRevision(t *testing.T) {
	ns := kubetest.Namespace(t, e.admin)
	kubetest.CanaryDeployment(t, e.admin, ns, "web", kubetest.Canary{})
	// Keep only the latest ReplicaSet, as revisionHistoryLimit 0 does.
	kubetest.Update(t, e.admin, ns, "web", func(d *appsv1.Deployment) { d.Spec.RevisionHistoryLimit = new(int32) })
	ctx := ctxFor(t, time.Minute)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for { // until the controller has deleted the old ReplicaSet (bounded by ctx)
		list, err := e.admin.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) == 1 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d ReplicaSets left: %v", len(list.Items), ctx.Err())
		case <-tick.C:
		}
	}
	tg, _ := e.target(t, ns, "web")
	if _, err := tg.Undo().Do(ctx, rollback()); err == nil || !strings.Contains(err.Error(), "no previous revision") {
		t.Fatalf("undo without history: %v; want no previous revision", err)
	}
}

func (e *env) testMissingDeployment(t *testing.T) {
	ns := kubetest.Namespace(t, e.admin)
	tg, _ := e.target(t, ns, "nope")
	ctx := ctxFor(t, time.Minute)
	for name, run := range map[string]func() error{
		"Undo.Plan":      func() error { _, err := tg.Undo().Plan(ctx, rollback()); return err },
		"Undo.Do":        func() error { _, err := tg.Undo().Do(ctx, rollback()); return err },
		"ScaleDown.Plan": func() error { _, err := tg.ScaleDown().Plan(ctx, rollback()); return err },
		"ScaleDown.Do":   func() error { _, err := tg.ScaleDown().Do(ctx, rollback()); return err },
	} {
		if err := run(); err == nil || !strings.Contains(err.Error(), "Deployment "+ns+"/nope not found") {
			t.Errorf("%s: %v; want Deployment %s/nope not found", name, err, ns)
		}
	}
	// Evidence keeps what it can: the missing Deployment is in the index.
	rb := rollback()
	res, err := tg.Evidence().Do(ctx, rb)
	if err != nil {
		t.Fatalf("Evidence: %v", err)
	}
	idx, err := ReadIndex(res.Facts["bundle"])
	if err != nil {
		t.Fatal(err)
	}
	if f := entry(idx, "deployment.yaml"); f == nil || !f.Missing || !strings.Contains(f.Error, "not found") {
		t.Errorf("index entry of deployment.yaml: %+v; want missing, not found", f)
	}
}

func (e *env) testScaleDown(t *testing.T) {
	ns := kubetest.Namespace(t, e.admin)
	kubetest.CanaryDeployment(t, e.admin, ns, "web", kubetest.Canary{Replicas: 3})
	tg, _ := e.target(t, ns, "web")
	ctx := ctxFor(t, time.Minute)
	changes, err := tg.ScaleDown().Plan(ctx, rollback())
	if err != nil || len(changes) != 1 || changes[0].Detail != "replicas 3 → 0" {
		t.Fatalf("Plan = %+v, %v", changes, err)
	}
	res, err := tg.ScaleDown().Do(ctx, rollback())
	if err != nil || res.Skipped || res.Facts["fromReplicas"] != "3" {
		t.Fatalf("Do = %+v, %v", res, err)
	}
	d, _ := e.admin.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if *d.Spec.Replicas != 0 {
		t.Errorf("replicas = %d after scale-down", *d.Spec.Replicas)
	}
	if res, err := tg.ScaleDown().Do(ctx, rollback()); err != nil || !res.Skipped {
		t.Errorf("second Do = %+v, %v; want skipped", res, err)
	}
	if changes, err := tg.ScaleDown().Plan(ctx, rollback()); err != nil || len(changes) != 0 {
		t.Errorf("Plan at 0 = %+v, %v; want nothing", changes, err)
	}
	off, err := NewForClient(e.admin, policy0(ns, "web"))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := off.ScaleDown().Do(ctx, rollback()); err != nil || !res.Skipped || !strings.Contains(res.Detail, "not configured") {
		t.Errorf("Do without scaleToZero = %+v, %v; want skipped", res, err)
	}
}

// testAPIServerStoppedMidUndo: the API server dies after the undo was
// written, while Do watches the rollout (kept from completing by
// minReadySeconds): Do returns an error at its deadline, not a hang.
func (e *env) testAPIServerStoppedMidUndo(t *testing.T) {
	ns := kubetest.Namespace(t, e.admin)
	kubetest.CanaryDeployment(t, e.admin, ns, "web", kubetest.Canary{MinReadySeconds: 300})
	tg, _ := e.target(t, ns, "web")
	const deadline = 8 * time.Second
	stopped := make(chan struct{})
	go func() { // stop the API server once the undo is written
		defer close(stopped)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for range tick.C {
			d, err := e.admin.AppsV1().Deployments(ns).Get(context.Background(), "web", metav1.GetOptions{})
			if err == nil && d.Spec.Template.Spec.Containers[0].Image == kubetest.ImageV1 {
				e.k.StopAPIServer()
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	start := time.Now()
	_, err := tg.Undo().Do(ctx, rollback())
	took := time.Since(start)
	<-stopped
	defer e.k.StartAPIServer()
	t.Logf("Do with the API server stopped mid-undo returned after %s: %v", took.Round(time.Millisecond), err)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Do: %v; want a deadline error", err)
	}
	if took > deadline+2*time.Second {
		t.Errorf("Do took %s with a %s deadline", took, deadline)
	}
}

func (e *env) replicaSetByRevision(t *testing.T, ns, name, rev string) *appsv1.ReplicaSet {
	t.Helper()
	list, err := e.admin.AppsV1().ReplicaSets(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range list.Items {
		if list.Items[i].Annotations[revisionAnnotation] == rev {
			return &list.Items[i]
		}
	}
	t.Fatalf("no ReplicaSet of revision %s", rev)
	return nil
}
