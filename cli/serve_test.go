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
