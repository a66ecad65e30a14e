// Package load is the demo's load generator: GET requests at a steady rate
// against one URL (the router), from a bounded pool of workers, until its
// context ends.
//
// It is open-loop, as real users are: requests are due at the configured
// rate whatever the answers' latency. A request due while every worker is
// busy and the short queue is full is dropped and counted, never queued
// without bound, so a slow target costs neither memory nor goroutines.
package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Generator. Zero fields take the defaults.
type Config struct {
	URL     string        // the target, e.g. the router's http://127.0.0.1:port/
	Rate    float64       // requests per second; required
	Workers int           // most requests in flight at once (default 32)
	Timeout time.Duration // bound on one request (default 5 s)
}

// Stats counts what a Generator did, over all its runs.
type Stats struct {
	// Due is how many requests the schedule called for: Sent + Dropped +
	// those still queued when a run ended (not sent).
	Due     uint64
	Sent    uint64 // requests started
	OK      uint64 // answered 2xx
	Errors  uint64 // answered otherwise, or failed (refused, timed out)
	Aborted uint64 // cut short because the run ended
	Dropped uint64 // due while every worker was busy and the queue full: not sent
}

// Generator sends requests at Config.Rate. Its methods are safe for
// concurrent use; one Run at a time.
type Generator struct {
	cfg     Config
	client  *http.Client
	running atomic.Bool

	due, sent, ok, errs, aborted, dropped atomic.Uint64
}

// tick is how often the scheduler hands out the requests due; requests
// due within one tick go out together.
const tick = 5 * time.Millisecond

// New checks cfg and returns a Generator for it.
func New(cfg Config) (*Generator, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("load: %q is not an http(s) URL", cfg.URL)
	}
	if cfg.Rate <= 0 {
		return nil, fmt.Errorf("load: rate %g: want more than 0 requests per second", cfg.Rate)
	}
	if cfg.Workers == 0 {
		cfg.Workers = 32
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Workers < 0 || cfg.Timeout < 0 {
		return nil, errors.New("load: negative workers or timeout")
	}
	tr := &http.Transport{MaxIdleConns: cfg.Workers, MaxIdleConnsPerHost: cfg.Workers, IdleConnTimeout: 30 * time.Second}
	return &Generator{cfg: cfg, client: &http.Client{Transport: tr}}, nil
}

// Stats returns the counts so far.
func (g *Generator) Stats() Stats {
	return Stats{Due: g.due.Load(), Sent: g.sent.Load(), OK: g.ok.Load(), Errors: g.errs.Load(), Aborted: g.aborted.Load(), Dropped: g.dropped.Load()}
}

// Run sends requests until ctx ends, then cancels the requests in flight,
// waits for its workers and returns nil. It returns an error at once when
// another Run of g is in progress.
func (g *Generator) Run(ctx context.Context) error {
	if !g.running.CompareAndSwap(false, true) {
		return errors.New("load: already running")
	}
	defer g.running.Store(false)
	defer g.client.CloseIdleConnections()

	jobs := make(chan struct{}, g.cfg.Workers)
	var wg sync.WaitGroup
	for range g.cfg.Workers {
		wg.Go(func() {
			for range jobs {
				if ctx.Err() == nil { // requests still queued when the run ends are not sent
					g.send(ctx)
				}
			}
		})
	}
	g.schedule(ctx, jobs)
	close(jobs)
	wg.Wait()
	return nil
}

// schedule hands out the requests due at the rate, counting from the
// start, until ctx ends: the first at once, then one every 1/Rate on
// average, however late a tick comes.
func (g *Generator) schedule(ctx context.Context, jobs chan<- struct{}) {
	start := time.Now()
	t := time.NewTicker(tick)
	defer t.Stop()
	var issued uint64
	now := start
	for {
		due := uint64(now.Sub(start).Seconds()*g.cfg.Rate) + 1
		for ; issued < due; issued++ {
			g.due.Add(1)
			select {
			case jobs <- struct{}{}:
			default:
				g.dropped.Add(1)
			}
		}
		select {
		case <-ctx.Done():
			return
		case now = <-t.C:
		}
	}
}

// send makes one request and counts its outcome.
func (g *Generator) send(ctx context.Context) {
	g.sent.Add(1)
	rctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, g.cfg.URL, nil)
	if err != nil { // cannot happen: New checked the URL
		g.errs.Add(1)
		return
	}
	resp, err := g.client.Do(req)
	if err == nil {
		// Read the body so that the connection is reused.
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
	}
	switch {
	case err != nil && ctx.Err() != nil:
		g.aborted.Add(1)
	case err != nil:
		g.errs.Add(1)
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		g.ok.Add(1)
	default:
		g.errs.Add(1)
	}
}
