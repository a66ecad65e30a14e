// Package pullrequest is the role of a code host that takes a proposed
// revert: open a pull (merge) request from the revert branch, or find the
// one already opened. gitops/github and gitops/gitlab implement it on their
// REST APIs; Webhook posts the proposal to any other system.
package pullrequest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/rewind-sre/rewind/internal/secret"
)

// PullRequest is the request to open.
type PullRequest struct {
	Head  string // the revert branch
	Base  string // the branch it goes into
	Title string
	Body  string
}

// Opened is an opened (or found) pull request.
type Opened struct {
	Number int    `json:"number"`
	URL    string `json:"url"` // the page people open
	// Existed: it was there already (a re-run); nothing was created.
	Existed bool `json:"existed"`
}

// Opener opens a pull request idempotently: when one from Head exists it
// returns it with Existed set.
type Opener interface {
	Open(ctx context.Context, pr PullRequest) (Opened, error)
}

// MaxResponse bounds what is read of a code host's answer.
const MaxResponse = 1 << 20

// DefaultTimeout bounds one request.
const DefaultTimeout = 30 * time.Second

// Do sends a JSON request and decodes a JSON answer into out (when the
// status is 2xx and out is not nil). It returns the status and the body
// (bounded), with secrets redacted from errors.
func Do(ctx context.Context, client *http.Client, method, url string, header http.Header, in, out any, secrets ...string) (int, []byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return 0, nil, secret.Error(err, secrets...)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if client == nil {
		client = &http.Client{Timeout: DefaultTimeout}
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, secret.Error(err, secrets...)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, data, fmt.Errorf("%s %s: answer is not the expected JSON: %w", method, secret.Redact(url, secrets...), err)
		}
	}
	return resp.StatusCode, data, nil
}

// Clip shortens a remote's answer for an error message.
func Clip(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// Webhook posts the proposal as JSON, signed like Rewind's other webhooks
// (X-Rewind-Signature, HMAC-SHA256 of the body) when a key is set; any 2xx
// is success. It cannot know of an earlier request, so a re-run posts again
// (receivers dedupe on head, the branch named after the rollback).
type Webhook struct {
	URL    string
	Key    []byte // "": unsigned
	Client *http.Client
}

// Open posts pr.
func (w *Webhook) Open(ctx context.Context, pr PullRequest) (Opened, error) {
	b, err := json.Marshal(map[string]string{"head": pr.Head, "base": pr.Base, "title": pr.Title, "body": pr.Body})
	if err != nil {
		return Opened{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(b))
	if err != nil {
		return Opened{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", pr.Head)
	if len(w.Key) > 0 {
		req.Header.Set(secret.SignatureHeader, secret.Sign(w.Key, b))
	}
	client := w.Client
	if client == nil {
		client = &http.Client{Timeout: DefaultTimeout}
	}
	resp, err := client.Do(req)
	if err != nil {
		return Opened{}, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, MaxResponse))
	if resp.StatusCode/100 != 2 {
		return Opened{}, fmt.Errorf("revert webhook answered %d: %s", resp.StatusCode, Clip(data))
	}
	return Opened{URL: w.URL}, nil
}
