package demo

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rewind-sre/rewind/demo/load"
	"github.com/rewind-sre/rewind/demo/router"
	"github.com/rewind-sre/rewind/demo/service"
	"github.com/rewind-sre/rewind/source/embedded"
)

const (
	canaryWeight   = 20
	loadRate       = 100
	scrapeInterval = time.Second
)

// production is the demo's small production: two services, the router in
// front of them, load, and the embedded Prometheus engine scraping both.
type production struct {
	baseline, canary *service.Service
	router           *router.Router
	load             *load.Generator
	db               *embedded.DB
	drainedAt        atomic.Uint64 // canary requests routed when the drain was done, +1
	wg               sync.WaitGroup
	cancel           func()
}

func startProduction(ctx context.Context) (*production, error) {
	ctx, cancel := context.WithCancel(ctx)
	p := &production{cancel: cancel}
	var err error
	fail := func(e error) (*production, error) { p.stop(); return nil, e }
	if p.baseline, err = service.Start(ctx, service.Config{Version: "baseline", Release: "1.4.2"}); err != nil {
		return fail(err)
	}
	if p.canary, err = service.Start(ctx, service.Config{Version: "canary", Release: "1.5.0"}); err != nil {
		return fail(err)
	}
	if p.router, err = router.Start(ctx, router.Config{Baseline: p.baseline.URL(), Canary: p.canary.URL(), CanaryWeight: canaryWeight}); err != nil {
		return fail(err)
	}
	if p.load, err = load.New(load.Config{URL: p.router.URL(), Rate: loadRate, Workers: 64}); err != nil {
		return fail(err)
	}
	if p.db, err = embedded.Open(embedded.Options{}); err != nil {
		return fail(err)
	}
	p.wg.Add(2)
	go func() { defer p.wg.Done(); _ = p.load.Run(ctx) }()
	go func() { defer p.wg.Done(); p.scrape(ctx) }()
	return p, nil
}

// scrape is Prometheus for the demo: both services every second.
func (p *production) scrape(ctx context.Context) {
	t := time.NewTicker(scrapeInterval)
	defer t.Stop()
	for {
		now := time.Now()
		for _, s := range []*service.Service{p.baseline, p.canary} {
			sctx, cancel := context.WithTimeout(ctx, scrapeInterval)
			_, _ = p.db.Scrape(sctx, s.URL()+"/metrics", map[string]string{"job": "dwcp"}, now) // a failed scrape is up=0 and stale series
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// markDrained remembers how many requests the canary had when drained.
func (p *production) markDrained() {
	_, c := p.router.Routed()
	p.drainedAt.CompareAndSwap(0, c+1)
}

func (p *production) routedToCanaryAfterDrain() uint64 {
	at := p.drainedAt.Load()
	if at == 0 {
		return 0
	}
	_, c := p.router.Routed()
	return c - (at - 1)
}

func (p *production) stop() {
	p.cancel()
	p.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range []*service.Service{p.baseline, p.canary} {
		if s != nil {
			_ = s.Stop(ctx)
		}
	}
	if p.router != nil {
		_ = p.router.Stop(ctx)
	}
	if p.db != nil {
		_ = p.db.Close()
	}
}
