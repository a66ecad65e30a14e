package webhook_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/notify/internal/waiter"
	"github.com/rewind-sre/rewind/notify/notifytest"
	"github.com/rewind-sre/rewind/notify/webhook"
	"github.com/rewind-sre/rewind/policy"
)

// receiver verifies the signature and the payload, then answers status.
type receiver struct {
	key      []byte
	status   int
	accepted waiter.Counter
	mu       sync.Mutex
	got      []webhook.Payload
	headers  []http.Header
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if req.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "want JSON", http.StatusUnsupportedMediaType)
		return
	}
	if err := webhook.Verify(r.key, body, req.Header.Get(webhook.SignatureHeader)); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var p webhook.Payload
	if err := json.Unmarshal(body, &p); err != nil || p.Version != webhook.Version || p.Kind == "" || p.Key == "" ||
		req.Header.Get(webhook.DeliveryHeader) != p.Key || req.Header.Get(webhook.EventHeader) != string(p.Kind) {
		http.Error(w, "bad payload", http.StatusBadRequest)
		return
	}
	if r.status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(int(notifytest.RetryAfter.Seconds())))
	}
	if r.status/100 != 2 {
		http.Error(w, http.StatusText(r.status), r.status)
		return
	}
	r.mu.Lock()
	r.got, r.headers = append(r.got, p), append(r.headers, req.Header.Clone())
	r.mu.Unlock()
	w.WriteHeader(r.status)
	r.accepted.Add(1)
}

var statuses = map[notifytest.Outcome]int{
	notifytest.Accept: 204, notifytest.BadRequest: 400, notifytest.NotFound: 404,
	notifytest.TooManyRequests: 429, notifytest.InternalError: 500, notifytest.Unavailable: 503,
}

func secretFile(t *testing.T, v string) policy.Secret {
	p := filepath.Join(t.TempDir(), "hmac")
	if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
		t.Fatal(err)
	}
	return policy.Secret{File: p}
}

const key = "hmac-key-3a1f9c77d0e24b6a"

func start(t *testing.T, status int) (*receiver, *httptest.Server) {
	r := &receiver{key: []byte(key), status: status}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func TestSuite(t *testing.T) {
	notifytest.Run(t, notifytest.Harness{
		Receiver: func(t *testing.T, o notifytest.Outcome) notifytest.Receiver {
			r, srv := start(t, statuses[o])
			return notifytest.Receiver{Addr: srv.Listener.Addr().String(), Accepted: r.accepted.Value}
		},
		New: func(t *testing.T, addr string, log *slog.Logger) (rewind.Notifier, []string) {
			// A token in the URL's query is treated as a secret too.
			n, err := webhook.New(webhook.Config{Name: "review", URL: "http://" + addr + "/hooks/rewind?token=tok-5be1d0", Secret: secretFile(t, key), Log: log})
			if err != nil {
				t.Fatal(err)
			}
			return n, []string{key, "tok-5be1d0"}
		},
		RetryAfter: true,
	})
}

// The incident-review ticket: the completed rollback's record and links,
// signed, with the same delivery id on every attempt.
func TestReviewTicket(t *testing.T) {
	r, srv := start(t, 200)
	n, err := webhook.New(webhook.Config{Name: "review", URL: srv.URL, Secret: secretFile(t, key)})
	if err != nil {
		t.Fatal(err)
	}
	e := notifytest.Event(rewind.EventRollbackCompleted)
	e.Links.PostMortem = e.Links.Evidence + "/POSTMORTEM.md"
	for range 2 {
		if _, err := n.Notify(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.got) != 2 || r.headers[0].Get(webhook.DeliveryHeader) != r.headers[1].Get(webhook.DeliveryHeader) {
		t.Fatalf("deliveries %d, ids %q %q", len(r.got), r.headers[0].Get(webhook.DeliveryHeader), r.headers[1].Get(webhook.DeliveryHeader))
	}
	p := r.got[0]
	if p.Kind != rewind.EventRollbackCompleted || p.Rollback == nil || len(p.Rollback.Steps) != 6 ||
		!strings.HasSuffix(p.Links.PostMortem, "POSTMORTEM.md") || len(p.Findings) != 2 || p.Key != e.Key() {
		t.Errorf("payload: %+v", p)
	}
}

func TestUnsigned(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { got = req.Header.Clone() }))
	t.Cleanup(srv.Close)
	n, err := webhook.New(webhook.Config{Name: "plain", URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Notify(t.Context(), notifytest.Event(rewind.EventRollbackDecided)); err != nil {
		t.Fatal(err)
	}
	if got.Get(webhook.SignatureHeader) != "" {
		t.Errorf("signed without a secret")
	}
}

func TestSignVerify(t *testing.T) {
	body := []byte(`{"a":1}`)
	sig := webhook.Sign([]byte("k"), body)
	// echo -n '{"a":1}' | openssl dgst -sha256 -hmac k
	if want := "sha256=c3a92ff9e274cdcce27a58c15a78ec6dcbbdbd0038a87e7a11baef2028fd8bff"; sig != want {
		t.Fatalf("Sign = %s, want %s", sig, want)
	}
	if err := webhook.Verify([]byte("k"), body, sig); err != nil {
		t.Fatal(err)
	}
	if webhook.Verify([]byte("k"), []byte(`{"a":2}`), sig) == nil || webhook.Verify([]byte("other"), body, sig) == nil {
		t.Error("Verify accepted a wrong body or key")
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "not a url", "/relative"} {
		if _, err := webhook.New(webhook.Config{Name: "w", URL: u}); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
}
