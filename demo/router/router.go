// Package router is the demo's traffic split in front of the baseline and
// the canary: an HTTP reverse proxy on a loopback port that sends each
// request to the canary with probability canary weight / 100 and to the
// baseline otherwise, as an Istio VirtualService's weighted route does.
// Drain is the rollback plan's drain step on it.
package router

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Config says where the router sends traffic.
type Config struct {
	Baseline string // base URL of the baseline, e.g. http://127.0.0.1:41234
	Canary   string // base URL of the canary
	// CanaryWeight is the canary's share of requests in percent (0–100);
	// the baseline gets the rest.
	CanaryWeight int
}

// Router is a running weighted router. Its methods are safe for concurrent use.
type Router struct {
	addr      string
	srv       *http.Server
	transport *http.Transport
	baseline  *backend
	canary    *backend
	weight    atomic.Int32 // the canary's; the baseline's is 100 - weight

	stopMu  sync.Mutex
	stopped bool
	running atomic.Bool
	unwatch func() bool
}

// backend is one destination of the route.
type backend struct {
	name   string
	proxy  *httputil.ReverseProxy
	routed atomic.Uint64
}

// Start listens on a loopback port and routes until Stop is called or ctx ends.
func Start(ctx context.Context, cfg Config) (*Router, error) {
	if err := checkWeights(100-cfg.CanaryWeight, cfg.CanaryWeight); err != nil {
		return nil, err
	}
	r := &Router{transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     30 * time.Second,
	}}
	var err error
	if r.baseline, err = r.newBackend("baseline", cfg.Baseline); err != nil {
		return nil, err
	}
	if r.canary, err = r.newBackend("canary", cfg.Canary); err != nil {
		return nil, err
	}
	r.weight.Store(int32(cfg.CanaryWeight))
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	r.addr = ln.Addr().String()
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	r.running.Store(true)
	go r.srv.Serve(ln) //nolint:errcheck // returns ErrServerClosed on Stop
	r.unwatch = context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.Stop(sctx) // nobody to report to: the owner's context ended
	})
	return r, nil
}

func (r *Router) newBackend(name, raw string) (*backend, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("router: %s URL %q is not an http(s) URL", name, raw)
	}
	b := &backend{name: name}
	b.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
		},
		Transport: r.transport,
		// As Envoy does, a destination that cannot be reached is the
		// router's 502, not a hang.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, fmt.Sprintf("router: %s unavailable: %v", name, err), http.StatusBadGateway)
		},
	}
	return b, nil
}

// ServeHTTP routes one request: to the canary with probability canary
// weight / 100, else to the baseline.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b := r.baseline
	if cw := int(r.weight.Load()); cw > 0 && rand.IntN(100) < cw {
		b = r.canary
	}
	b.routed.Add(1)
	b.proxy.ServeHTTP(w, req)
}

// Addr is the host:port the router listens on: the demo's traffic target.
func (r *Router) Addr() string { return r.addr }

// URL is the router's base URL, http://host:port.
func (r *Router) URL() string { return "http://" + r.addr }

// Weights returns the route's weights in percent; they sum to 100.
func (r *Router) Weights() (baseline, canary int) {
	c := int(r.weight.Load())
	return 100 - c, c
}

// SetWeights sets the route's weights in percent: each within 0–100, and
// they must sum to 100, as a VirtualService's weights must. Requests
// already routed finish where they went.
func (r *Router) SetWeights(baseline, canary int) error {
	if err := checkWeights(baseline, canary); err != nil {
		return err
	}
	r.weight.Store(int32(canary))
	return nil
}

// drain sets the canary's weight to 0 and returns what it was.
func (r *Router) drain() int { return int(r.weight.Swap(0)) }

func checkWeights(baseline, canary int) error {
	if baseline < 0 || canary < 0 || baseline+canary != 100 {
		return fmt.Errorf("router: weights baseline %d, canary %d: each must be 0–100 and they must sum to 100", baseline, canary)
	}
	return nil
}

// Routed returns how many requests the router has sent to each destination.
func (r *Router) Routed() (baseline, canary uint64) {
	return r.baseline.routed.Load(), r.canary.routed.Load()
}

// Running reports whether the router serves.
func (r *Router) Running() bool { return r.running.Load() }

// Stop stops accepting requests and lets those in flight finish until ctx
// ends, then cuts them. It is idempotent; after the first call it returns
// nil at once. The error says requests were cut short.
func (r *Router) Stop(ctx context.Context) error {
	r.stopMu.Lock()
	defer r.stopMu.Unlock()
	if r.stopped {
		return nil
	}
	r.stopped = true
	r.running.Store(false)
	r.unwatch()
	err := r.srv.Shutdown(ctx)
	if err != nil {
		err = fmt.Errorf("stopping the router: requests in flight cut short: %w", errors.Join(err, r.srv.Close()))
	}
	r.transport.CloseIdleConnections()
	return err
}
