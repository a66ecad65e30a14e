// Package slack notifies a Slack channel through an incoming webhook, with a
// Block Kit message and a fallback text, within Slack's limits (50 blocks,
// 3 000 characters per section text) and its rate limit of about one
// message per second per webhook.
package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/internal/secret"
	"github.com/rewind-sre/rewind/notify/internal/httpx"
	"github.com/rewind-sre/rewind/policy"
)

// DefaultInterval is the least time between two messages to one webhook.
const DefaultInterval = time.Second

// Config configures a Notifier.
type Config struct {
	Name       string        // the notifier's name in the policy
	WebhookURL policy.Secret // the incoming webhook's URL is the secret
	// Interval is the least time between two messages (DefaultInterval).
	Interval time.Duration
	Client   *http.Client // default: no redirects, 30s timeout
	Log      *slog.Logger
	Now      func() time.Time
}

// Notifier posts events to one incoming webhook.
type Notifier struct {
	c Config

	mu   sync.Mutex
	next time.Time // no message before this: the rate limit, or Retry-After
}

var _ rewind.Notifier = (*Notifier)(nil)

// New checks c and returns its Notifier. The URL is read at every delivery.
func New(c Config) (*Notifier, error) {
	if !secret.Configured(c.WebhookURL) {
		return nil, fmt.Errorf("slack notifier %s: no webhook URL file or environment variable", c.Name)
	}
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &Notifier{c: c}, nil
}

// Notify posts e once; see rewind.Notifier. 200 is success. A 429 is
// retried, never before its Retry-After; 5xx and network errors are
// retried; Slack's documented errors (invalid_payload 400, action_prohibited
// 403, no_service 404, channel_is_archived 410, ...) are not.
func (n *Notifier) Notify(ctx context.Context, e rewind.Event) (bool, error) {
	url, err := secret.Read(n.c.WebhookURL)
	if err != nil {
		return true, fmt.Errorf("slack %s: webhook URL: %w", n.c.Name, err)
	}
	body, err := encode(Build(e))
	if err != nil {
		return false, fmt.Errorf("slack %s: encoding the message: %w", n.c.Name, err)
	}
	if err := n.wait(ctx); err != nil {
		return true, fmt.Errorf("slack %s: waiting for the rate limit: %w", n.c.Name, err)
	}
	what := "Slack webhook " + n.c.Name
	resp, err := httpx.Post(ctx, n.c.Client, url, what, body, nil, url)
	n.sent(0)
	if err != nil {
		return true, err
	}
	if resp.Status/100 == 2 {
		n.c.Log.Debug("slack message posted", "notifier", n.c.Name, "event", e.Key())
		return false, nil
	}
	retry, err := httpx.Classify(resp, what, n.c.Now(), url)
	if ra := (*rewind.RetryAfterError)(nil); errors.As(err, &ra) {
		n.sent(ra.After) // later messages wait for it too
	}
	return retry, err
}

// encode is json.Marshal without HTML escaping: mrkdwn has its own.
func encode(m Message) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// wait blocks until the webhook may be called again, or ctx is done. A
// wait past ctx's deadline (a Retry-After) is not waited for: the error
// tells the outbox when to come back.
func (n *Notifier) wait(ctx context.Context) error {
	n.mu.Lock()
	d := n.next.Sub(n.c.Now())
	n.mu.Unlock()
	if d <= 0 {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return &rewind.RetryAfterError{After: d, Err: errors.New("rate limited by an earlier answer")}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sent moves the next allowed time to at least Interval (or after) from now.
func (n *Notifier) sent(after time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	next := n.c.Now().Add(max(n.c.Interval, after))
	if next.After(n.next) {
		n.next = next
	}
}
