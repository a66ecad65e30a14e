package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func policyFor(system, hook string) string {
	return `apiVersion: rewind/v1
kind: Policy
systems:
  - name: ` + system + `
    interval: 1s
    prometheus: { url: 'http://127.0.0.1:1', timeout: 1s }
    canary:   { selector: 'version="canary"' }
    baseline: { selector: 'version="baseline"' }
    triggers:
      - { name: down, expr: 'up{ {{selector}} } == 0' }
    rollback:
      exec:
        undo: { command: ["/bin/false"] }
    notify: [hook]
notifiers:
  hook:
    webhook: { url: '` + hook + `' }
`
}

// TestServeReloadsPolicy: a changed policy file is picked up; one that
// fails validation keeps the old policy running and says why.
func TestServeReloadsPolicy(t *testing.T) {
	var mu sync.Mutex
	var notices []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct{ Kind, Reason string }
		_ = json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		notices = append(notices, ev.Kind+": "+ev.Reason)
		mu.Unlock()
	}))
	defer hook.Close()
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	os.WriteFile(pol, []byte(policyFor("first", hook.URL)), 0o644)
	base, logs := startServe(t, "--policy", pol, "--listen", "127.0.0.1:0", "--store", filepath.Join(dir, "r.db"), "--open-reads")

	os.WriteFile(pol, []byte(strings.Replace(policyFor("first", hook.URL), "expr:", "exprr:", 1)), 0o644)
	waitFor(t, 20*time.Second, "the invalid policy to be refused", func() (string, bool) {
		_, m := call(t, "GET", base+"/metrics", "", "")
		return "", strings.Contains(m, `rewind_policy_reloads_total{result="invalid"} 1`)
	})
	if _, sys := call(t, "GET", base+"/api/v1/systems", "", ""); !strings.Contains(sys, `"name": "first"`) {
		t.Fatalf("the old policy must keep running: %s", sys)
	}
	if !strings.Contains(logs.String(), `unknown field \"exprr\"`) {
		t.Fatalf("the log must say why the policy was refused:\n%s", logs)
	}
	waitFor(t, 20*time.Second, "a notice that the policy was refused", func() (string, bool) {
		mu.Lock()
		defer mu.Unlock()
		got := strings.Join(notices, "\n")
		return got, strings.Contains(got, `policy-refused: the changed policy`) && strings.Contains(got, `unknown field "exprr"`)
	})
	os.WriteFile(pol, []byte(policyFor("second", hook.URL)), 0o644)
	waitFor(t, 20*time.Second, "the new policy", func() (string, bool) {
		_, sys := call(t, "GET", base+"/api/v1/systems", "", "")
		return "", strings.Contains(sys, `"name": "second"`) && !strings.Contains(sys, `"name": "first"`)
	})
}
