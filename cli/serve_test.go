package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rewind-sre/rewind/executor/kubernetes/kubetest"
	"github.com/rewind-sre/rewind/internal/testenv"
)

var listening = regexp.MustCompile(`listening on (http://\S+)`)

// startServe runs `rewind serve` in-process until the test ends and returns
// its base URL.
func startServe(t *testing.T, args ...string) (url string, logs *testenv.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errb := &testenv.Buffer{}, &testenv.Buffer{}
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, append([]string{"serve"}, args...), &Env{Stdout: out, Stderr: errb, Now: time.Now})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("rewind serve did not stop within 30 s")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for m := listening.FindStringSubmatch(out.String()); m == nil; m = listening.FindStringSubmatch(out.String()) {
		select {
		case code := <-done:
			t.Fatalf("rewind serve exited %d:\n%s%s", code, out, errb)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("rewind serve did not start:\n%s%s", out, errb)
		}
	}
	return listening.FindStringSubmatch(out.String())[1], errb
}

func call(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeRollsBackABadCanary: the daemon against a real Prometheus
// scraping the mesh stand-in and the real control plane: the canary turns
// bad, it is rolled back once and verified, and the metrics say so.
func TestServeRollsBackABadCanary(t *testing.T) {
	e := setupRollback(t)
	// Notices go to a local webhook receiver.
	var mu sync.Mutex
	var notices []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct{ Kind string }
		_ = json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		notices = append(notices, ev.Kind)
		mu.Unlock()
	}))
	defer hook.Close()
	text, _ := os.ReadFile(e.policy)
	fast := strings.Replace(string(text), "interval: 30s", "interval: 2s", 1)
	fast = strings.Replace(fast, "      evidence: { logTailLines: 10000 }\n", "      evidence: { logTailLines: 10000 }\n    notify: [hook]\n", 1)
	fast += "notifiers:\n  hook:\n    webhook: { url: '" + hook.URL + "' }\n"
	if err := os.WriteFile(e.policy, []byte(fast), 0o644); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	const token = "test-token-0123456789"
	os.WriteFile(tokenFile, []byte(token+"\n"), 0o600)
	base, logs := startServe(t, "--policy", e.policy, "--listen", "127.0.0.1:0", "--store", e.store, "--evidence", e.evidence, "--token-file", tokenFile)

	// The API refuses what it must, and changes nothing.
	for _, c := range []struct {
		token, body string
		want        int
	}{{"", `{"system":"dwcp-manager","reason":"x"}`, 401}, {"wrong", `{"system":"dwcp-manager","reason":"x"}`, 401}, {token, `{"system":`, 400}, {token, `{"system":"dwcp-manager"}`, 400}} {
		if code, body := call(t, "POST", base+"/api/v1/rollbacks", c.token, c.body); code != c.want {
			t.Fatalf("POST %q with token %q: %d %s, want %d", c.body, c.token, code, body, c.want)
		}
	}
	if code, _ := call(t, "GET", base+"/api/v1/systems", "", ""); code != 401 {
		t.Fatalf("reads without a token must be refused unless opened: %d", code)
	}
	if code, body := call(t, "GET", base+"/healthz", "", ""); code != 200 {
		t.Fatalf("healthz %d %s", code, body)
	}

	// The canary goes bad: half its requests fail.
	e.mesh.SetErrorRate("canary", 0.5)
	var rollbacks struct {
		Rollbacks []struct{ ID, State string }
	}
	testenv.Eventually(t, 2*time.Minute, "a finished rollback", func() (bool, string) {
		_, body := call(t, "GET", base+"/api/v1/rollbacks", token, "")
		_ = json.Unmarshal([]byte(body), &rollbacks)
		_, sys := call(t, "GET", base+"/api/v1/systems", token, "")
		return len(rollbacks.Rollbacks) > 0 && rollbacks.Rollbacks[0].State != "running", "systems:\n" + sys + "\nlogs:\n" + logs.String()
	})
	if len(rollbacks.Rollbacks) != 1 || rollbacks.Rollbacks[0].State != "succeeded" {
		_, detail := call(t, "GET", base+"/api/v1/rollbacks/"+rollbacks.Rollbacks[0].ID, token, "")
		t.Fatalf("rollbacks: %+v\n%s\nlogs:\n%s", rollbacks, detail, logs)
	}
	d, err := e.cs.AppsV1().Deployments(e.ns).Get(context.Background(), "dwcp-canary", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rev := d.Annotations["deployment.kubernetes.io/revision"]; rev != "3" || *d.Spec.Replicas != 0 || d.Spec.Template.Spec.Containers[0].Image != kubetest.ImageV1 {
		t.Fatalf("deployment: revision %s, replicas %d", rev, *d.Spec.Replicas)
	}
	_, metrics := call(t, "GET", base+"/metrics", "", "")
	for _, want := range []string{`rewind_rollbacks_total{result="succeeded",system="dwcp-manager",trigger=`, `rewind_detection_seconds_count 1`, `rewind_trigger_state{state="firing",system="dwcp-manager"`, `rewind_build_info{`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	waitFor(t, 30*time.Second, "the rollback's notices", func() (string, bool) {
		mu.Lock()
		defer mu.Unlock()
		got := strings.Join(notices, " ")
		return got, strings.Contains(got, "rollback-decided") && strings.Contains(got, "rollback-completed")
	})
	// The daemon keeps watching: still evaluating, no second rollback.
	_, sys := call(t, "GET", base+"/api/v1/systems", token, "")
	if !strings.Contains(sys, `"name": "dwcp-manager"`) {
		t.Fatalf("systems: %s", sys)
	}
}

// noCluster makes sure no Kubernetes client configuration can be found:
// no in-cluster service account, no $KUBECONFIG, no ~/.kube/config.
func noCluster(t *testing.T) {
	t.Helper()
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "absent"))
	t.Setenv("HOME", t.TempDir())
}

// receiver is a local webhook receiver of notices: kind and system of each.
type receiver struct {
	URL string
	mu  sync.Mutex
	got []string
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var ev struct{ Kind, System, Reason string }
		if err := json.NewDecoder(req.Body).Decode(&ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.got = append(r.got, ev.Kind+" "+ev.System+": "+ev.Reason)
		r.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

func (r *receiver) notices() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.got, "\n")
}

// TestServeStartsWithoutCluster: `rewind serve` with the built-in policy on
// a machine with no cluster and no Prometheus stays up, says what is
// missing in /readyz, serves /healthz and /metrics, and a rollback that
// needs the cluster fails loudly: in the journal, in the metrics, in a
// notice.
func TestServeStartsWithoutCluster(t *testing.T) {
	noCluster(t)
	hook := newReceiver(t)
	code, text, _ := runCLI(t, "policy", "default")
	if code != 0 {
		t.Fatal("policy default")
	}
	text = strings.Replace(text, "      evidence: { logTailLines: 10000 }\n", "      evidence: { logTailLines: 10000 }\n    notify: [hook]\n", 1)
	text += "notifiers:\n  hook:\n    webhook: { url: '" + hook.URL + "' }\n"
	dir := t.TempDir()
	pol := filepath.Join(dir, "p.yaml")
	os.WriteFile(pol, []byte(text), 0o644)
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("secret-token-123\n"), 0o600)
	base, logs := startServe(t, "--policy", pol, "--listen", "127.0.0.1:0", "--store", filepath.Join(dir, "r.db"), "--token-file", tokenFile, "--open-reads")

	if code, body := call(t, "GET", base+"/healthz", "", ""); code != 200 {
		t.Fatalf("healthz: %d %s", code, body)
	}
	code, body := call(t, "GET", base+"/readyz", "", "")
	if code != 503 || !strings.Contains(body, `"kubernetes"`) || !strings.Contains(body, "no configuration has been provided") ||
		!strings.Contains(body, "prometheus http://prometheus:9090") {
		t.Fatalf("readyz must be 503 and name Kubernetes and Prometheus: %d %s", code, body)
	}
	if code, body := call(t, "GET", base+"/metrics", "", ""); code != 200 || !strings.Contains(body, "rewind_build_info") {
		t.Fatalf("metrics: %d", code)
	}
	code, body = call(t, "POST", base+"/api/v1/rollbacks", "secret-token-123", `{"system":"dwcp-manager","reason":"customer-escalation"}`)
	if code != 202 {
		t.Fatalf("manual rollback: %d %s", code, body)
	}
	var list struct {
		Rollbacks []struct{ ID, State, Error string }
	}
	testenv.Eventually(t, time.Minute, "the rollback to fail", func() (bool, string) {
		_, b := call(t, "GET", base+"/api/v1/rollbacks", "", "")
		_ = json.Unmarshal([]byte(b), &list)
		return len(list.Rollbacks) == 1 && list.Rollbacks[0].State == "failed", b + "\n" + logs.String()
	})
	if !strings.Contains(list.Rollbacks[0].Error, "kubernetes unavailable") {
		t.Fatalf("the journal must say why: %+v", list.Rollbacks[0])
	}
	_, m := call(t, "GET", base+"/metrics", "", "")
	if !strings.Contains(m, `rewind_rollbacks_total{result="failed",system="dwcp-manager",trigger="manual"} 1`) {
		t.Errorf("the failed rollback is not counted")
	}
	testenv.Eventually(t, 30*time.Second, "the rollback-failed notice", func() (bool, string) {
		n := hook.notices()
		return strings.Contains(n, "rollback-failed dwcp-manager: acquiring the fence of dwcp-manager: kubernetes unavailable"), n
	})
	if strings.Contains(logs.String(), "took\":1") {
		t.Errorf("durations must be logged as strings, not nanoseconds:\n%s", logs)
	}
}

// TestServeReloadAddsSystemNotices: a policy reload that adds a system
// (and its notifier) routes that system's notices to its notifier: the
// reload rebuilds the outbox's routing and notifiers with the controller.
func TestServeReloadAddsSystemNotices(t *testing.T) {
	first, second := newReceiver(t), newReceiver(t)
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	os.WriteFile(pol, []byte(policyFor("first", first.URL)), 0o644)
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("secret-token-123\n"), 0o600)
	base, logs := startServe(t, "--policy", pol, "--listen", "127.0.0.1:0", "--store", filepath.Join(dir, "r.db"), "--open-reads", "--token-file", tokenFile)

	two := strings.Replace(policyFor("first", first.URL), "notifiers:\n", `  - name: second
    interval: 1s
    prometheus: { url: 'http://127.0.0.1:2', timeout: 1s }
    canary:   { selector: 'version="canary"' }
    baseline: { selector: 'version="baseline"' }
    triggers:
      - { name: down, expr: 'up{ {{selector}} } == 0' }
    rollback:
      exec:
        undo: { command: ["/bin/false"] }
    notify: [hook2]
notifiers:
  hook2:
    webhook: { url: '`+second.URL+`' }
`, 1)
	os.WriteFile(pol, []byte(two), 0o644)
	testenv.Eventually(t, 20*time.Second, "the reloaded policy", func() (bool, string) {
		_, sys := call(t, "GET", base+"/api/v1/systems", "", "")
		return strings.Contains(sys, `"name": "second"`), sys + "\n" + logs.String()
	})
	if code, body := call(t, "POST", base+"/api/v1/rollbacks", "secret-token-123", `{"system":"second","reason":"team-consensus"}`); code != 202 {
		t.Fatalf("manual rollback: %d %s", code, body)
	}
	testenv.Eventually(t, time.Minute, "the new system's notices at its notifier", func() (bool, string) {
		n := second.notices()
		return strings.Contains(n, "manual-rollback-requested second") && strings.Contains(n, "analyzer-blind second"), n + "\n" + logs.String()
	})
	if n := first.notices(); strings.Contains(n, "second") {
		t.Fatalf("the first system's notifier got the second's notices:\n%s", n)
	}
}
