// Package demo is `rewind demo`: a small production on loopback — a
// baseline and a canary service, a weighted router, load, the embedded
// Prometheus engine scraping both — in which a fault is injected into the
// canary, and Rewind itself (the decision engine, the rollback plan, the
// notifications and the post-mortem, with its API and /metrics) catches it
// and rolls it back. The demo adds no special path to any of them: it only
// wires its services in as the metrics source and the rollback's platform.
package demo

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/daemon"
	"github.com/rewind-sre/rewind/demo/router"
	"github.com/rewind-sre/rewind/demo/service"
	"github.com/rewind-sre/rewind/policy"
)

//go:embed policy.yaml
var policyText string

// PolicyText is the demo policy with {{sink}} still in it (examples/demo-policy.yaml).
func PolicyText() string { return policyText }

// Options configure a run.
type Options struct {
	Scenario string        // a service.Fault name; "none" injects nothing
	WarmUp   time.Duration // before the fault (default 25 s: the 20 s windows fill)
	Watch    time.Duration // how long to wait for the rollback after the fault (default 75 s); "none" runs as long
	Dir      string        // where the store, evidence and post-mortem go (default a new temp dir)
	Out      io.Writer
	Color    bool // Out is a terminal: color the states and events
	Log      *slog.Logger
}

// Result is what a run showed.
type Result struct {
	RolledBack  bool
	Verified    bool
	Rollback    *rewind.Rollback
	Detection   time.Duration // fault → decision
	PostMortem  string
	Evidence    string
	Notices     []string // event kinds the sink received
	CanaryAfter uint64   // requests routed to the canary after the drain
	Dir, API    string
}

// Run runs the demo and says whether it showed what it should: the canary
// rolled back and verified, or, for "none", nothing rolled back.
func Run(ctx context.Context, o Options) (*Result, error) {
	fault, err := service.ParseFault(o.Scenario)
	if err != nil {
		return nil, err
	}
	if o.WarmUp <= 0 {
		o.WarmUp = 25 * time.Second
	}
	if o.Watch <= 0 {
		o.Watch = 75 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Dir == "" {
		if o.Dir, err = os.MkdirTemp("", "rewind-demo-"); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := &printer{w: o.Out, start: time.Now(), color: o.Color}
	res := &Result{Dir: o.Dir}

	prod, err := startProduction(ctx)
	if err != nil {
		return nil, err
	}
	defer prod.stop()
	sink, err := startSink(ctx, p)
	if err != nil {
		return nil, err
	}
	text := strings.ReplaceAll(policyText, "{{sink}}", sink.url)
	pol, err := policy.Parse("demo-policy.yaml", []byte(text))
	if err != nil {
		return nil, fmt.Errorf("demo policy: %w", err)
	}
	p.printf("production: baseline %s (release %s), canary %s (release %s), router %s sending %d%% to the canary, %d req/s of load",
		prod.baseline.Addr(), prod.baseline.Release(), prod.canary.Addr(), prod.canary.Release(), prod.router.Addr(), canaryWeight, loadRate)
	p.printf("policy: the built-in policy scaled down for the demo (evaluations every 1s); see examples/demo-policy.yaml")

	r, err := startRewind(ctx, pol, prod, o, p, res)
	if err != nil {
		return nil, err
	}
	defer r.stop()
	res.API = r.api
	p.printf("rewind: API and /metrics at %s, evidence and journal under %s, notices to %s", r.api, o.Dir, sink.url)
	p.printf("warming up for %s (the windows fill), then injecting %q into the canary", o.WarmUp, fault)

	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(o.WarmUp):
	}
	faultAt := time.Now()
	if fault != service.FaultNone {
		if err := prod.canary.SetFault(fault); err != nil {
			return nil, err
		}
		p.printf("FAULT: %s injected into the canary", fault)
	} else {
		p.printf("no fault: the canary stays healthy; Rewind must leave it alone")
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-r.done:
	case <-time.After(o.Watch):
	}
	res.Notices = sink.kinds()
	rb := r.rollback()
	if rb != nil {
		res.RolledBack, res.Rollback, res.Evidence = true, rb, rb.Evidence
		res.Verified = rb.State == rewind.RollbackSucceeded
		if rb.Decision != nil {
			res.Detection = rb.Decision.At.Sub(faultAt)
		}
		res.PostMortem = r.postMortem
		res.CanaryAfter = prod.routedToCanaryAfterDrain()
		waitNotices(ctx, sink, rb)
		res.Notices = sink.kinds()
	}
	return res, nil
}

// Check says whether a run showed what its scenario should.
func (r *Result) Check(scenario string) error {
	if scenario == string(service.FaultNone) {
		if r.RolledBack {
			return fmt.Errorf("a healthy canary was rolled back (%s)", r.Rollback.Reason)
		}
		return nil
	}
	switch {
	case !r.RolledBack:
		return errors.New("the faulty canary was not rolled back in time")
	case !r.Verified:
		return fmt.Errorf("the rollback was not verified: %s", r.Rollback.Error)
	}
	return nil
}

func waitNotices(ctx context.Context, s *sink, rb *rewind.Rollback) {
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		k := strings.Join(s.kinds(), " ")
		if strings.Contains(k, string(rewind.EventRollbackCompleted)) || strings.Contains(k, string(rewind.EventRollbackFailed)) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-deadline:
			return
		case <-tick.C:
		}
	}
}

// rewindProc is Rewind itself, wired to the demo.
type rewindProc struct {
	api        string
	done       chan struct{}
	mu         sync.Mutex
	rb         *rewind.Rollback
	postMortem string
	stop       func()
}

func (r *rewindProc) rollback() *rewind.Rollback {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rb
}

func startRewind(ctx context.Context, pol *policy.Policy, prod *production, o Options, p *printer, res *Result) (*rewindProc, error) {
	st, err := daemon.OpenStore(ctx, filepath.Join(o.Dir, "rewind.db"))
	if err != nil {
		return nil, err
	}
	evidence := filepath.Join(o.Dir, "evidence")
	r := &rewindProc{done: make(chan struct{})}
	var once sync.Once
	show := rewind.PublisherFunc(func(_ context.Context, e rewind.Event) error {
		switch e.Kind {
		case rewind.EventEvaluated:
			p.cycle(e, prod)
		case rewind.EventAnalyzerBlind:
			p.printf("BLIND: the metrics cannot be read; Rewind will not roll back blind")
		case rewind.EventStep:
			p.step(prod, e.Rollback, *e.Step)
		case rewind.EventRollbackEnded:
			path := daemon.PostMortemPath(e.Rollback)
			if _, err := os.Stat(path); err != nil {
				path = ""
			}
			r.mu.Lock()
			r.rb, r.postMortem = e.Rollback, path
			r.mu.Unlock()
			p.outcome(e.Rollback, path)
			once.Do(func() { close(r.done) })
		}
		return nil
	})
	d, err := daemon.New(daemon.Options{
		Policy: pol, Store: st, EvidenceDir: evidence, Version: "demo", Log: o.Log, Poll: 500 * time.Millisecond,
		// The demo's production is the platform and the metrics source;
		// everything else is Rewind as `rewind serve` runs it.
		Platforms: []daemon.PlatformFunc{func(*policy.System, daemon.Env) (daemon.Platform, error) {
			return daemon.Platform{Executors: map[rewind.StepName]rewind.Executor{
				rewind.StepDrain:     router.Drain{Router: prod.router},
				rewind.StepUndo:      service.Undo{Canary: prod.canary, Baseline: prod.baseline},
				rewind.StepScaleDown: service.ScaleDown{Service: prod.canary},
				rewind.StepEvidence:  service.Evidence{Service: prod.canary, Dir: evidence},
			}}, nil
		}},
		Source:    func(policy.Prometheus) (rewind.Source, error) { return prod.db, nil },
		Events:    []rewind.Publisher{show},
		OpenReads: true,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	p.mu.Lock()
	p.systems = d.Controller().Systems
	p.mu.Unlock()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		st.Close()
		return nil, err
	}
	r.api = "http://" + ln.Addr().String()
	cctx, cancel := context.WithCancel(ctx)
	served := make(chan struct{})
	go func() { defer close(served); _ = d.Serve(cctx, ln, "") }()
	r.stop = func() {
		cancel()
		<-served
		st.Close()
	}
	return r, nil
}
