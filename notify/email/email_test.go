package email_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/notify/email"
	"github.com/rewind-sre/rewind/notify/internal/mailpit"
	"github.com/rewind-sre/rewind/notify/notifytest"
	"github.com/rewind-sre/rewind/policy"
)

// chaos makes mailpit answer every delivery with the SMTP reply of the
// same meaning as the suite's HTTP outcome.
var chaos = map[notifytest.Outcome]string{
	notifytest.Accept:          "",
	notifytest.BadRequest:      "Sender:554:100",    // transaction failed
	notifytest.NotFound:        "Recipient:550:100", // mailbox unavailable
	notifytest.TooManyRequests: "Recipient:452:100", // too many recipients / insufficient storage
	notifytest.InternalError:   "Sender:451:100",    // local error in processing
	notifytest.Unavailable:     "Recipient:421:100", // service not available
}

func passwordFile(t *testing.T, pw string) policy.Secret {
	p := filepath.Join(t.TempDir(), "smtp-password")
	if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return policy.Secret{File: p}
}

func config(addr string, s *mailpit.Server, pw policy.Secret, log *slog.Logger) email.Config {
	c := email.Config{
		Name: "sre-mail", Addr: addr, From: "Rewind <rewind@example.com>", To: []string{"sre@example.com", "oncall@example.com"},
		Username: "rewind", Password: pw, TLS: email.TLSMandatory, Log: log,
	}
	if s != nil {
		c.TLSConfig = s.TLS
	} else {
		c.TLSConfig = &tls.Config{ServerName: "127.0.0.1"}
	}
	return c
}

func TestSuite(t *testing.T) {
	servers := map[string]*mailpit.Server{}
	notifytest.Run(t, notifytest.Harness{
		Receiver: func(t *testing.T, o notifytest.Outcome) notifytest.Receiver {
			s := mailpit.Start(t, mailpit.Options{TLS: true, Auth: true, Chaos: chaos[o]})
			servers[s.SMTP] = s
			return notifytest.Receiver{Addr: s.SMTP, Accepted: func() int {
				ms, err := s.Messages(context.Background())
				if err != nil {
					t.Errorf("reading mailpit: %v", err)
				}
				return len(ms)
			}}
		},
		New: func(t *testing.T, addr string, log *slog.Logger) (rewind.Notifier, []string) {
			s := servers[addr]
			pw := "pw-not-a-server-1f6c2e"
			if s != nil {
				pw = s.Password
			}
			n, err := email.New(config(addr, s, passwordFile(t, pw), log))
			if err != nil {
				t.Fatal(err)
			}
			return n, []string{pw}
		},
	})
}

// The mail that arrives: subject, sender and recipients, and a
// multipart/alternative body with the text and the HTML report.
func TestDeliveredMessage(t *testing.T) {
	s := mailpit.Start(t, mailpit.Options{TLS: true, Auth: true})
	n, err := email.New(config(s.SMTP, s, passwordFile(t, s.Password), nil))
	if err != nil {
		t.Fatal(err)
	}
	e := notifytest.Event(rewind.EventRollbackDecided)
	if retry, err := n.Notify(t.Context(), e); err != nil {
		t.Fatalf("Notify: %v (retry %v)\n%s", err, retry, s.Output())
	}
	ms, err := s.Messages(t.Context())
	if err != nil || len(ms) != 1 {
		t.Fatalf("mailpit holds %d messages (%v)", len(ms), err)
	}
	if ms[0].Subject != "[Rewind] [CRITICAL] Rollback decided: checkout — error-rate-high, latency-p99-high" {
		t.Errorf("subject %q", ms[0].Subject)
	}
	raw, err := s.Raw(t.Context(), ms[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	h := msg.Header
	if from, _ := mail.ParseAddress(h.Get("From")); from == nil || from.Address != "rewind@example.com" {
		t.Errorf("From %q", h.Get("From"))
	}
	if to, _ := h.AddressList("To"); len(to) != 2 {
		t.Errorf("To %q", h.Get("To"))
	}
	if h.Get(email.EventHeader) != e.Key() || !strings.HasPrefix(h.Get("Message-ID"), "<rewind.") {
		t.Errorf("headers %s=%q Message-ID=%q", email.EventHeader, h.Get(email.EventHeader), h.Get("Message-ID"))
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q", h.Get("Content-Type"))
	}
	parts := map[string]string{}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		parts[ct] = string(b)
	}
	text, html := parts["text/plain"], parts["text/html"]
	for _, want := range []string{
		"Rollback decided: checkout", "Severity: critical", "Rollback: rb-20260101T142000Z-3f2a91c0",
		"- error-rate-high: canary 0.025 vs baseline 0.008 (threshold: error ratio ≥ 1.5× baseline, α = 0.01), violating since 2026-01-01 14:15:00Z",
		"- undo: done in 26s — Deployment shop/checkout-canary rolled back to revision 41",
		"- Evidence: /var/lib/rewind/evidence/rb-20260101T142000Z-3f2a91c0",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text part lacks %q:\n%s", want, text)
		}
	}
	for _, want := range []string{
		"<h2>Rollback decided: checkout</h2>", "<td>error-rate-high</td><td>critical</td><td>0.025</td><td>0.008</td>",
		"<td>undo</td><td>done</td><td>26s</td>", `<a href="https://grafana.example.com/d/rewind?var-system=checkout&amp;from=1767276900000">`,
		"p = 2e-9 &lt; α 0.01",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML part lacks %q:\n%s", want, html)
		}
	}
}

// A loopback relay without TLS: the default policy (opportunistic) sends in
// plain text; mandatory refuses, and so does authentication without TLS.
func TestLoopbackWithoutTLS(t *testing.T) {
	s := mailpit.Start(t, mailpit.Options{})
	base := email.Config{Name: "relay", Addr: s.SMTP, From: "rewind@example.com", To: []string{"sre@example.com"}}
	if got := email.DefaultTLS(s.SMTP); got != email.TLSOpportunistic {
		t.Fatalf("DefaultTLS(%s) = %s", s.SMTP, got)
	}
	n, err := email.New(base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Notify(t.Context(), notifytest.Event(rewind.EventRollbackCompleted)); err != nil {
		t.Fatalf("opportunistic to a plain loopback server: %v", err)
	}

	mandatory := base
	mandatory.TLS = email.TLSMandatory
	n, _ = email.New(mandatory)
	if retry, err := n.Notify(t.Context(), notifytest.Event(rewind.EventRollbackCompleted)); err == nil || retry {
		t.Errorf("mandatory TLS without STARTTLS: %v, %v; want a final error", retry, err)
	}

	withAuth := base
	withAuth.Username, withAuth.Password = "rewind", passwordFile(t, "never-in-clear-8d1b")
	n, _ = email.New(withAuth)
	retry, err := n.Notify(t.Context(), notifytest.Event(rewind.EventRollbackCompleted))
	if err == nil || retry {
		t.Errorf("authentication over plain text: %v, %v; want a final error", retry, err)
	}
	if ms, _ := s.Messages(t.Context()); len(ms) != 1 {
		t.Errorf("mailpit holds %d messages, want 1", len(ms))
	}
}

// A wrong password is a 535: not retried, and the password never shows.
func TestWrongPassword(t *testing.T) {
	s := mailpit.Start(t, mailpit.Options{TLS: true, Auth: true})
	logs, log := notifytest.NewLogs()
	n, err := email.New(config(s.SMTP, s, passwordFile(t, "wrong-pw-77c1"), log))
	if err != nil {
		t.Fatal(err)
	}
	retry, err := n.Notify(t.Context(), notifytest.Event(rewind.EventRollbackDecided))
	if err == nil || retry {
		t.Fatalf("Notify = %v, %v; want a final error", retry, err)
	}
	notifytest.NoSecret(t, "the error", err.Error(), []string{"wrong-pw-77c1", s.Password})
	notifytest.NoSecret(t, "the log", logs.String(), []string{"wrong-pw-77c1", s.Password})
}

func TestDefaultTLS(t *testing.T) {
	for addr, want := range map[string]email.TLSPolicy{
		"127.0.0.1:25": email.TLSOpportunistic, "[::1]:25": email.TLSOpportunistic, "localhost:587": email.TLSOpportunistic,
		"smtp.example.com:587": email.TLSMandatory, "10.0.0.5:25": email.TLSMandatory,
	} {
		if got := email.DefaultTLS(addr); got != want {
			t.Errorf("DefaultTLS(%s) = %s, want %s", addr, got, want)
		}
	}
}

func TestNewChecksConfig(t *testing.T) {
	for name, c := range map[string]email.Config{
		"no port":         {Addr: "smtp.example.com", From: "a@b", To: []string{"c@d"}},
		"no to":           {Addr: "smtp.example.com:587", From: "a@b"},
		"user, no secret": {Addr: "smtp.example.com:587", From: "a@b", To: []string{"c@d"}, Username: "u"},
		"bad tls":         {Addr: "smtp.example.com:587", From: "a@b", To: []string{"c@d"}, TLS: "sometimes"},
	} {
		if _, err := email.New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
