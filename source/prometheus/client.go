// Package prometheus is a metrics source that queries a Prometheus HTTP API:
// Prometheus itself, Thanos, Mimir (with its /prometheus prefix in the URL)
// or VictoriaMetrics.
//
// Contracts (docs/decisions.md):
//   - A query that did not produce a complete answer is an error wrapping
//     rewind.ErrQuery (an *Error): non-2xx status, "status": "error"
//     (bad_data, execution, timeout, ...), any warning or a partial response,
//     a timeout, a refused connection, a body that is not the documented
//     JSON, or a result type the caller cannot use. The caller reports the
//     trigger degraded; an error is never turned into a value.
//   - An empty Vector or Matrix means no data. Every series is returned.
//     NaN and ±Inf are passed through as values.
//   - Every request carries partial_response=false (Thanos answers with an
//     error instead of partial data) and the configured timeout, both as the
//     request's deadline and as the server's "timeout" parameter.
//   - Credentials are read from files by the HTTP transport on each request;
//     they never appear in errors or logs.
package prometheus

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/rewind-sre/rewind"
)

var (
	_ rewind.Source      = (*Client)(nil)
	_ rewind.RangeSource = (*Client)(nil)
)

// DefaultTimeout applies when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// maxBodyBytes bounds a decompressed response body.
const maxBodyBytes = 512 << 20

// Config describes one Prometheus-compatible endpoint. Secrets are given as
// file paths only.
type Config struct {
	// URL is the base URL, e.g. http://prometheus:9090 or
	// http://mimir/prometheus; /api/v1/... is appended. It must not carry
	// credentials, a query or a fragment.
	URL string
	// Timeout bounds each HTTP request (DefaultTimeout when zero).
	Timeout time.Duration
	// BearerTokenFile holds a token sent as "Authorization: Bearer".
	BearerTokenFile string
	// BasicAuthUsername and BasicAuthPasswordFile configure basic auth.
	BasicAuthUsername, BasicAuthPasswordFile string
	// CAFile is a PEM bundle that verifies the server's certificate.
	CAFile string
	// InsecureSkipVerify disables certificate verification.
	InsecureSkipVerify bool
}

// Client queries one endpoint. It is safe for concurrent use.
type Client struct {
	queryURL, rangeURL string
	http               *http.Client
	timeout            time.Duration
	secrets            redactor
}

// New validates cfg and builds the client. The credential and CA files must
// exist now; their contents are read by the transport (again on each
// request for credentials, so rotated secrets are picked up).
func New(cfg Config) (*Client, error) {
	base, err := parseBaseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	switch {
	case timeout == 0:
		timeout = DefaultTimeout
	case timeout < time.Millisecond:
		return nil, fmt.Errorf("prometheus timeout %s: must be at least 1ms", cfg.Timeout)
	}
	hc, err := httpClientConfig(cfg)
	if err != nil {
		return nil, err
	}
	client, err := config.NewClientFromConfig(hc, "rewind_prometheus", config.WithUserAgent("rewind"))
	if err != nil {
		return nil, fmt.Errorf("prometheus client for %s: %w", base.Redacted(), err)
	}
	return &Client{
		queryURL: base.JoinPath("api", "v1", "query").String(),
		rangeURL: base.JoinPath("api", "v1", "query_range").String(),
		http:     client,
		timeout:  timeout,
		secrets:  redactor{cfg.BearerTokenFile, cfg.BasicAuthUsername, cfg.BasicAuthPasswordFile},
	}, nil
}

func parseBaseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("prometheus URL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error would echo the URL, which may hold a password.
		return nil, errors.New("prometheus URL is not a valid URL")
	}
	switch {
	case u.User != nil:
		return nil, errors.New("prometheus URL must not contain credentials; use basicAuth or bearerTokenFile")
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("prometheus URL %s: scheme must be http or https", u.Redacted())
	case u.Host == "":
		return nil, fmt.Errorf("prometheus URL %s: no host", u.Redacted())
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("prometheus URL %s: must not have a query or fragment", u.Redacted())
	}
	return u, nil
}

func httpClientConfig(cfg Config) (config.HTTPClientConfig, error) {
	// Redirects are not followed: a 3xx usually means a login page or a
	// wrong URL, and is reported as an HTTP error.
	hc := config.HTTPClientConfig{EnableHTTP2: true}
	if cfg.BearerTokenFile != "" && (cfg.BasicAuthUsername != "" || cfg.BasicAuthPasswordFile != "") {
		return hc, errors.New("prometheus auth: configure either a bearer token file or basic auth, not both")
	}
	if cfg.BasicAuthPasswordFile != "" && cfg.BasicAuthUsername == "" {
		return hc, errors.New("prometheus auth: a basic auth password file needs a username")
	}
	for _, f := range []struct{ what, path string }{
		{"bearer token file", cfg.BearerTokenFile},
		{"basic auth password file", cfg.BasicAuthPasswordFile},
		{"CA file", cfg.CAFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return hc, fmt.Errorf("prometheus %s: %w", f.what, err)
		}
	}
	if cfg.BearerTokenFile != "" {
		hc.Authorization = &config.Authorization{Type: "Bearer", CredentialsFile: cfg.BearerTokenFile}
	}
	if cfg.BasicAuthUsername != "" {
		hc.BasicAuth = &config.BasicAuth{Username: cfg.BasicAuthUsername, PasswordFile: cfg.BasicAuthPasswordFile}
	}
	hc.TLSConfig = config.TLSConfig{CAFile: cfg.CAFile, InsecureSkipVerify: cfg.InsecureSkipVerify}
	if err := hc.Validate(); err != nil {
		return hc, fmt.Errorf("prometheus client config: %w", err)
	}
	return hc, nil
}

// Query evaluates query at the instant at (the server's "now" when at is
// the zero time). The result is a vector with every series, or a scalar as
// one sample without labels.
func (c *Client) Query(ctx context.Context, query string, at time.Time) (rewind.Vector, error) {
	form := url.Values{"query": {query}}
	if !at.IsZero() {
		form.Set("time", formatTime(at))
	}
	status, body, err := c.do(ctx, c.queryURL, query, form)
	if err != nil {
		return nil, err
	}
	v, err := decodeInstant(query, status, body)
	if err != nil {
		return nil, c.secrets.redact(err)
	}
	return v, nil
}

// do sends one API request as a form POST (falling back to GET when the
// server answers 405) and returns the status and the whole body. Only
// transport failures are returned as errors; the status is judged by the
// decoder.
func (c *Client) do(ctx context.Context, endpoint, query string, form url.Values) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	form.Set("timeout", model.Duration(c.timeout).String())
	form.Set("partial_response", "false")
	encoded := form.Encode()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(encoded))
	if err != nil {
		return 0, nil, queryError(query, KindRequest, "building request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	status, body, err := c.send(req)
	if err == nil && status == http.StatusMethodNotAllowed {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"?"+encoded, nil)
		if err != nil {
			return 0, nil, queryError(query, KindRequest, "building request: %v", err)
		}
		status, body, err = c.send(req)
	}
	if err != nil {
		return 0, nil, transportError(ctx, query, c.timeout, err)
	}
	return status, body, nil
}

// send performs req and reads the (possibly gzip-compressed) body.
func (c *Client) send(req *http.Request) (int, []byte, error) {
	req.Header.Set("Accept", "application/json")
	// The transport from prometheus/common disables transparent compression.
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var r io.Reader = resp.Body
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return 0, nil, fmt.Errorf("reading gzip body: %w", err)
		}
		defer zr.Close()
		r = zr
	}
	body, err := io.ReadAll(io.LimitReader(r, maxBodyBytes+1))
	if err != nil {
		return 0, nil, fmt.Errorf("reading body: %w", err)
	}
	if len(body) > maxBodyBytes {
		return 0, nil, fmt.Errorf("response body larger than %d bytes", maxBodyBytes)
	}
	return resp.StatusCode, body, nil
}

func transportError(ctx context.Context, query string, timeout time.Duration, err error) *Error {
	e := &Error{Query: query, Kind: KindUnreachable, Reason: err.Error(), Err: err}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		e.Kind = KindTimeout
		e.Reason = fmt.Sprintf("no answer within the deadline (timeout %s)", timeout)
		e.Err = errors.Join(context.DeadlineExceeded, err)
	case errors.Is(ctx.Err(), context.Canceled):
		e.Kind = KindCanceled
		e.Reason = "canceled"
		e.Err = errors.Join(context.Canceled, err)
	}
	return e
}

// formatTime renders t as unix seconds with millisecond precision, the form
// every Prometheus-compatible API accepts.
func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64)
}
