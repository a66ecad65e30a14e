package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	clientset "k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/rewind-sre/rewind/daemon"
	"github.com/rewind-sre/rewind/executor/kubernetes/kubetest"
	"github.com/rewind-sre/rewind/internal/testenv"
	"github.com/rewind-sre/rewind/policy"
)

var vsGVR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}

// The VirtualService splits 80/20 between baseline and canary in its first
// route and has other routes, matches and retries the drain must not touch.
const virtualService = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: dwcp-service
spec:
  hosts: [dwcp.example]
  http:
  - name: split
    match: [{headers: {x-canary: {exact: "maybe"}}}]
    retries: {attempts: 3, perTryTimeout: 2s}
    route:
    - {destination: {host: dwcp-baseline}, weight: 80}
    - {destination: {host: dwcp-canary}, weight: 20}
  - name: admin
    route:
    - {destination: {host: dwcp-admin}, weight: 100}
`

type rollbackEnv struct {
	ns, policy, store, evidence string
	kubeconfig                  string
	cs                          clientset.Interface
	dyn                         dynamic.Interface
	mesh                        *testenv.Mesh
}

// setupRollback starts the real control plane, a canary Deployment at its
// second revision, the VirtualService, a mesh stand-in sending traffic by
// its weights, and a real Prometheus scraping it; it writes the default
// policy pointed at all of them.
func setupRollback(t *testing.T) *rollbackEnv {
	t.Helper()
	kube := testenv.StartKube(t)
	cfg := kube.AdminConfig()
	e := &rollbackEnv{cs: clientset.NewForConfigOrDie(cfg), dyn: dynamic.NewForConfigOrDie(cfg), kubeconfig: kube.Kubeconfig()}
	e.ns = kubetest.Namespace(t, e.cs)
	kubetest.CanaryDeployment(t, e.cs, e.ns, "dwcp-canary", kubetest.Canary{Replicas: 2})
	var vs unstructured.Unstructured
	if err := yaml.Unmarshal([]byte(virtualService), &vs.Object); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dyn.Resource(vsGVR).Namespace(e.ns).Create(context.Background(), &vs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.mesh = testenv.StartMesh(t, e.dyn, e.ns, "dwcp-service", map[string]string{"dwcp-canary": "canary", "dwcp-baseline": "baseline"}, 50)
	prom := testenv.StartPrometheusScraping(t, []string{e.mesh.Addr}, time.Second)
	waitForMetrics(t, prom.URL)

	dir := t.TempDir()
	e.store, e.evidence, e.policy = filepath.Join(dir, "rewind.db"), filepath.Join(dir, "evidence"), filepath.Join(dir, "policy.yaml")
	text := strings.NewReplacer(
		"http://prometheus:9090", prom.URL,
		"kubernetes: { namespace: dwcp, deployment: dwcp-canary, scaleToZero: true }",
		fmt.Sprintf("kubernetes: { namespace: %s, deployment: dwcp-canary, scaleToZero: true, kubeconfig: %s }", e.ns, kube.Kubeconfig()),
		"istio: { virtualService: dwcp-service, baselineHost: dwcp-baseline }",
		"istio: { virtualService: dwcp-service, baselineHost: dwcp-baseline, canaryHost: dwcp-canary }",
		"        for: 30s\n        timeout: 2m", "        for: 3s\n        timeout: 1m",
		"within: 1m", "within: 30s",
	).Replace(string(policy.Default()))
	if err := os.WriteFile(e.policy, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// waitForMetrics waits until Prometheus has scraped the mesh twice, so that
// rates exist.
func waitForMetrics(t *testing.T, url string) {
	t.Helper()
	src, err := daemon.NewPrometheus(policy.Prometheus{URL: url, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		v, err := src.Query(context.Background(), `sum(irate(http_requests_total{version="baseline"}[1m]))`, time.Now())
		if err == nil && len(v) == 1 && v[0].V > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus has no rates of the mesh after 1m: %v %v", v, err)
		}
	}
}

// live runs the command line with the real clock.
func live(args ...string) (int, string, string) {
	var out, errb strings.Builder
	code := Main(context.Background(), args, &Env{Stdout: &out, Stderr: &errb, Now: time.Now})
	return code, out.String(), errb.String()
}

func (e *rollbackEnv) rollback(t *testing.T, store string) (int, string) {
	code, out, stderr := live("rollback", "--policy", e.policy, "--system", "dwcp-manager",
		"--reason", "customer-escalation", "--store", store, "--evidence", e.evidence)
	return code, out + stderr
}

// TestRollbackOnRealControlPlane: `rewind rollback` drains, undoes, scales
// down, keeps evidence and verifies; concurrent invocations roll back once.
func TestRollbackOnRealControlPlane(t *testing.T) {
	e := setupRollback(t)
	ctx := context.Background()

	code, out, _ := live("rollback", "--policy", e.policy, "--system", "dwcp-manager", "--reason", "customer-escalation", "--store", e.store, "--dry-run")
	if code != 0 || !strings.Contains(out, "nothing was changed") || !strings.Contains(out, "dwcp-service") ||
		!strings.Contains(out, "none Deployment "+e.ns+"/dwcp-canary, VirtualService "+e.ns+"/dwcp-service: no GitOps owner") {
		t.Fatalf("dry run: exit %d\n%s", code, out)
	}

	// Two invocations at once on the same store, and a third on a store of
	// its own (another machine): exactly one rollback.
	var wg sync.WaitGroup
	codes, outs := make([]int, 3), make([]string, 3)
	stores := []string{e.store, e.store, e.store + ".other"}
	for i, store := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], outs[i] = e.rollback(t, store)
		}()
	}
	wg.Wait()
	winners, winner := 0, ""
	for i := range codes {
		if codes[i] == 0 {
			winners, winner = winners+1, stores[i]
			t.Logf("rollback:\n%s", outs[i])
			// Without a GitOps owner the new first step changes nothing.
			if !regexp.MustCompile(`suspend-gitops\s+skipped .*no GitOps owner: no Flux or Argo CD marker on Deployment`).MatchString(outs[i]) {
				t.Errorf("suspend-gitops without a GitOps owner: want skipped, no GitOps owner:\n%s", outs[i])
			}
		} else if !strings.Contains(outs[i], "in progress") && !strings.Contains(outs[i], "holds the store") && !strings.Contains(outs[i], "already rolled back") {
			t.Fatalf("invocation %d failed for another reason (exit %d):\n%s", i, codes[i], outs[i])
		}
	}
	if winners != 1 {
		t.Fatalf("%d invocations rolled back:\n%s", winners, strings.Join(outs, "\n----\n"))
	}

	d, err := e.cs.AppsV1().Deployments(e.ns).Get(ctx, "dwcp-canary", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := d.Spec.Template.Spec.Containers[0].Image; img != kubetest.ImageV1 || *d.Spec.Replicas != 0 || d.Annotations["deployment.kubernetes.io/revision"] != "3" {
		t.Fatalf("deployment: image %s, replicas %d, revision %s; want %s, 0, 3 (one undo)", img, *d.Spec.Replicas, d.Annotations["deployment.kubernetes.io/revision"], kubetest.ImageV1)
	}
	vs, err := e.dyn.Resource(vsGVR).Namespace(e.ns).Get(ctx, "dwcp-service", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var want unstructured.Unstructured
	_ = yaml.Unmarshal([]byte(strings.Replace(strings.Replace(virtualService, "weight: 80", "weight: 100", 1), "weight: 20", "weight: 0", 1)), &want.Object)
	if got, w := fmt.Sprint(vs.Object["spec"]), fmt.Sprint(want.Object["spec"]); got != w {
		t.Fatalf("VirtualService spec after the drain:\n got %s\nwant %s", got, w)
	}
	for _, f := range []string{"INDEX.md", "metrics.json", "rollback.json", "index.json"} {
		matches, _ := filepath.Glob(filepath.Join(e.evidence, "*", f))
		if len(matches) != 1 {
			t.Errorf("evidence file %s: %v", f, matches)
		}
	}
	// Whichever process took the fence first rolled back: its store says so.
	if code, out, _ := live("history", "--store", winner); code != 0 || !strings.Contains(out, "succeeded") {
		t.Fatalf("history: %d\n%s", code, out)
	}
}

// TestRollbackResumesAfterKill: a rewind process killed with SIGKILL in the
// middle of the undo leaves the rollback in the journal; the next invocation
// resumes and completes it, with exactly one undo.
func TestRollbackResumesAfterKill(t *testing.T) {
	e := setupRollback(t)
	args, _ := json.Marshal([]string{"rollback", "--policy", e.policy, "--system", "dwcp-manager", "--reason", "unexpected-behavior", "--store", e.store, "--evidence", e.evidence})
	cmd := osexec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "REWIND_CLI_CHILD="+string(args))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		var seen []string
		for sc.Scan() {
			seen = append(seen, sc.Text())
			if strings.Contains(sc.Text(), "undo") && strings.Contains(sc.Text(), "running") {
				_ = cmd.Process.Kill() // SIGKILL: no cleanup, no journal entry after this
				break
			}
		}
		killed <- strings.Join(seen, "\n")
	}()
	select {
	case out := <-killed:
		t.Logf("child before the kill:\n%s", out)
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatal("the child never reached the undo step")
	}
	_ = cmd.Wait()

	code, out := e.rollback(t, e.store)
	if code != 0 || !strings.Contains(out, "resumed unfinished rollback") {
		t.Fatalf("resume: exit %d\n%s", code, out)
	}
	d, err := e.cs.AppsV1().Deployments(e.ns).Get(context.Background(), "dwcp-canary", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rev := d.Annotations["deployment.kubernetes.io/revision"]; rev != "3" || d.Spec.Template.Spec.Containers[0].Image != kubetest.ImageV1 {
		t.Fatalf("revision %s, image %s: want exactly one undo to %s", rev, d.Spec.Template.Spec.Containers[0].Image, kubetest.ImageV1)
	}
	_, hist, _ := live("history", "--store", e.store)
	if n := strings.Count(hist, "rb-"); n != 1 {
		t.Fatalf("%d rollbacks in the journal, want 1:\n%s", n, hist)
	}
	t.Logf("resumed:\n%s", out)
}

// TestPostMortemCommand: `rewind postmortem ID` renders the draft of a
// recorded rollback from the journal.
func TestPostMortemCommand(t *testing.T) {
	store := filepath.Join(t.TempDir(), "r.db")
	pol := filepath.Join(t.TempDir(), "p.yaml")
	prom := testenv.StartPrometheus(t, nil) // empty: the verification fails, the draft is still written
	os.WriteFile(pol, []byte(`apiVersion: rewind/v1
kind: Policy
systems:
  - name: web
    prometheus: { url: `+prom.URL+` }
    canary:   { selector: 'version="canary"' }
    baseline: { selector: 'version="baseline"' }
    triggers:
      - { name: up, expr: 'up{ {{selector}} } == 0' }
    rollback:
      exec:
        undo: { command: ["/bin/true"] }
      verify: { for: 0s, timeout: 1s }
`), 0o644)
	// A manual rollback through the exec executor.
	code, out, errs := live("rollback", "--policy", pol, "--system", "web", "--reason", "team-consensus", "--store", store, "--evidence", t.TempDir())
	if !strings.Contains(out, "rollback rb-") {
		t.Fatalf("rollback: exit %d\n%s%s", code, out, errs)
	}
	id := regexp.MustCompile(`rb-[0-9TZ]+-[0-9a-f]+`).FindString(out)
	code, md, errs := live("postmortem", id, "--store", store, "--policy", pol)
	if code != 0 || !strings.Contains(md, "# Rollback Post-Mortem") || !strings.Contains(md, "team-consensus") || !strings.Contains(md, "## Timeline") {
		t.Fatalf("postmortem: exit %d\n%s%s", code, md, errs)
	}
	if code, _, _ := live("postmortem", "rb-nope", "--store", store); code != 1 {
		t.Fatalf("unknown id: exit %d", code)
	}
}
