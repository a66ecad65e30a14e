package daemon

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/internal/testenv"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/source/embedded"
)

// TestUIMounted: with Options.UI the web UI answers at "/" beside the API,
// whose routes still win, and it hears the controller's cycles; without
// it "/" is not served.
func TestUIMounted(t *testing.T) {
	st, err := OpenStore(t.Context(), filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	db, err := embedded.Open(embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	opt := Options{Policy: parse(t, "      mode: notify-only\n"), Store: st, EvidenceDir: t.TempDir(), OpenReads: true,
		Source: func(policy.Prometheus) (rewind.Source, error) { return db, nil }, UI: &UIOptions{}}
	d, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(srv.Close)
	get := func(path string) (int, http.Header, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	code, h, body := get("/")
	if code != http.StatusOK || !strings.Contains(h.Get("Content-Type"), "text/html") || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") || !strings.Contains(body, `id="s-web"`) {
		t.Fatalf("GET /: %d %q", code, h.Get("Content-Type"))
	}
	for path, want := range map[string]string{"/api/v1/systems": "application/json", "/healthz": "", "/static/app.js": "javascript", "/systems/web": "text/html"} {
		code, h, _ := get(path)
		if code != http.StatusOK || !strings.Contains(h.Get("Content-Type"), want) {
			t.Errorf("GET %s: %d %q", path, code, h.Get("Content-Type"))
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	testenv.Eventually(t, 10*time.Second, "the UI to hear the first cycle's transition", func() (bool, string) {
		return len(d.history.Transitions("web", "down")) > 0, ""
	})
	cancel()
	<-done

	opt.UI = nil
	plain, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	plain.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("GET / without the UI: %d", w.Code)
	}
}
