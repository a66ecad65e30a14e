package gitops_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/executor/kubernetes"
	"github.com/rewind-sre/rewind/gitops"
	"github.com/rewind-sre/rewind/gitops/github"
	"github.com/rewind-sre/rewind/gitops/gitrepo"
	"github.com/rewind-sre/rewind/internal/testenv"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/store/sqlite"
)

// The fixture every GitOps test shares: a canary Deployment that a
// reconciler applies from a Git server, released as v1 then v2 (the bad
// release) through Git.
const (
	appNS      = "shop"
	canary     = "checkout-canary"
	imageV1    = "registry.test:5000/checkout:v1"
	imageV2    = "registry.test:5000/checkout:v2"
	gitUser    = "rewind"
	gitPass    = "git-s3cret"
	ghRepo     = "shop/apps"
	ghToken    = "ghp_test_token"
	system     = "checkout"
	appPath    = "apps/checkout"
	manifestAt = appPath + "/deployment.yaml"
)

func manifest(image string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %s
  namespace: %s
spec:
  replicas: 2
  selector:
    matchLabels: {app: checkout, track: canary}
  template:
    metadata:
      labels: {app: checkout, track: canary}
    spec:
      containers:
        - name: web
          image: %s
`, canary, appNS, image)
}

// conn is how a test (or its killed child) reaches the components.
type conn struct {
	Kubeconfig string
	RepoURL    string
	GitHubAPI  string
	DB         string
}

const connEnv = "REWIND_GITOPS_TEST_CONN"

func (c conn) env() string {
	return strings.Join([]string{c.Kubeconfig, c.RepoURL, c.GitHubAPI, c.DB}, "|")
}

func connFromEnv() (conn, bool) {
	v := os.Getenv(connEnv)
	if v == "" {
		return conn{}, false
	}
	p := strings.Split(v, "|")
	return conn{Kubeconfig: p[0], RepoURL: p[1], GitHubAPI: p[2], DB: p[3]}, true
}

type clients struct {
	dyn dynamic.Interface
	cs  clientset.Interface
}

func clientsFor(t testing.TB, kubeconfig string) clients {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := clientset.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return clients{dyn: dyn, cs: cs}
}

// executors are Rewind's real executors of the steps this test exercises:
// undo, and with gitopsSteps suspend-gitops and git-revert.
func executors(t testing.TB, c conn, gitopsSteps bool) (map[rewind.StepName]rewind.Executor, rewind.Fence) {
	t.Helper()
	cl := clientsFor(t, c.Kubeconfig)
	target, err := kubernetes.NewForClient(cl.cs, policy.Kubernetes{Namespace: appNS, Deployment: canary})
	if err != nil {
		t.Fatal(err)
	}
	finder := &gitops.Finder{Dyn: cl.dyn}
	refs := []gitops.Ref{{GVR: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, Kind: "Deployment", Namespace: appNS, Name: canary}}
	hint := "rewind resume-gitops --system " + system
	ex := map[rewind.StepName]rewind.Executor{rewind.StepUndo: target.Undo()}
	if gitopsSteps {
		ex[rewind.StepSuspendGitOps] = &gitops.Suspend{Finder: finder, Refs: refs, ResumeHint: hint}
		ex[rewind.StepGitRevert] = &gitops.Revert{Finder: finder, Refs: refs, ResumeHint: hint,
			Auth:   func() (*gitrepo.Auth, error) { return &gitrepo.Auth{Username: gitUser, Password: gitPass}, nil },
			Opener: &github.Client{API: c.GitHubAPI, Repo: ghRepo, Token: ghToken}}
	}
	return ex, target.Fence()
}

func runner(t testing.TB, c conn, gitopsSteps bool) *plan.Runner {
	t.Helper()
	st, err := sqlite.Open(context.Background(), c.DB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ex, fence := executors(t, c, gitopsSteps)
	return &plan.Runner{Store: st, Fence: fence, Executors: ex}
}

// image returns the canary's image and whether its rollout is complete.
func image(t testing.TB, cs clientset.Interface) (string, bool) {
	t.Helper()
	d, err := cs.AppsV1().Deployments(appNS).Get(context.Background(), canary, metav1.GetOptions{})
	if err != nil {
		return "", false
	}
	return d.Spec.Template.Spec.Containers[0].Image, complete(d)
}

func complete(d *appsv1.Deployment) bool {
	return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == *d.Spec.Replicas &&
		d.Status.AvailableReplicas == *d.Spec.Replicas && d.Status.Replicas == *d.Spec.Replicas
}

func waitImage(t testing.TB, cs clientset.Interface, want string, bound time.Duration, what string) {
	t.Helper()
	testenv.Eventually(t, bound, what, func() (bool, string) {
		got, done := image(t, cs)
		return got == want && done, fmt.Sprintf("image %q, rollout complete %v", got, done)
	})
}

// holds watches the canary for d and fails if its image is ever not want.
func holds(t testing.TB, cs clientset.Interface, want string, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	w, err := cs.AppsV1().Deployments(appNS).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + canary})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	seen := 0
	for ev := range w.ResultChan() {
		if ev.Type == watch.Error {
			t.Fatalf("watch: %v", ev.Object)
		}
		dep, ok := ev.Object.(*appsv1.Deployment)
		if !ok {
			continue
		}
		seen++
		if got := dep.Spec.Template.Spec.Containers[0].Image; got != want {
			t.Fatalf("the canary went back to %s within %s of the rollback (want %s to hold)", got, d, want)
		}
	}
	if seen == 0 {
		t.Fatal("the watch saw no state of the canary")
	}
}

func createNamespace(t testing.TB, cs clientset.Interface, name string) {
	t.Helper()
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func create(t testing.TB, dyn dynamic.Interface, gvr schema.GroupVersionResource, obj map[string]any) {
	t.Helper()
	u := &unstructured.Unstructured{Object: obj}
	if _, err := dyn.Resource(gvr).Namespace(u.GetNamespace()).Create(context.Background(), u, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating %s %s: %v", u.GetKind(), u.GetName(), err)
	}
}

func get(t testing.TB, dyn dynamic.Interface, gvr schema.GroupVersionResource, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := dyn.Resource(gvr).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func dbPath(t testing.TB) string { return filepath.Join(t.TempDir(), "rewind.db") }

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
