package prometheus

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/config"
)

// DefaultMaxInFlight bounds the queries in flight to one endpoint when
// Config.MaxInFlight is zero.
const DefaultMaxInFlight = 8

// Backoff after an answer that says the endpoint is overloaded or failing:
// 1 s after the first, doubling with each one in a row, at most
// maxBackoff, and never shorter than the Retry-After it asked for (up to
// maxBackoff). Meanwhile queries fail at once without being sent
// (KindBackoff): the triggers are degraded, never given a value.
const (
	baseBackoff = time.Second
	maxBackoff  = 30 * time.Second
)

// endpoint is one Prometheus server as Rewind reaches it (URL, credentials,
// TLS): one HTTP client and connection pool, one bound on queries in
// flight, one backoff. Every Client of a Pool that names it shares it.
type endpoint struct {
	name  string // the redacted base URL, for metrics and errors
	http  *http.Client
	slots chan struct{}
	now   func() time.Time

	mu    sync.Mutex
	fails int       // overload answers in a row
	until time.Time // no query is sent before

	sent, failed, refused, tooLarge atomic.Int64
}

func newEndpoint(cfg Config, base *url.URL) (*endpoint, error) {
	hc, err := httpClientConfig(cfg)
	if err != nil {
		return nil, err
	}
	n := cfg.MaxInFlight
	if n == 0 {
		n = DefaultMaxInFlight
	}
	// At most n requests are in flight, so the transport never holds more
	// than n connections to the endpoint; idle ones close after a minute.
	client, err := config.NewClientFromConfig(hc, "rewind_prometheus", config.WithUserAgent("rewind"), config.WithIdleConnTimeout(time.Minute))
	if err != nil {
		return nil, fmt.Errorf("prometheus client for %s: %w", base.Redacted(), err)
	}
	return &endpoint{name: base.Redacted(), http: client, slots: make(chan struct{}, n), now: time.Now}, nil
}

// acquire waits for a slot among the endpoint's queries in flight, or
// refuses at once while the endpoint is backed off.
func (e *endpoint) acquire(ctx context.Context, query string) (func(), error) {
	if wait := e.backoff(); wait > 0 {
		e.refused.Add(1)
		return nil, queryError(query, KindBackoff, "not sent: %s answered as overloaded or failing; Rewind backs off for %s", e.name, wait.Round(time.Millisecond))
	}
	if ctx.Err() != nil {
		return nil, transportError(ctx, query, 0, ctx.Err())
	}
	select {
	case e.slots <- struct{}{}:
	case <-ctx.Done():
		e.refused.Add(1)
		kind := KindTimeout
		if errors.Is(ctx.Err(), context.Canceled) {
			kind = KindCanceled
		}
		return nil, &Error{Query: query, Kind: kind, Err: ctx.Err(),
			Reason: fmt.Sprintf("not sent: no free slot among the %d queries in flight to %s: %v", cap(e.slots), e.name, ctx.Err())}
	}
	e.sent.Add(1)
	return func() { <-e.slots }, nil
}

// backoff is how long no query may be sent.
func (e *endpoint) backoff() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.until.Sub(e.now())
}

// done records the outcome of a sent query: an answer that says the
// endpoint is overloaded or failing backs it off, any other answer resets
// the backoff.
func (e *endpoint) done(err error, resp *http.Response) {
	var qe *Error
	if err != nil {
		e.failed.Add(1)
		if errors.As(err, &qe) && qe.Kind == KindTooLarge {
			e.tooLarge.Add(1)
		}
	}
	if !overloaded(err) {
		if err == nil || qe != nil && qe.Kind != KindCanceled {
			e.mu.Lock()
			e.fails = 0
			e.mu.Unlock()
		}
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fails++
	d := baseBackoff << min(e.fails-1, 16)
	d = max(d, retryAfter(resp))
	until := e.now().Add(min(d, maxBackoff))
	if until.After(e.until) {
		e.until = until
	}
}

// overloaded reports whether a failed query says the endpoint is
// overloaded or failing, rather than that the query is wrong: no answer
// in time, no connection, 429, 502, 503, 504, or a query timeout.
func overloaded(err error) bool {
	var qe *Error
	if !errors.As(err, &qe) {
		return false
	}
	switch qe.Kind {
	case KindTimeout, KindUnreachable:
		return true
	case KindHTTP, KindAPI:
		switch qe.Status {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return qe.ErrorType == "timeout"
	}
	return false
}

// retryAfter is the Retry-After of an answer (seconds or an HTTP date), 0
// when there is none.
func retryAfter(resp *http.Response) time.Duration {
	if resp == nil {
		return 0
	}
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(min(s, int(maxBackoff/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(t))
	}
	return 0
}

// Pool shares endpoints between clients: every Client it returns for the
// same URL, credentials, TLS settings and MaxInFlight uses one connection
// pool, one bound on queries in flight and one backoff, whatever the
// number of systems that read it. It is safe for concurrent use.
type Pool struct {
	mu        sync.Mutex
	endpoints map[endpointKey]*endpoint
	clients   map[Config]*Client
}

type endpointKey struct {
	url, bearer, user, password, ca string
	insecure                        bool
	inFlight                        int
}

// NewPool returns an empty pool.
func NewPool() *Pool {
	return &Pool{endpoints: map[endpointKey]*endpoint{}, clients: map[Config]*Client{}}
}

// Client returns the client of cfg: the same *Client for the same Config,
// and a Client on a shared endpoint for configs that differ only in their
// timeout or answer bounds.
func (p *Pool) Client(cfg Config) (*Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[cfg]; ok {
		return c, nil
	}
	base, err := parseBaseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	key := endpointKey{base.String(), cfg.BearerTokenFile, cfg.BasicAuthUsername, cfg.BasicAuthPasswordFile, cfg.CAFile, cfg.InsecureSkipVerify, cfg.MaxInFlight}
	ep := p.endpoints[key]
	if ep == nil {
		if ep, err = newEndpoint(cfg, base); err != nil {
			return nil, err
		}
	}
	c, err := newClient(cfg, ep)
	if err != nil {
		return nil, err
	}
	p.endpoints[key], p.clients[cfg] = ep, c
	return c, nil
}
