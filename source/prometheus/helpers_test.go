package prometheus

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rewind-sre/rewind"
)

// recorded is one request seen by a fake server.
type recorded struct {
	Method string
	Path   string
	Form   url.Values
	Header http.Header
}

// fakeAPI is an httptest server whose answers come from a handler; it
// records every request after parsing its form.
type fakeAPI struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recorded
}

func newFakeAPI(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) *fakeAPI {
	t.Helper()
	f := &fakeAPI{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.requests = append(f.requests, recorded{r.Method, r.URL.Path, r.Form, r.Header.Clone()})
		f.mu.Unlock()
		handle(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAPI) seen() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.requests...)
}

// answer returns a handler that always writes status and body as JSON.
func answer(status int, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

func mustNew(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return c
}

// writeSecret writes content to a file in a temp dir and returns its path.
func writeSecret(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantQueryError checks that err is an *Error wrapping rewind.ErrQuery of
// the kind, naming the query and mentioning each of the fragments.
func wantQueryError(t *testing.T, err error, query string, kind Kind, fragments ...string) *Error {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want a %s error", kind)
	}
	if !errors.Is(err, rewind.ErrQuery) {
		t.Errorf("error %v does not wrap rewind.ErrQuery", err)
	}
	var qe *Error
	if !errors.As(err, &qe) {
		t.Fatalf("error %T %v is not a *Error", err, err)
	}
	if qe.Kind != kind {
		t.Errorf("kind = %q, want %q (%v)", qe.Kind, kind, err)
	}
	if qe.Query != query || !strings.Contains(err.Error(), strconv.Quote(query)) {
		t.Errorf("error %q does not name the query %q", err, query)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not mention %q", err, f)
		}
	}
	return qe
}
