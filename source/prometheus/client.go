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
//   - Every answer is bounded: its decompressed body (MaxBodyBytes) and its
//     series (MaxSeries) are read as they arrive and refused past their
//     bound (KindTooLarge), so a hostile or broken server cannot grow
//     Rewind's memory.
//   - A Pool gives every system that reads one endpoint the same client:
//     one connection pool, at most MaxInFlight queries in flight, and one
//     backoff when the endpoint answers as overloaded or failing (429,
//     502, 503, 504, timeouts, refused connections): meanwhile queries fail
//     at once without being sent (KindBackoff). Rewind never retries
//     harder; a failed query is degraded, and the next cycle asks again.
package prometheus

import (
	"cmp"
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

// Bounds of one answer (Config fields override them).
const (
	// DefaultMaxBodyBytes bounds the decompressed body of an instant
	// query's answer: a grouped answer for 500 systems is about 1.5 MiB.
	DefaultMaxBodyBytes = 8 << 20
	// DefaultMaxRangeBodyBytes bounds a range query's answer (backtests,
	// evidence): at most 10 000 points per series per request.
	DefaultMaxRangeBodyBytes = 64 << 20
	// DefaultMaxSeries bounds the series of one answer: a grouped answer of
	// the built-in policy for 1000 member queries has 12 000 (a larger
	// one is split in two by the caller). Decoded, 20 000 series are about
	// 10 MiB; with 8 queries in flight a hostile endpoint cannot hold more.
	DefaultMaxSeries = 20000
	// maxPoints bounds the points of one range answer.
	maxPoints = 2000000
)

// defaultLimits are the bounds of the decoders' tests and fuzzers.
var defaultLimits = limits{maxSeries: DefaultMaxSeries, maxPoints: maxPoints}

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
	// MaxInFlight bounds the queries in flight to the endpoint, across
	// every Client of a Pool that shares it (DefaultMaxInFlight when zero).
	MaxInFlight int
	// MaxBodyBytes and MaxSeries bound one instant query's answer
	// (DefaultMaxBodyBytes, DefaultMaxSeries when zero); an answer over
	// them is a failed query of KindTooLarge.
	MaxBodyBytes int64
	MaxSeries    int
}

// Client queries one endpoint. It is safe for concurrent use. Clients of
// one Pool that name the same endpoint share its connections, its bound on
// queries in flight and its backoff.
type Client struct {
	queryURL, rangeURL string
	ep                 *endpoint
	timeout            time.Duration
	maxBody            int64
	lim                limits
	secrets            redactor
}

// New validates cfg and builds a client with an endpoint of its own. The
// credential and CA files must exist now; their contents are read by the
// transport (again on each request for credentials, so rotated secrets are
// picked up). Use a Pool to share an endpoint between clients.
func New(cfg Config) (*Client, error) {
	return newClient(cfg, nil)
}

func newClient(cfg Config, shared *endpoint) (*Client, error) {
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
	if cfg.MaxInFlight < 0 || cfg.MaxBodyBytes < 0 || cfg.MaxSeries < 0 {
		return nil, errors.New("prometheus bounds (maxInFlight, body, series) must not be negative")
	}
	ep := shared
	if ep == nil {
		if ep, err = newEndpoint(cfg, base); err != nil {
			return nil, err
		}
	}
	c := &Client{
		queryURL: base.JoinPath("api", "v1", "query").String(),
		rangeURL: base.JoinPath("api", "v1", "query_range").String(),
		ep:       ep,
		timeout:  timeout,
		maxBody:  cmp.Or(cfg.MaxBodyBytes, DefaultMaxBodyBytes),
		lim:      limits{maxSeries: cmp.Or(cfg.MaxSeries, DefaultMaxSeries), maxPoints: maxPoints},
		secrets:  redactor{cfg.BearerTokenFile, cfg.BasicAuthUsername, cfg.BasicAuthPasswordFile},
	}
	return c, nil
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
	var v rewind.Vector
	err := c.do(ctx, c.queryURL, query, form, c.maxBody, func(status int, body io.Reader) (err error) {
		v, err = readInstant(query, status, body, c.lim)
		return err
	})
	if err != nil {
		return nil, c.secrets.redact(err)
	}
	return v, nil
}

// do sends one API request as a form POST (falling back to GET when the
// server answers 405) within the endpoint's bound on queries in flight and
// hands the status and the body, cut at maxBody bytes, to read, before the
// request's deadline.
func (c *Client) do(ctx context.Context, endpoint, query string, form url.Values, maxBody int64, read func(int, io.Reader) error) error {
	release, err := c.ep.acquire(ctx, query)
	if err != nil {
		return err
	}
	defer release()
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	form.Set("timeout", model.Duration(c.timeout).String())
	form.Set("partial_response", "false")
	encoded := form.Encode()

	req, err := http.NewRequestWithContext(rctx, http.MethodPost, endpoint, strings.NewReader(encoded))
	if err != nil {
		return queryError(query, KindRequest, "building request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.send(req)
	if err == nil && resp.StatusCode == http.StatusMethodNotAllowed {
		drain(resp)
		req, err = http.NewRequestWithContext(rctx, http.MethodGet, endpoint+"?"+encoded, nil)
		if err != nil {
			return queryError(query, KindRequest, "building request: %v", err)
		}
		resp, err = c.send(req)
	}
	if err != nil {
		err = transportError(rctx, query, c.timeout, err)
		c.ep.done(err, nil)
		return err
	}
	defer drain(resp)
	body, closeBody, err := decompressed(resp, maxBody)
	if err != nil {
		err = queryError(query, KindDecode, "%v", err)
		c.ep.done(err, resp)
		return err
	}
	defer closeBody()
	err = read(resp.StatusCode, body)
	if err != nil && rctx.Err() != nil && !errors.Is(err, errBodyTooLarge) {
		// The deadline cut the body short: a timeout, not a malformed answer.
		err = transportError(rctx, query, c.timeout, err)
	}
	c.ep.done(err, resp)
	return err
}

// send performs req, asking for a gzip-compressed answer.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	req.Header.Set("Accept", "application/json")
	// The transport from prometheus/common disables transparent compression.
	req.Header.Set("Accept-Encoding", "gzip")
	return c.ep.http.Do(req)
}

// errBodyTooLarge: an answer longer than its bound.
var errBodyTooLarge = errors.New("answer over its size bound")

// decompressed returns the body of resp (gunzipped when it says so), cut
// at max bytes: reading beyond fails with errBodyTooLarge.
func decompressed(resp *http.Response, max int64) (io.Reader, func(), error) {
	var r io.Reader = resp.Body
	closeBody := func() {}
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return nil, nil, fmt.Errorf("reading gzip body: %w", err)
		}
		r, closeBody = zr, func() { zr.Close() }
	}
	return &tokenGuard{r: &boundedReader{r: r, left: max, max: max}}, closeBody, nil
}

// boundedReader fails with errBodyTooLarge after its bound, where
// io.LimitReader would end quietly.
type boundedReader struct {
	r         io.Reader
	left, max int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		n, err := b.r.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("%w: more than %d bytes", errBodyTooLarge, b.max)
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

// maxToken bounds one JSON token (a string, a number) of an answer: label
// names and values, sample values and timestamps are short, and the JSON
// decoder holds a whole token in memory before it can refuse it.
const maxToken = 256 << 10

// errTokenTooLarge: a JSON token longer than maxToken.
var errTokenTooLarge = fmt.Errorf("%w: a JSON string or number longer than %d bytes", errBodyTooLarge, maxToken)

// tokenGuard fails a body with a token longer than maxToken as it streams
// by: it follows strings (and their escapes) and counts the bytes of the
// token under way.
type tokenGuard struct {
	r       io.Reader
	inStr   bool
	escaped bool
	run     int // bytes of the current string or bare token
}

func (g *tokenGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	for _, c := range p[:n] {
		switch {
		case g.inStr:
			switch {
			case g.escaped:
				g.escaped = false
			case c == '\\':
				g.escaped = true
			case c == '"':
				g.inStr, g.run = false, 0
				continue
			}
			g.run++
		case c == '"':
			g.inStr, g.run = true, 0
		case c == '{' || c == '}' || c == '[' || c == ']' || c == ',' || c == ':' || c == ' ' || c == '\n' || c == '\t' || c == '\r':
			g.run = 0
		default:
			g.run++
		}
		if g.run > maxToken {
			return 0, errTokenTooLarge
		}
	}
	return n, err
}

// drain reads a little of what is left of a body, so that the connection
// can be reused, and closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
}

func transportError(ctx context.Context, query string, timeout time.Duration, err error) *Error {
	e := &Error{Query: query, Kind: KindUnreachable, Reason: err.Error(), Err: err}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		e.Kind = KindTimeout
		e.Reason = fmt.Sprintf("no answer within the deadline (timeout %s)", timeout)
		if timeout == 0 {
			e.Reason = "the caller's deadline passed"
		}
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
