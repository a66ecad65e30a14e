package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientset "k8s.io/client-go/kubernetes"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/executor/kubernetes/kubetest"
	"github.com/rewind-sre/rewind/internal/testenv"
	"github.com/rewind-sre/rewind/plan/plantest"
	"github.com/rewind-sre/rewind/policy"
)

// env is the control plane every subtest of TestKubernetes shares: it is
// started once (~5 s); each subtest works in a namespace of its own.
type env struct {
	k     *testenv.Kube
	admin clientset.Interface
}

// TestKubernetes runs the executors against a real API server (RBAC on),
// controller manager, scheduler and kwok. The subtest that stops the API
// server runs last.
func TestKubernetes(t *testing.T) {
	start := time.Now()
	k := testenv.StartKube(t)
	t.Logf("StartKube took %s", time.Since(start).Round(time.Millisecond))
	admin, err := clientset.NewForConfig(k.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{k: k, admin: admin}

	t.Run("Undo", e.testUndo)
	t.Run("UndoAfterNewRevision", e.testUndoAfterNewRevision)
	t.Run("UndoPaused", e.testUndoPaused)
	t.Run("UndoNoPreviousRevision", e.testUndoNoPreviousRevision)
	t.Run("MissingDeployment", e.testMissingDeployment)
	t.Run("ScaleDown", e.testScaleDown)
	t.Run("Evidence", e.testEvidence)
	t.Run("RESTConfig", e.testRESTConfig)
	t.Run("Fence", e.testFence)
	t.Run("FenceRace", e.testFenceRace)
	t.Run("Suite", func(t *testing.T) {
		t.Run("Undo", func(t *testing.T) {
			plantest.ExecutorSuite(t, e.suiteTarget(func(tg *Target) rewind.Executor { return tg.Undo() }))
		})
		t.Run("ScaleDown", func(t *testing.T) {
			plantest.ExecutorSuite(t, e.suiteTarget(func(tg *Target) rewind.Executor { return tg.ScaleDown() }))
		})
		t.Run("Evidence", func(t *testing.T) {
			plantest.ExecutorSuite(t, e.suiteTarget(func(tg *Target) rewind.Executor { return tg.Evidence() }))
		})
	})
	t.Run("APIServerStoppedMidUndo", e.testAPIServerStoppedMidUndo)
}

// target returns a Target on ns/name with the admin's client, scale to
// zero, and evidence under a temporary directory.
func (e *env) target(t *testing.T, ns, name string) (*Target, string) {
	t.Helper()
	dir := t.TempDir()
	tg, err := New(e.k.AdminConfig(), policy.Kubernetes{Namespace: ns, Deployment: name, ScaleToZero: true}, WithEvidence(dir, 50))
	if err != nil {
		t.Fatal(err)
	}
	return tg, dir
}

var rbSeq atomic.Int64

// rollback returns a new automatic rollback with a decision.
func rollback() *rewind.Rollback {
	now := time.Now().UTC()
	return &rewind.Rollback{
		ID: fmt.Sprintf("rb-test-%d", rbSeq.Add(1)), System: "web", Reason: "error-rate", Requester: "rewind",
		Decision: &rewind.Decision{System: "web", At: now, Firing: []string{"error-rate"}, PolicyHash: "0123456789abcdef"},
		State:    rewind.RollbackRunning, Started: now,
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// suiteTarget makes a fresh canary at revision 2 of 2 for each case of
// the shared executor suite; its state is the Deployment's spec and
// annotations, and the files of the evidence directory.
func (e *env) suiteTarget(pick func(*Target) rewind.Executor) func(t *testing.T) (rewind.Executor, *rewind.Rollback, func() string) {
	return func(t *testing.T) (rewind.Executor, *rewind.Rollback, func() string) {
		ns := kubetest.Namespace(t, e.admin)
		kubetest.CanaryDeployment(t, e.admin, ns, "web", kubetest.Canary{})
		tg, dir := e.target(t, ns, "web")
		state := func() string {
			d, err := e.admin.AppsV1().Deployments(ns).Get(context.Background(), "web", metav1.GetOptions{})
			if err != nil {
				return "error: " + err.Error()
			}
			spec, _ := json.Marshal(d.Spec)
			ann, _ := json.Marshal(d.Annotations)
			return fmt.Sprintf("spec %s\nannotations %s\nfiles %s", spec, ann, listFiles(t, dir))
		}
		return pick(tg), rollback(), state
	}
}

// listFiles lists the files under dir with their sizes, sorted.
func listFiles(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, fmt.Sprintf("%s:%d", filepath.ToSlash(rel), info.Size()))
		return nil
	})
	if err != nil {
		t.Fatalf("listing %s: %v", dir, err)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// testRESTConfig: a kubeconfig path, or none (outside a cluster: the
// usual $KUBECONFIG rules), gives a working client.
func (e *env) testRESTConfig(t *testing.T) {
	ns := kubetest.Namespace(t, e.admin)
	kubetest.CanaryDeployment(t, e.admin, ns, "web", kubetest.Canary{})
	t.Setenv("KUBERNETES_SERVICE_HOST", "") // not in a cluster, wherever the test runs
	t.Setenv("KUBECONFIG", e.k.Kubeconfig())
	for _, path := range []string{e.k.Kubeconfig(), ""} {
		cfg, err := RESTConfig(path)
		if err != nil {
			t.Fatalf("RESTConfig(%q): %v", path, err)
		}
		if cfg.Host != e.k.Host() || cfg.QPS < 50 {
			t.Errorf("RESTConfig(%q): host %s, QPS %v", path, cfg.Host, cfg.QPS)
		}
		tg, err := New(cfg, policy.Kubernetes{Namespace: ns, Deployment: "web"})
		if err != nil {
			t.Fatal(err)
		}
		if changes, err := tg.Undo().Plan(ctxFor(t, time.Minute), rollback()); err != nil || len(changes) != 1 {
			t.Errorf("Plan through RESTConfig(%q) = %+v, %v", path, changes, err)
		}
	}
	if _, err := RESTConfig("/no/such/kubeconfig"); err == nil {
		t.Errorf("RESTConfig of a missing file: no error")
	}
}

func (e *env) testFence(t *testing.T) {
	ns := kubetest.Namespace(t, e.admin)
	kubetest.CanaryDeployment(t, e.admin, ns, "web", kubetest.Canary{})
	tg, _ := e.target(t, ns, "web")
	f := tg.Fence()
	ctx := ctxFor(t, time.Minute)

	if h, err := f.Acquire(ctx, "web", "rb-a"); err != nil || h != "rb-a" {
		t.Fatalf("Acquire(rb-a) = %q, %v", h, err)
	}
	before := e.desired(t, ns, "web")
	if h, err := f.Acquire(ctx, "web", "rb-a"); err != nil || h != "rb-a" {
		t.Fatalf("Acquire(rb-a) again = %q, %v; want a no-op", h, err)
	}
	if got := e.desired(t, ns, "web"); got != before {
		t.Errorf("re-acquiring the held id wrote the Deployment \nbefore: %s\nafter:  %s", before, got)
	}
	h, err := f.Acquire(ctx, "web", "rb-b")
	if !errors.Is(err, rewind.ErrRollbackInProgress) || h != "rb-a" {
		t.Fatalf("Acquire(rb-b) while rb-a holds = %q, %v; want rb-a, ErrRollbackInProgress", h, err)
	}
	if err := f.Complete(ctx, "web", "rb-b"); err == nil {
		t.Errorf("Complete(rb-b) while rb-a holds: no error")
	}
	if err := f.Complete(ctx, "web", "rb-a"); err != nil {
		t.Fatalf("Complete(rb-a): %v", err)
	}
	if err := f.Complete(ctx, "web", "rb-a"); err != nil {
		t.Fatalf("Complete(rb-a) again: %v", err)
	}
	d, _ := e.admin.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if d.Annotations[AnnotationRollback] != "rb-a" || d.Annotations[AnnotationRollbackState] != FenceDone || d.Annotations[AnnotationRollbackSystem] != "web" {
		t.Errorf("annotations after Complete: %v", d.Annotations)
	}
	if h, err := f.Acquire(ctx, "web", "rb-b"); err != nil || h != "rb-b" {
		t.Fatalf("Acquire(rb-b) after rb-a completed = %q, %v", h, err)
	}
	// The fence is on a Deployment that exists.
	missing, _ := e.target(t, ns, "nope")
	if _, err := missing.Fence().Acquire(ctx, "web", "rb-c"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("Acquire on a missing Deployment: %v; want not found", err)
	}
}

func (e *env) testFenceRace(t *testing.T) {
	ns := kubetest.Namespace(t, e.admin)
	kubetest.CanaryDeployment(t, e.admin, ns, "web", kubetest.Canary{})
	ctx := ctxFor(t, time.Minute)
	const racers = 8
	type result struct {
		id, holder string
		err        error
	}
	results := make(chan result, racers)
	startGate := make(chan struct{})
	for i := range racers {
		tg, _ := e.target(t, ns, "web") // a client each, as separate processes have
		id := fmt.Sprintf("rb-racer-%d", i)
		go func() {
			<-startGate
			h, err := tg.Fence().Acquire(ctx, "web", id)
			results <- result{id, h, err}
		}()
	}
	close(startGate)
	var winners []string
	var all []result
	for range racers {
		r := <-results
		all = append(all, r)
		if r.err == nil {
			winners = append(winners, r.id)
		} else if !errors.Is(r.err, rewind.ErrRollbackInProgress) {
			t.Errorf("%s: %v; want nil or ErrRollbackInProgress", r.id, r.err)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("%d winners (%v); want exactly 1", len(winners), winners)
	}
	for _, r := range all {
		if r.holder != winners[0] {
			t.Errorf("%s was told the holder is %q; the winner is %s", r.id, r.holder, winners[0])
		}
	}
	d, _ := e.admin.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if d.Annotations[AnnotationRollback] != winners[0] {
		t.Errorf("Deployment fenced by %q; the winner is %s", d.Annotations[AnnotationRollback], winners[0])
	}
}

// desired is what a writer of the Deployment's spec and metadata may
// change: the deployment controller keeps writing its status.
func (e *env) desired(t *testing.T, ns, name string) string {
	t.Helper()
	d, err := e.admin.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := json.Marshal(d.Spec)
	ann, _ := json.Marshal(d.Annotations)
	return fmt.Sprintf("generation %d spec %s annotations %s", d.Generation, spec, ann)
}
