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
	"crypto/rand"
	_ "embed"
	"encoding/hex"
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
	// Listen is the address of Rewind's web UI and API (default
	// 127.0.0.1:0, a free loopback port).
	Listen string
	// Keep, when set, is called with the result once the scenario has
	// played out; Run then keeps the production and Rewind (its web UI
	// too) up until ctx ends, and returns the result.
	Keep func(*Result)
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
	UI          string // the web UI's address
	TokenFile   string // the API token a UI user logs in with (the demo makes one)
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
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, err
	}
	handed := false // to startRewind, which serves it or closes it
	defer func() {
		if !handed {
			ln.Close()
		}
	}()
	res.API = "http://" + ln.Addr().String()
	res.UI = res.API + "/"
	token, err := newToken(o.Dir)
	if err != nil {
		return nil, err
	}
	res.TokenFile = filepath.Join(o.Dir, tokenFile)
	p.printf("web UI: %s — watch it there; to pause or roll back from it, log in with the token in %s", res.UI, res.TokenFile)
	p.printf("scenario %s: a canary goes bad and Rewind rolls it back (no cluster, no external server)", fault)

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

	r, err := startRewind(ctx, pol, prod, o, p, ln, token)
	handed = true
	if err != nil {
		return nil, err
	}
	defer r.stop()
	p.printf("rewind: web UI, API and /metrics at %s, evidence and journal under %s, notices to %s", res.API, o.Dir, sink.url)
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
	if o.Keep != nil {
		o.Keep(res)
		<-ctx.Done()
	}
	return res, nil
}

// tokenFile is where the demo keeps the API token its UI users log in with.
const tokenFile = "api-token"

// newToken makes the run's API token and writes it, readable by its owner
// only, into dir: the demo prints where it is, never the token.
func newToken(dir string) ([]byte, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	token := []byte(hex.EncodeToString(b[:]))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, tokenFile), append(token, '\n'), 0o600); err != nil {
		return nil, err
	}
	return token, nil
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

// startRewind assembles Rewind as rewind serve does, on the demo's
// production, and serves its web UI and API on ln (closed on error).
func startRewind(ctx context.Context, pol *policy.Policy, prod *production, o Options, p *printer, ln net.Listener, token []byte) (*rewindProc, error) {
	st, err := daemon.OpenStore(ctx, filepath.Join(o.Dir, "rewind.db"))
	if err != nil {
		ln.Close()
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
		Source: func(policy.Prometheus) (rewind.Source, error) { return prod.db, nil },
		Events: []rewind.Publisher{show},
		// Pages open to all on loopback; acting needs the run's token.
		OpenReads: true, Token: token, UI: &daemon.UIOptions{},
	})
	if err != nil {
		ln.Close()
		st.Close()
		return nil, err
	}
	p.mu.Lock()
	p.systems = d.Controller().Systems
	p.mu.Unlock()
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
