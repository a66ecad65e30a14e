// Package webhook is the generic JSON webhook notifier: the event as JSON,
// signed with HMAC-SHA256 in X-Rewind-Signature. It also carries the
// incident-review ticket: point a notifier at the ticketing system's hook
// and it gets rollback-completed / rollback-failed with the record and links.
package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/internal/secret"
	"github.com/rewind-sre/rewind/notify/internal/httpx"
	"github.com/rewind-sre/rewind/policy"
)

// Headers of a delivery.
const (
	// SignatureHeader is "sha256=" and the hex HMAC-SHA256 of the body,
	// keyed with the notifier's secret (absent without a secret).
	SignatureHeader = secret.SignatureHeader
	// EventHeader is the event's kind.
	EventHeader = "X-Rewind-Event"
	// DeliveryHeader is the event's key, the same on every attempt: a
	// receiver that sees it twice got a retry of a delivery it accepted.
	DeliveryHeader = "X-Rewind-Delivery"
)

// Version is the version of the payload's shape.
const Version = 1

// Payload is the JSON body: the event, with the payload version and key.
type Payload struct {
	Version int    `json:"version"`
	Key     string `json:"key"`
	rewind.Event
}

// Config configures a Notifier.
type Config struct {
	Name   string        // the notifier's name in the policy
	URL    string        // http(s); shown in errors by scheme and host only
	Secret policy.Secret // HMAC key; zero: deliveries are not signed
	Client *http.Client  // default: no redirects, 30s timeout
	Log    *slog.Logger
	Now    func() time.Time
}

// Notifier posts events to one webhook.
type Notifier struct {
	c Config
}

var _ rewind.Notifier = (*Notifier)(nil)

// New checks c and returns its Notifier. The secret is read at every
// delivery, so a rotated file takes effect at once.
func New(c Config) (*Notifier, error) {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook notifier %s: the URL must be an absolute http(s) URL", c.Name)
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &Notifier{c: c}, nil
}

// Notify posts e once; see rewind.Notifier. 2xx is success; 408, 425, 429
// and 5xx are retried (after Retry-After when given); other answers are not.
func (n *Notifier) Notify(ctx context.Context, e rewind.Event) (bool, error) {
	body, err := json.Marshal(Payload{Version: Version, Key: e.Key(), Event: e})
	if err != nil {
		return false, fmt.Errorf("webhook %s: encoding the event: %w", n.c.Name, err)
	}
	h := http.Header{}
	h.Set(EventHeader, string(e.Kind))
	h.Set(DeliveryHeader, e.Key())
	var key string
	if secret.Configured(n.c.Secret) {
		if key, err = secret.Read(n.c.Secret); err != nil {
			return true, fmt.Errorf("webhook %s: %w", n.c.Name, err)
		}
		h.Set(SignatureHeader, Sign([]byte(key), body))
	}
	what := "webhook " + n.c.Name + " (" + httpx.Label(n.c.URL) + ")"
	resp, err := httpx.Post(ctx, n.c.Client, n.c.URL, what, body, h, key)
	if err != nil {
		return true, err
	}
	if resp.Status/100 == 2 {
		n.c.Log.Debug("webhook delivered", "notifier", n.c.Name, "event", e.Key(), "status", resp.Status)
		return false, nil
	}
	return httpx.Classify(resp, what, n.c.Now(), key)
}

// Sign returns the signature header value of body: "sha256=<hex HMAC>".
func Sign(key, body []byte) string { return secret.Sign(key, body) }

// Verify checks a signature header value against body, in constant time.
func Verify(key, body []byte, header string) error { return secret.Verify(key, body, header) }
