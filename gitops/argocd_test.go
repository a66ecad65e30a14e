package gitops_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/gitops"
	"github.com/rewind-sre/rewind/gitops/github/githubtest"
	"github.com/rewind-sre/rewind/internal/testenv"
)

// argoResync is the application controller's --app-resync: the period of
// its comparison with Git. Self-heal itself reacts to cluster events.
const argoResync = 5 * time.Second

type argoEnv struct {
	kube *testenv.Kube
	git  *testenv.GitServer
	gh   *githubtest.Receiver
	cl   clients
	conn conn
}

func startArgoEnv(t *testing.T) *argoEnv {
	t.Helper()
	e := &argoEnv{kube: testenv.StartKube(t)}
	argo := testenv.StartArgoCD(t, e.kube, testenv.ArgoCDOptions{ResyncPeriod: argoResync})
	e.git = testenv.StartGitServer(t, testenv.GitServerOptions{})
	url := e.git.CreateRepo("apps", map[string]string{manifestAt: manifest(imageV1)})
	e.gh = githubtest.New(t, ghRepo, ghToken)
	e.gh.Branches = func(b string) bool { _, ok := e.git.Branches("apps")[b]; return ok }
	e.conn = conn{Kubeconfig: e.kube.Kubeconfig(), RepoURL: url, GitHubAPI: e.gh.URL, DB: dbPath(t)}
	e.cl = clientsFor(t, e.conn.Kubeconfig)
	createNamespace(t, e.cl.cs, appNS)
	create(t, e.cl.dyn, gitops.ApplicationGVR, map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
		"metadata": map[string]any{"name": "checkout", "namespace": testenv.ArgoCDNamespace},
		"spec": map[string]any{
			"project":     "default",
			"source":      map[string]any{"repoURL": url, "targetRevision": "main", "path": appPath},
			"destination": map[string]any{"server": argo.Server, "namespace": appNS},
			"syncPolicy":  map[string]any{"automated": map[string]any{"prune": false, "selfHeal": true}},
		},
	})
	waitImage(t, e.cl.cs, imageV1, 3*time.Minute, "Argo CD to sync v1 from Git")
	e.git.Commit("apps", "main", "release checkout v2", map[string]string{manifestAt: manifest(imageV2)})
	waitImage(t, e.cl.cs, imageV2, 2*time.Minute, "Argo CD to sync the bad release v2 from Git")
	return e
}

func (e *argoEnv) app(t *testing.T) *unstructured.Unstructured {
	return get(t, e.cl.dyn, gitops.ApplicationGVR, testenv.ArgoCDNamespace, "checkout")
}

// TestArgoCDBothSides is TestFluxBothSides with the real Argo CD
// (application controller and repo server, automated sync with self-heal).
func TestArgoCDBothSides(t *testing.T) {
	e := startArgoEnv(t)
	ctx := t.Context()

	t.Run("without suspend self-heal undoes the rollback", func(t *testing.T) {
		r := runner(t, e.conn, false)
		rb, err := r.Start(ctx, system, "error-rate", "test", nil)
		if err != nil {
			t.Fatalf("rollback: %v %+v", err, rb)
		}
		if s := rb.Step(rewind.StepUndo); s.Facts["toImages"] != "web="+imageV1 {
			t.Fatalf("undo: %+v", s)
		}
		waitImage(t, e.cl.cs, imageV2, 2*time.Minute, "Argo CD's self-heal to re-apply the bad release")
	})

	t.Run("with suspend the rollback holds and the revert is proposed", func(t *testing.T) {
		before, _, _ := unstructured.NestedMap(e.app(t).Object, "spec", "syncPolicy")
		r := runner(t, e.conn, true)
		planned, err := r.DryRun(ctx, system, "dry run")
		if err != nil {
			t.Fatal(err)
		}
		if c := planned[0].Changes; planned[0].Step != rewind.StepSuspendGitOps || len(c) != 1 ||
			c[0].Target != "Argo CD Application argocd/checkout" || !strings.Contains(c[0].Detail, `spec.syncPolicy.automated: {"prune":false,"selfHeal":true} → removed`) ||
			!strings.Contains(c[0].Detail, gitops.AnnotationArgoTracking) {
			t.Fatalf("dry run of suspend-gitops: %+v", planned[0])
		}
		rb, err := r.Start(ctx, system, "error-rate", "test", nil)
		if err != nil || rb.State != rewind.RollbackSucceeded {
			t.Fatalf("rollback: %v %+v", err, rb)
		}
		if s := rb.Step(rewind.StepSuspendGitOps); s.State != rewind.StepDone || s.Facts[gitops.FactSuspended] != "Argo CD Application argocd/checkout" {
			t.Fatalf("suspend-gitops: %+v", s)
		}
		waitImage(t, e.cl.cs, imageV1, time.Minute, "the rollback to v1")
		holds(t, e.cl.cs, imageV1, 3*argoResync+2*time.Second)
		if _, found, _ := unstructured.NestedFieldNoCopy(e.app(t).Object, "spec", "syncPolicy", "automated"); found {
			t.Fatal("automated sync is still on")
		}

		branch := "rewind/" + rb.ID
		if got := e.git.File("apps", branch, manifestAt); !strings.Contains(got, "image: "+imageV1) {
			t.Fatalf("the revert branch's manifest:\n%s", got)
		}
		if pulls := e.gh.Pulls(); len(pulls) != 1 || pulls[0].Head != branch {
			t.Fatalf("pull requests: %+v", pulls)
		}

		// Automatic resume: not before the revert is merged; once it is, as
		// soon as the application controller has compared with the merge
		// (status.sync.revision), which it does with automated sync off.
		sys := autoResumeSystem(t, e.cl)
		if res, err := sys.AutoResume(ctx, rb); err != nil || res.Resumed != nil || !strings.Contains(res.Waiting, "still sets "+imageV2) {
			t.Fatalf("AutoResume before the merge: %+v, %v", res, err)
		}
		merged := e.git.Merge("apps", branch, "main")
		var res gitops.AutoResult
		testenv.Eventually(t, 2*time.Minute, "automatic resume once Argo CD has compared with the merge", func() (bool, string) {
			res, err = sys.AutoResume(ctx, rb)
			rev, _, _ := unstructured.NestedString(e.app(t).Object, "status", "sync", "revision")
			return err != nil || res.Resumed != nil, fmt.Sprintf("%+v; status.sync.revision %s", res, rev)
		})
		if err != nil || len(res.Resumed) != 1 || res.Resumed[0].By != rb.ID || res.Revision != merged {
			t.Fatalf("AutoResume after the merge: %+v, %v", res, err)
		}
		after, _, _ := unstructured.NestedMap(e.app(t).Object, "spec", "syncPolicy")
		if a, b := after["automated"], before["automated"]; !equalJSON(a, b) {
			t.Fatalf("sync policy after Resume %v, want exactly %v", a, b)
		}
		testenv.Eventually(t, 2*time.Minute, "Argo CD to sync the merged revert", func() (bool, string) {
			rev, _, _ := unstructured.NestedString(e.app(t).Object, "status", "sync", "revision")
			status, _, _ := unstructured.NestedString(e.app(t).Object, "status", "sync", "status")
			return rev == merged && status == "Synced", rev + " " + status
		})
		holds(t, e.cl.cs, imageV1, 3*argoResync+2*time.Second)
		if b := e.git.BranchNames("apps"); !slices.Equal(b, []string{"main", branch}) {
			t.Errorf("branches %v", b)
		}
	})
}

func equalJSON(a, b any) bool {
	return strings.TrimSpace(toJSON(a)) == strings.TrimSpace(toJSON(b))
}
