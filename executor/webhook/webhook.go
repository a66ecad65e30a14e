// Package webhook is the generic executor that asks another system to run a
// rollback step: it POSTs the rollback as JSON, signed with HMAC-SHA256, and
// retries what can be retried until the step's timeout.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/internal/secret"
	"github.com/rewind-sre/rewind/policy"
)

// SignatureHeader carries "sha256=" + hex(HMAC-SHA256(secret, body)).
const SignatureHeader = secret.SignatureHeader

// Executor POSTs one step of a rollback to URL.
type Executor struct {
	Step    rewind.StepName
	Hook    policy.Webhook
	Client  *http.Client // default: a client without redirects
	Backoff time.Duration
}

var _ rewind.Executor = (*Executor)(nil)

// Request is the JSON body.
type Request struct {
	RollbackID string           `json:"rollbackId"`
	System     string           `json:"system"`
	Step       rewind.StepName  `json:"step"`
	Reason     string           `json:"reason"`
	Requester  string           `json:"requester"`
	Decision   *rewind.Decision `json:"decision,omitempty"`
}

// Response is what the receiver may answer: Skipped when there was nothing
// to do (a repeated call with the same Idempotency-Key must answer so).
type Response struct {
	Skipped bool   `json:"skipped"`
	Detail  string `json:"detail"`
}

func (e *Executor) Plan(_ context.Context, rb *rewind.Rollback) ([]rewind.Change, error) {
	return []rewind.Change{{Target: redact(e.Hook.URL), Action: "POST", Detail: fmt.Sprintf("step %s of rollback %s (Idempotency-Key %s), at most %s", e.Step, rb.ID, key(rb, e.Step), e.Hook.Timeout)}}, nil
}

func (e *Executor) Do(ctx context.Context, rb *rewind.Rollback) (rewind.StepResult, error) {
	if e.Hook.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.Hook.Timeout)
		defer cancel()
	}
	body, err := json.Marshal(Request{RollbackID: rb.ID, System: rb.System, Step: e.Step, Reason: rb.Reason, Requester: rb.Requester, Decision: rb.Decision})
	if err != nil {
		return rewind.StepResult{}, err
	}
	var signKey []byte
	if e.Hook.Secret != (policy.Secret{}) {
		k, err := secret.Read(e.Hook.Secret)
		if err != nil {
			return rewind.StepResult{}, fmt.Errorf("webhook: %w", err)
		}
		signKey = []byte(k)
	}
	backoff := e.Backoff
	if backoff <= 0 {
		backoff = 200 * time.Millisecond
	}
	for attempt := 1; ; attempt++ {
		res, retry, wait, err := e.post(ctx, rb, body, signKey)
		if err == nil || !retry {
			if res.Facts == nil {
				res.Facts = map[string]string{}
			}
			res.Facts["attempts"] = strconv.Itoa(attempt)
			return res, err
		}
		if wait <= 0 {
			wait = backoff << min(attempt-1, 6)
		}
		select {
		case <-ctx.Done():
			return rewind.StepResult{}, fmt.Errorf("webhook %s: %w after %d attempts; last: %v", redact(e.Hook.URL), ctx.Err(), attempt, err)
		case <-time.After(wait):
		}
	}
}

// post makes one attempt; retry says whether another may succeed.
func (e *Executor) post(ctx context.Context, rb *rewind.Rollback, body, signKey []byte) (rewind.StepResult, bool, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.Hook.URL, bytes.NewReader(body))
	if err != nil {
		return rewind.StepResult{}, false, 0, fmt.Errorf("webhook: bad URL %s", redact(e.Hook.URL))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key(rb, e.Step))
	req.Header.Set("User-Agent", "rewind")
	if len(signKey) > 0 {
		req.Header.Set(SignatureHeader, secret.Sign(signKey, body))
	}
	resp, err := e.client().Do(req)
	if err != nil {
		return rewind.StepResult{}, true, 0, fmt.Errorf("webhook %s: %s", redact(e.Hook.URL), strings.ReplaceAll(err.Error(), e.Hook.URL, redact(e.Hook.URL)))
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var r Response
	_ = json.Unmarshal(data, &r)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return rewind.StepResult{Skipped: r.Skipped, Detail: firstOf(r.Detail, fmt.Sprintf("%s answered %s", redact(e.Hook.URL), resp.Status))}, false, 0, nil
	case resp.StatusCode == http.StatusConflict:
		return rewind.StepResult{Skipped: true, Detail: firstOf(r.Detail, "already done (409)")}, false, 0, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return rewind.StepResult{}, true, time.Duration(wait) * time.Second, fmt.Errorf("webhook %s: %s", redact(e.Hook.URL), resp.Status)
	}
	return rewind.StepResult{}, false, 0, fmt.Errorf("webhook %s: %s: %s", redact(e.Hook.URL), resp.Status, firstOf(r.Detail, strings.TrimSpace(string(data))))
}

func (e *Executor) client() *http.Client {
	if e.Client != nil {
		return e.Client
	}
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func key(rb *rewind.Rollback, step rewind.StepName) string { return rb.ID + "/" + string(step) }

// redact keeps scheme, host and path: query strings often carry tokens.
func redact(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
