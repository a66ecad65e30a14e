package webhook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	sig "github.com/rewind-sre/rewind/internal/secret"
	"github.com/rewind-sre/rewind/plan/plantest"
	"github.com/rewind-sre/rewind/policy"
)

const hookKey = "s3cr3t-hook-key"

// deployer is a receiver that verifies the signature and undoes once per
// Idempotency-Key; it fails the first `failures` calls with 503.
type deployer struct {
	mu       sync.Mutex
	done     map[string]bool
	effects  []string
	failures atomic.Int32
}

func (d *deployer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if sig.Verify([]byte(hookKey), body, r.Header.Get(SignatureHeader)) != nil {
		http.Error(w, `{"detail":"bad signature"}`, http.StatusUnauthorized)
		return
	}
	if d.failures.Add(-1) >= 0 {
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	var req Request
	if err := json.Unmarshal(body, &req); err != nil || req.RollbackID == "" || req.Step == "" {
		http.Error(w, `{"detail":"bad request"}`, http.StatusBadRequest)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	k := r.Header.Get("Idempotency-Key")
	if d.done[k] {
		json.NewEncoder(w).Encode(Response{Skipped: true, Detail: "already done"})
		return
	}
	d.done[k] = true
	d.effects = append(d.effects, string(req.Step)+" "+req.System)
	json.NewEncoder(w).Encode(Response{Detail: "rolled back " + req.System})
}

func (d *deployer) state() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.effects, ",")
}

func setup(t *testing.T) (*Executor, *deployer) {
	d := &deployer{done: map[string]bool{}}
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	file := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(file, []byte(hookKey+"\n"), 0o600)
	return &Executor{Step: rewind.StepUndo, Hook: policy.Webhook{URL: srv.URL + "/rollback?token=abc", Secret: policy.Secret{File: file}, Timeout: 5 * time.Second}, Backoff: time.Millisecond}, d
}

func TestWebhookRetriesThenIsIdempotent(t *testing.T) {
	ex, d := setup(t)
	d.failures.Store(2)
	rb := &rewind.Rollback{ID: "rb-1", System: "dwcp-manager", Reason: "customer-escalation"}
	res, err := ex.Do(context.Background(), rb)
	if err != nil || res.Skipped || res.Facts["attempts"] != "3" || d.state() != "undo dwcp-manager" {
		t.Fatalf("%+v %v %q", res, err, d.state())
	}
	res, err = ex.Do(context.Background(), rb)
	if err != nil || !res.Skipped || d.state() != "undo dwcp-manager" {
		t.Fatalf("second: %+v %v", res, err)
	}
}

func TestWebhookErrorsKeepSecretsOut(t *testing.T) {
	ex, _ := setup(t)
	ex.Hook.Secret = policy.Secret{Env: "REWIND_TEST_WRONG_SECRET"}
	t.Setenv("REWIND_TEST_WRONG_SECRET", "wrong")
	_, err := ex.Do(context.Background(), &rewind.Rollback{ID: "x", System: "s"})
	if err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "token=abc") || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("want a 401 without the URL's token or the secret: %v", err)
	}
	ex.Hook.URL = "http://127.0.0.1:1/rollback?token=abc"
	ex.Hook.Timeout = 300 * time.Millisecond
	_, err = ex.Do(context.Background(), &rewind.Rollback{ID: "x", System: "s"})
	if err == nil || strings.Contains(err.Error(), "token=abc") {
		t.Fatalf("connection refused must fail within the timeout, without the token: %v", err)
	}
}

func TestWebhookSuite(t *testing.T) {
	plantest.ExecutorSuite(t, func(t *testing.T) (rewind.Executor, *rewind.Rollback, func() string) {
		ex, d := setup(t)
		return ex, &rewind.Rollback{ID: "rb-suite", System: "s"}, d.state
	})
}
