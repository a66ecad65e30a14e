// Package pagerduty escalates through the PagerDuty Events API v2: a
// trigger at the decision with the rollback id as dedup_key (later triggers
// of the same rollback join its alert), and a resolve when the rollback's
// recovery is verified.
package pagerduty

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/internal/secret"
	"github.com/rewind-sre/rewind/notify/internal/httpx"
	"github.com/rewind-sre/rewind/policy"
)

// DefaultURL is the Events API v2 endpoint.
const DefaultURL = "https://events.pagerduty.com/v2/enqueue"

// Config configures a Notifier.
type Config struct {
	Name       string        // the notifier's name in the policy
	RoutingKey policy.Secret // the integration key is the secret
	URL        string        // default DefaultURL (tests point it at a local receiver)
	Client     *http.Client  // default: no redirects, 30s timeout
	Log        *slog.Logger
	Now        func() time.Time
}

// Notifier sends events to one PagerDuty integration.
type Notifier struct {
	c Config
}

var _ rewind.Notifier = (*Notifier)(nil)

// New checks c and returns its Notifier. The key is read at every delivery.
func New(c Config) (*Notifier, error) {
	if !secret.Configured(c.RoutingKey) {
		return nil, fmt.Errorf("pagerduty notifier %s: no routing key file or environment variable", c.Name)
	}
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &Notifier{c: c}, nil
}

// Notify sends e once; see rewind.Notifier. 202 is success; 429 and 5xx
// are retried, 400 is not.
func (n *Notifier) Notify(ctx context.Context, e rewind.Event) (bool, error) {
	key, err := secret.Read(n.c.RoutingKey)
	if err != nil {
		return true, fmt.Errorf("pagerduty %s: routing key: %w", n.c.Name, err)
	}
	body, err := Encode(Build(e, key))
	if err != nil {
		return false, fmt.Errorf("pagerduty %s: %w", n.c.Name, err)
	}
	what := "PagerDuty " + n.c.Name + " (" + httpx.Label(n.c.URL) + ")"
	resp, err := httpx.Post(ctx, n.c.Client, n.c.URL, what, body, nil, key)
	if err != nil {
		return true, err
	}
	if resp.Status/100 == 2 {
		n.c.Log.Debug("pagerduty event accepted", "notifier", n.c.Name, "event", e.Key(), "status", resp.Status)
		return false, nil
	}
	return httpx.Classify(resp, what, n.c.Now(), key)
}

// encodeJSON is json.Marshal without HTML escaping: the texts (conditions
// such as "canary > baseline * 1.5") stay readable in the raw event.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding the event: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
