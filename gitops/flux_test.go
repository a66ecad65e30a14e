package gitops_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/gitops"
	"github.com/rewind-sre/rewind/gitops/github/githubtest"
	"github.com/rewind-sre/rewind/internal/testenv"
	"github.com/rewind-sre/rewind/policy"
)

// fluxInterval is the Kustomization's spec.interval: the reconcile period.
const fluxInterval = 2 * time.Second

// fluxEnv is a control plane, a Git server with the canary's manifests, and
// the Flux stand-in applying them through a Kustomization, with the bad
// release (v2) rolled out from Git.
type fluxEnv struct {
	kube *testenv.Kube
	git  *testenv.GitServer
	flux *testenv.Flux
	gh   *githubtest.Receiver
	cl   clients
	conn conn
}

func startFluxEnv(t *testing.T) *fluxEnv {
	t.Helper()
	e := &fluxEnv{kube: testenv.StartKube(t)}
	e.git = testenv.StartGitServer(t, testenv.GitServerOptions{Username: gitUser, Password: gitPass})
	url := e.git.CreateRepo("apps", map[string]string{manifestAt: manifest(imageV1)})
	e.gh = githubtest.New(t, ghRepo, ghToken)
	e.gh.Branches = func(b string) bool { _, ok := e.git.Branches("apps")[b]; return ok }
	e.conn = conn{Kubeconfig: e.kube.Kubeconfig(), RepoURL: url, GitHubAPI: e.gh.URL, DB: dbPath(t)}
	e.cl = clientsFor(t, e.conn.Kubeconfig)
	createNamespace(t, e.cl.cs, "flux-system")
	createNamespace(t, e.cl.cs, appNS)
	if _, err := e.cl.cs.CoreV1().Secrets("flux-system").Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "git-auth", Namespace: "flux-system"},
		Data:       map[string][]byte{"username": []byte(gitUser), "password": []byte(gitPass)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	create(t, e.cl.dyn, gitops.GitRepositoryGVR, map[string]any{
		"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
		"metadata": map[string]any{"name": "apps", "namespace": "flux-system"},
		"spec": map[string]any{"url": url, "interval": fluxInterval.String(), "ref": map[string]any{"branch": "main"},
			"secretRef": map[string]any{"name": "git-auth"}},
	})
	create(t, e.cl.dyn, gitops.KustomizationGVR, map[string]any{
		"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
		"metadata": map[string]any{"name": "apps", "namespace": "flux-system"},
		"spec": map[string]any{"interval": fluxInterval.String(), "path": "./" + appPath, "prune": false,
			"sourceRef": map[string]any{"kind": "GitRepository", "name": "apps"}},
	})
	e.flux = testenv.StartFlux(t, e.kube)
	waitImage(t, e.cl.cs, imageV1, time.Minute, "Flux to apply v1 from Git")
	e.git.Commit("apps", "main", "release checkout v2", map[string]string{manifestAt: manifest(imageV2)})
	waitImage(t, e.cl.cs, imageV2, time.Minute, "Flux to apply the bad release v2 from Git")
	return e
}

func (e *fluxEnv) kustomization(t *testing.T) *unstructured.Unstructured {
	return get(t, e.cl.dyn, gitops.KustomizationGVR, "flux-system", "apps")
}

// TestFluxBothSides shows the problem and the fix with the Flux stand-in
// reconciling every 2 s: without suspend-gitops the reconciler puts the
// bad version back; with it the rollback holds for more than three
// reconcile periods, the revert branch and its pull request exist, and
// once the revert is merged and the reconciler resumed, it keeps the
// previous version.
func TestFluxBothSides(t *testing.T) {
	e := startFluxEnv(t)
	ctx := t.Context()

	t.Run("without suspend the reconciler undoes the rollback", func(t *testing.T) {
		r := runner(t, e.conn, false)
		rb, err := r.Start(ctx, system, "error-rate", "test", nil)
		if err != nil {
			t.Fatalf("rollback: %v %+v", err, rb)
		}
		// The undo reached v1 (its rollout may or may not finish before
		// the reconciler comes back).
		if s := rb.Step(rewind.StepUndo); s.Facts["toImages"] != "web="+imageV1 {
			t.Fatalf("undo: %+v", s)
		}
		// The undo reached v1; the next reconcile puts v2 back.
		waitImage(t, e.cl.cs, imageV2, 5*fluxInterval+30*time.Second, "Flux to re-apply the bad release after the unsuspended rollback")
	})

	t.Run("with suspend the rollback holds and the revert is proposed", func(t *testing.T) {
		k0 := e.kustomization(t)
		r := runner(t, e.conn, true)
		planned, err := r.DryRun(ctx, system, "dry run")
		if err != nil {
			t.Fatal(err)
		}
		if planned[0].Step != rewind.StepSuspendGitOps || len(planned[0].Changes) != 1 ||
			planned[0].Changes[0].Target != "Flux Kustomization flux-system/apps" ||
			!strings.Contains(planned[0].Changes[0].Detail, "spec.suspend: null → true") {
			t.Fatalf("dry run of suspend-gitops: %+v", planned[0])
		}
		rb, err := r.Start(ctx, system, "error-rate", "test", nil)
		if err != nil || rb.State != rewind.RollbackSucceeded {
			t.Fatalf("rollback: %v %+v", err, rb)
		}
		s := rb.Step(rewind.StepSuspendGitOps)
		if s.State != rewind.StepDone || s.Facts[gitops.FactSuspended] != "Flux Kustomization flux-system/apps" ||
			!strings.Contains(s.Detail, "rewind resume-gitops --system checkout") {
			t.Fatalf("suspend-gitops: %+v", s)
		}
		waitImage(t, e.cl.cs, imageV1, time.Minute, "the rollback to v1")
		reconciles := e.flux.Reconciles("flux-system", "apps")
		holds(t, e.cl.cs, imageV1, 4*fluxInterval)
		if n := e.flux.Reconciles("flux-system", "apps"); n != reconciles {
			t.Errorf("the suspended Kustomization was reconciled %d times", n-reconciles)
		}
		k := e.kustomization(t)
		if susp, _, _ := unstructured.NestedBool(k.Object, "spec", "suspend"); !susp || k.GetGeneration() != k0.GetGeneration()+1 ||
			k.GetAnnotations()[gitops.AnnotationSuspendedBy] != rb.ID {
			t.Fatalf("Kustomization after the rollback: suspend %v, generation %d (was %d), annotations %v", susp, k.GetGeneration(), k0.GetGeneration(), k.GetAnnotations())
		}

		branch := "rewind/" + rb.ID
		g := rb.Step(rewind.StepGitRevert)
		if g.State != rewind.StepDone || g.Facts[gitops.FactBranch] != branch || g.Facts[gitops.FactPullRequest] == "" {
			t.Fatalf("git-revert: %+v", g)
		}
		if got := e.git.File("apps", branch, manifestAt); !strings.Contains(got, "image: "+imageV1) {
			t.Fatalf("the revert branch's manifest:\n%s", got)
		}
		if pulls := e.gh.Pulls(); len(pulls) != 1 || pulls[0].Head != branch || pulls[0].Base != "main" || !strings.Contains(pulls[0].Body, rb.ID) {
			t.Fatalf("pull requests: %+v", pulls)
		}

		// The revert is merged; automatic resume waits until the source
		// revision the Kustomization would apply no longer sets v2, then
		// restores exactly the previous setting (no spec.suspend at all).
		sys := autoResumeSystem(t, e.cl)
		if res, err := sys.AutoResume(ctx, rb); err != nil || res.Resumed != nil || !strings.Contains(res.Waiting, "still sets "+imageV2) {
			t.Fatalf("AutoResume before the merge: %+v, %v", res, err)
		}
		merged := e.git.Merge("apps", branch, "main")
		var res gitops.AutoResult
		testenv.Eventually(t, time.Minute, "automatic resume once the GitRepository has fetched the merge", func() (bool, string) {
			res, err = sys.AutoResume(ctx, rb)
			return err != nil || res.Resumed != nil, fmt.Sprintf("%+v", res)
		})
		if err != nil || len(res.Resumed) != 1 || res.Resumed[0].By != rb.ID || res.Resumed[0].Restored != "spec.suspend: null" || res.Revision != merged {
			t.Fatalf("AutoResume after the merge: %+v, %v", res, err)
		}
		if again, err := sys.AutoResume(ctx, rb); err != nil || again.Resumed != nil || again.Waiting != "" {
			t.Fatalf("AutoResume once resumed: %+v, %v; want nothing to do", again, err)
		}
		k = e.kustomization(t)
		if _, found, _ := unstructured.NestedFieldNoCopy(k.Object, "spec", "suspend"); found || k.GetAnnotations()[gitops.AnnotationSuspendedBy] != "" {
			t.Fatalf("Kustomization after Resume: %v", k.Object["spec"])
		}
		testenv.Eventually(t, time.Minute, "the reconciler to apply the merged revert", func() (bool, string) {
			return strings.Contains(e.flux.Log(), "reconciled flux-system/apps revision main@sha1:"+merged), e.flux.Log()
		})
		holds(t, e.cl.cs, imageV1, 4*fluxInterval)
		again, err := gitops.Resume(ctx, &gitops.Finder{Dyn: e.cl.dyn}, []gitops.Owner{{Kind: gitops.KindKustomization, Namespace: "flux-system", Name: "apps"}})
		if err != nil || again[0].Restored != "" {
			t.Fatalf("a second Resume: %+v, %v; want nothing to do", again, err)
		}
		if b := e.git.BranchNames("apps"); !slices.Equal(b, []string{"main", branch}) {
			t.Errorf("branches %v", b)
		}
	})
}

// autoResumeSystem is the test's system with rollback.gitops.autoResume,
// its Git password in a file as the policy reads it.
func autoResumeSystem(t *testing.T, cl clients) *gitops.System {
	pw := filepath.Join(t.TempDir(), "git-password")
	if err := os.WriteFile(pw, []byte(gitPass), 0o600); err != nil {
		t.Fatal(err)
	}
	return &gitops.System{Name: system, Finder: &gitops.Finder{Dyn: cl.dyn},
		Refs:   []gitops.Ref{{GVR: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, Kind: "Deployment", Namespace: appNS, Name: canary}},
		GitOps: policy.GitOps{AutoResume: true, Revert: &policy.GitRevert{Username: gitUser, Password: policy.Secret{File: pw}}}}
}
