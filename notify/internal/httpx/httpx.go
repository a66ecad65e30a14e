// Package httpx is the HTTP half shared by the webhook-style notifiers:
// one POST, its answer read within bounds, the status classified for the
// outbox, Retry-After honoured, and no secret in any error.
package httpx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/internal/secret"
)

// DefaultTimeout bounds one request when the caller's context has no
// earlier deadline.
const DefaultTimeout = 30 * time.Second

// maxBody is how much of an answer is read.
const maxBody = 4 << 10

// DefaultClient is the client notifiers use when configured with none. It
// does not follow redirects: a webhook that moved is a configuration error,
// and a redirect would carry the body (and a signature) to another host.
var DefaultClient = &http.Client{
	Timeout:       DefaultTimeout,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Response is what the receiver answered.
type Response struct {
	Status int
	Header http.Header
	Body   []byte // at most 4 KiB
}

// Post sends body as JSON to target. what names the receiver in errors in
// place of the URL (which may be a secret). A transport error (refused,
// reset, timeout, TLS) is returned redacted; the caller retries it.
func Post(ctx context.Context, client *http.Client, target, what string, body []byte, header http.Header, secrets ...string) (*Response, error) {
	if client == nil {
		client = DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		// url.Parse errors quote the URL: never show them.
		return nil, fmt.Errorf("%s: invalid URL", what)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "rewind")
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error quotes the URL
		}
		return nil, secret.Error(fmt.Errorf("POST %s: %w", what, err), append(secrets, target)...)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// Retryable reports whether an HTTP status may succeed on a later attempt:
// 408, 425, 429 and every 5xx. Other 4xx answers are final.
func Retryable(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooEarly ||
		status == http.StatusTooManyRequests || status >= 500
}

// Classify turns an answer that is not a success into the Notifier result:
// retry or not, with the error naming the status and a clipped, redacted
// body. A 429 or 503 with Retry-After wraps a *rewind.RetryAfterError.
func Classify(r *Response, what string, now time.Time, secrets ...string) (retry bool, err error) {
	msg := strings.TrimSpace(string(r.Body))
	err = fmt.Errorf("%s answered %d %s", what, r.Status, http.StatusText(r.Status))
	if msg != "" {
		err = fmt.Errorf("%w: %s", err, Clip(secret.Redact(msg, secrets...), 200))
	}
	retry = Retryable(r.Status)
	if retry {
		if d, ok := RetryAfter(r.Header, now); ok {
			err = &rewind.RetryAfterError{After: d, Err: err}
		}
	}
	return retry, err
}

// RetryAfter parses a Retry-After header: delay seconds or an HTTP date.
func RetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(min(s, 24*3600)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// Clip shortens s to at most n runes, ending it with an ellipsis when cut.
func Clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// Label describes a configured URL in errors by its scheme and host only:
// user info, path and query may hold tokens.
func Label(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "the webhook"
	}
	return u.Scheme + "://" + u.Host
}
