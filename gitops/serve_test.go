package gitops_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/rewind-sre/rewind/cli"
	"github.com/rewind-sre/rewind/daemon"
	"github.com/rewind-sre/rewind/gitops"
	"github.com/rewind-sre/rewind/gitops/github/githubtest"
	"github.com/rewind-sre/rewind/internal/testenv"
	"github.com/rewind-sre/rewind/policy"
)

// virtualServiceManifest splits the checkout traffic 80/20 between the
// baseline and the canary; it is in Git beside the canary's Deployment.
const virtualServiceManifest = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: checkout
  namespace: shop
spec:
  hosts: [checkout.example]
  http:
    - name: split
      route:
        - destination: {host: checkout-baseline}
          weight: 80
        - destination: {host: checkout-canary}
          weight: 20
`

const vsAt = appPath + "/virtualservice.yaml"

// TestServeRollsBackUnderFlux is the automatic side: `rewind serve` with
// the built-in policy watches the canary through a real Prometheus that
// scrapes the mesh stand-in, while the Flux stand-in applies the canary's
// Deployment and VirtualService from Git every 2 s. The bad release (v2)
// turns half its requests into errors; the daemon decides from the metrics,
// suspends the Kustomization first, drains, undoes, scales down, verifies
// and proposes the revert; the rollback holds for more than three
// reconcile periods; the API shows the owner suspended by the rollback.
// Once the revert is merged the daemon resumes the Kustomization by itself
// (rollback.gitops.autoResume), says so in a notice, and Flux keeps v1 and
// the drained weights, now from Git.
func TestServeRollsBackUnderFlux(t *testing.T) {
	kube := testenv.StartKube(t)
	git := testenv.StartGitServer(t, testenv.GitServerOptions{Username: gitUser, Password: gitPass})
	url := git.CreateRepo("apps", map[string]string{manifestAt: manifest(imageV1), vsAt: virtualServiceManifest})
	gh := githubtest.New(t, ghRepo, ghToken)
	gh.Branches = func(b string) bool { _, ok := git.Branches("apps")[b]; return ok }
	cl := clientsFor(t, kube.Kubeconfig())
	createNamespace(t, cl.cs, "flux-system")
	createNamespace(t, cl.cs, appNS)
	if _, err := cl.cs.CoreV1().Secrets("flux-system").Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "git-auth", Namespace: "flux-system"},
		Data:       map[string][]byte{"username": []byte(gitUser), "password": []byte(gitPass)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	create(t, cl.dyn, gitops.GitRepositoryGVR, map[string]any{
		"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
		"metadata": map[string]any{"name": "apps", "namespace": "flux-system"},
		"spec": map[string]any{"url": url, "interval": fluxInterval.String(), "ref": map[string]any{"branch": "main"},
			"secretRef": map[string]any{"name": "git-auth"}},
	})
	create(t, cl.dyn, gitops.KustomizationGVR, map[string]any{
		"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
		"metadata": map[string]any{"name": "apps", "namespace": "flux-system"},
		"spec": map[string]any{"interval": fluxInterval.String(), "path": "./" + appPath, "prune": false,
			"sourceRef": map[string]any{"kind": "GitRepository", "name": "apps"}},
	})
	flux := testenv.StartFlux(t, kube)
	waitImage(t, cl.cs, imageV1, time.Minute, "Flux to apply v1 from Git")
	git.Commit("apps", "main", "release checkout v2", map[string]string{manifestAt: manifest(imageV2)})
	waitImage(t, cl.cs, imageV2, time.Minute, "Flux to apply the bad release v2 from Git")

	mesh := testenv.StartMesh(t, cl.dyn, appNS, "checkout", map[string]string{"checkout-canary": "canary", "checkout-baseline": "baseline"}, 50)
	prom := testenv.StartPrometheusScraping(t, []string{mesh.Addr}, time.Second)
	waitRates(t, prom.URL)
	notices := &noticeReceiver{}
	hook := httptest.NewServer(notices)
	t.Cleanup(hook.Close)

	dir := t.TempDir()
	pol := servePolicy(t, dir, kube.Kubeconfig(), prom.URL, gh.URL, hook.URL)
	const token = "test-token-0123456789"
	base := serve(t, "--policy", pol, "--listen", "127.0.0.1:0", "--store", filepath.Join(dir, "rewind.db"),
		"--evidence", filepath.Join(dir, "evidence"), "--token-file", writeFile(t, dir, "token", token), "--gitops-every", "1s")

	// The bad release turns half the canary's requests into errors.
	mesh.SetErrorRate("canary", 0.5)
	rb := finishedRollback(t, base, token)
	if rb.State != "succeeded" || rb.Requester != "rewind" {
		t.Fatalf("the automatic rollback: %+v", rb)
	}
	steps := map[string]string{}
	for _, s := range rb.Steps {
		steps[s.Name] = s.State + ": " + s.Detail
	}
	if s := steps["suspend-gitops"]; !strings.HasPrefix(s, "done: suspended Flux Kustomization flux-system/apps") {
		t.Fatalf("suspend-gitops: %s", s)
	}
	if s := steps["git-revert"]; !strings.HasPrefix(s, "done: pushed the revert on branch rewind/"+rb.ID) {
		t.Fatalf("git-revert: %s", s)
	}
	holds(t, cl.cs, imageV1, 4*fluxInterval)
	if w := canaryWeight(t, cl); w != 0 {
		t.Fatalf("the canary's weight in the cluster is %d after the drain held against Flux, want 0", w)
	}
	branch := "rewind/" + rb.ID
	if got := git.File("apps", branch, manifestAt); !strings.Contains(got, "image: "+imageV1) {
		t.Fatalf("the revert branch's Deployment:\n%s", got)
	}
	if got := git.File("apps", branch, vsAt); !regexp.MustCompile(`(?s)checkout-baseline\}\s+weight: 100.*checkout-canary\}\s+weight: 0`).MatchString(got) {
		t.Fatalf("the revert branch's VirtualService:\n%s", got)
	}
	if pulls := gh.Pulls(); len(pulls) != 1 || pulls[0].Head != branch {
		t.Fatalf("pull requests: %+v", pulls)
	}
	// The API shows the owner, suspended by the rollback, and why it waits.
	testenv.Eventually(t, 30*time.Second, "the API to show the Kustomization suspended by "+rb.ID, func() (bool, string) {
		st := systemGitOps(t, base, token)
		return st != nil && len(st.Owners) == 1 && st.Owners[0].SuspendedBy == rb.ID && st.Owners[0].Kind == gitops.KindKustomization, fmt.Sprintf("%+v", st)
	})

	// The revert is merged: the daemon resumes the Kustomization by itself.
	merged := git.Merge("apps", branch, "main")
	testenv.Eventually(t, time.Minute, "the daemon to resume the Kustomization", func() (bool, string) {
		k := get(t, cl.dyn, gitops.KustomizationGVR, "flux-system", "apps")
		_, suspended, _ := unstructured.NestedFieldNoCopy(k.Object, "spec", "suspend")
		return !suspended && k.GetAnnotations()[gitops.AnnotationSuspendedBy] == "", fmt.Sprintf("%v %v", k.Object["spec"], k.GetAnnotations())
	})
	testenv.Eventually(t, 30*time.Second, "the gitops-resumed notice", func() (bool, string) {
		n := notices.String()
		return strings.Contains(n, "gitops-resumed dwcp-manager "+rb.ID+": resumed Flux Kustomization flux-system/apps (spec.suspend: null restored) automatically: the source revision "+merged), n
	})
	testenv.Eventually(t, time.Minute, "Flux to apply the merged revert", func() (bool, string) {
		return strings.Contains(flux.Log(), "reconciled flux-system/apps revision main@sha1:"+merged), flux.Log()
	})
	holds(t, cl.cs, imageV1, 4*fluxInterval)
	if w := canaryWeight(t, cl); w != 0 {
		t.Fatalf("the canary's weight is %d once Flux applies the merged revert, want 0", w)
	}
	if rbs := rollbacks(t, base, token); len(rbs) != 1 {
		t.Fatalf("%d rollbacks, want exactly one: %+v", len(rbs), rbs)
	}
}

// servePolicy is the built-in policy pointed at the test's components,
// with a 2 s interval, a shorter verification, and rollback.gitops:
// the revert proposed through the GitHub receiver, and automatic resume.
func servePolicy(t *testing.T, dir, kubeconfig, prom, gh, hook string) string {
	t.Helper()
	pw := writeFile(t, dir, "git-password", gitPass)
	tok := writeFile(t, dir, "github-token", ghToken)
	text := strings.NewReplacer(
		"interval: 30s", "interval: 2s",
		"http://prometheus:9090", prom,
		"kubernetes: { namespace: dwcp, deployment: dwcp-canary, scaleToZero: true }",
		fmt.Sprintf("kubernetes: { namespace: %s, deployment: %s, scaleToZero: true, kubeconfig: %s }", appNS, canary, kubeconfig),
		"istio: { virtualService: dwcp-service, baselineHost: dwcp-baseline }",
		"istio: { virtualService: checkout, baselineHost: checkout-baseline, canaryHost: checkout-canary }",
		"        for: 30s\n        timeout: 2m", "        for: 3s\n        timeout: 1m",
		"within: 1m", "within: 30s",
		"      evidence: { logTailLines: 10000 }\n", fmt.Sprintf(`      evidence: { logTailLines: 10000 }
      gitops:
        revert:
          username: %s
          passwordFile: %s
          pullRequest:
            github: { api: '%s', repo: %s, tokenFile: %s }
        autoResume: true
    notify: [hook]
`, gitUser, pw, gh, ghRepo, tok),
	).Replace(string(policy.Default()))
	text += "notifiers:\n  hook:\n    webhook: { url: '" + hook + "' }\n"
	if !strings.Contains(text, "autoResume: true") || !strings.Contains(text, "canaryHost: checkout-canary") {
		t.Fatalf("the built-in policy changed; the test's replacements no longer apply:\n%s", text)
	}
	return writeFile(t, dir, "policy.yaml", text)
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitRates waits until Prometheus has rates of the mesh's traffic.
func waitRates(t *testing.T, url string) {
	t.Helper()
	src, err := daemon.NewPrometheus(policy.Prometheus{URL: url, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, time.Minute, "Prometheus to have rates of the mesh", func() (bool, string) {
		v, err := src.Query(context.Background(), `sum(irate(http_requests_total{version="baseline"}[1m]))`, time.Now())
		return err == nil && len(v) == 1 && v[0].V > 0, fmt.Sprintf("%v %v", v, err)
	})
}

var listening = regexp.MustCompile(`listening on (http://\S+)`)

// serve runs `rewind serve` in-process until the test ends and returns
// its base URL.
func serve(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errb := &testenv.Buffer{}, &testenv.Buffer{}
	done := make(chan int, 1)
	go func() {
		done <- cli.Main(ctx, append([]string{"serve"}, args...), &cli.Env{Stdout: out, Stderr: errb, Now: time.Now})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("rewind serve did not stop within 30 s")
		}
		if t.Failed() {
			t.Logf("rewind serve's log:\n%s", errb)
		}
	})
	var base string
	testenv.Eventually(t, 30*time.Second, "rewind serve to listen", func() (bool, string) {
		select {
		case code := <-done:
			t.Fatalf("rewind serve exited %d:\n%s%s", code, out, errb)
		default:
		}
		m := listening.FindStringSubmatch(out.String())
		if m != nil {
			base = m[1]
		}
		return m != nil, out.String() + errb.String()
	})
	return base
}

type apiRollback struct {
	ID, State, Requester string
	Steps                []struct{ Name, State, Detail string }
}

func apiGet(t *testing.T, url, token string, v any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func rollbacks(t *testing.T, base, token string) []apiRollback {
	var list struct{ Rollbacks []apiRollback }
	apiGet(t, base+"/api/v1/rollbacks", token, &list)
	return list.Rollbacks
}

// finishedRollback waits for the daemon's first rollback to finish.
func finishedRollback(t *testing.T, base, token string) apiRollback {
	t.Helper()
	var rb apiRollback
	testenv.Eventually(t, 3*time.Minute, "an automatic rollback to finish", func() (bool, string) {
		rbs := rollbacks(t, base, token)
		if len(rbs) == 0 || rbs[0].State == "running" {
			var sys any
			apiGet(t, base+"/api/v1/systems", token, &sys)
			return false, fmt.Sprintf("%+v\n%v", rbs, sys)
		}
		rb = rbs[0]
		return true, ""
	})
	return rb
}

func systemGitOps(t *testing.T, base, token string) *gitops.Status {
	var list struct {
		Systems []struct{ GitOps *gitops.Status }
	}
	apiGet(t, base+"/api/v1/systems", token, &list)
	if len(list.Systems) != 1 {
		t.Fatalf("systems: %+v", list)
	}
	return list.Systems[0].GitOps
}

// canaryWeight is the canary's weight in the VirtualService now.
func canaryWeight(t *testing.T, cl clients) int64 {
	t.Helper()
	vs := get(t, cl.dyn, gitops.VirtualServiceGVR, appNS, "checkout")
	routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	for _, r := range routes {
		dests, _, _ := unstructured.NestedSlice(r.(map[string]any), "route")
		for _, d := range dests {
			m := d.(map[string]any)
			if host, _, _ := unstructured.NestedString(m, "destination", "host"); host == "checkout-canary" {
				w, _, _ := unstructured.NestedInt64(m, "weight")
				return w
			}
		}
	}
	t.Fatalf("no canary route in %v", vs.Object["spec"])
	return -1
}

// noticeReceiver records the notices a webhook notifier delivers: "kind
// system rollback: reason".
type noticeReceiver struct {
	mu  sync.Mutex
	got []string
}

func (n *noticeReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ev struct{ Kind, System, RollbackID, Reason string }
	if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n.mu.Lock()
	n.got = append(n.got, ev.Kind+" "+ev.System+" "+ev.RollbackID+": "+ev.Reason)
	n.mu.Unlock()
}

func (n *noticeReceiver) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Join(n.got, "\n")
}
