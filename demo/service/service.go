// Package service is one version of the demo's production service: a real
// HTTP server on a loopback port that answers requests with simulated work
// and exports the seed's metrics for the embedded Prometheus to scrape,
// with a fault switch that makes it misbehave as the demo's scenarios say.
//
// A Service models one process of one version ("baseline" or "canary",
// the role that every metric carries as version=<role>) running one
// release. Restart models undo = "restart the canary at the baseline's
// release": the process starts over, so its counters start again from 0 as
// a restarted process's would (Prometheus's rate and increase handle
// counter resets) and the injected fault is gone. The previous process's
// last metrics are kept (Previous), as `kubectl logs --previous` keeps a
// restarted container's log, and the request log outlives restarts, as a
// log store does: evidence taken after the undo still shows the bad
// process. Stop models scaling to zero: the process exits, its /metrics
// goes away and nothing answers on its port.
package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Service. Zero fields take the defaults.
type Config struct {
	// Version is the role, "baseline" or "canary": the value of the
	// version label on every metric. Required.
	Version string
	// Release is the software release the process runs (default "1.0.0").
	Release string
	// Median is the median latency of a request (default 20 ms). Latencies
	// are lognormal around it with shape Sigma (the standard deviation of
	// their logarithm, default 0.3), capped at 10× the median.
	Median time.Duration
	Sigma  float64
	// ErrorRate is the share of requests answered 500 when healthy (0–1).
	ErrorRate float64
	// TxPerSecond is the healthy growth of the transactions counter (default 100).
	TxPerSecond float64
	// MemoryLimit is the memory limit in bytes (default 512 MiB); the
	// healthy working set is MemoryShare of it (default 0.45), ±1 %.
	MemoryLimit float64
	MemoryShare float64
	// Tick is how often the background activity (transactions, memory,
	// fault events) advances (default 250 ms).
	Tick time.Duration
	// LogSize is how many recent requests the request log keeps (default 1000).
	LogSize int
	// Seed seeds the latency and error draws; 0 seeds at random.
	Seed uint64
}

func (c Config) complete() (Config, error) {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Version == "" {
		return c, errors.New("service: no version (baseline or canary)")
	}
	if c.Release == "" {
		c.Release = "1.0.0"
	}
	if c.Median == 0 {
		c.Median = 20 * time.Millisecond
	}
	if c.Tick == 0 {
		c.Tick = 250 * time.Millisecond
	}
	if c.LogSize == 0 {
		c.LogSize = 1000
	}
	def(&c.Sigma, 0.3)
	def(&c.TxPerSecond, 100)
	def(&c.MemoryLimit, 512<<20)
	def(&c.MemoryShare, 0.45)
	switch {
	case c.Median < 0 || c.Sigma < 0 || c.TxPerSecond < 0 || c.MemoryLimit < 0 || c.Tick < 0 || c.LogSize < 0:
		return c, errors.New("service: negative setting")
	case c.ErrorRate < 0 || c.ErrorRate > 1:
		return c, fmt.Errorf("service: error rate %g not within 0–1", c.ErrorRate)
	case c.MemoryShare > 1:
		return c, fmt.Errorf("service: memory share %g above 1", c.MemoryShare)
	}
	return c, nil
}

// Service is one running version. Its methods are safe for concurrent use.
type Service struct {
	cfg  Config
	addr string
	srv  *http.Server
	log  *ring

	mu             sync.Mutex              // serializes changes of cur and prev, and the background activity
	cur            atomic.Pointer[process] // read without mu by request handlers
	prev           *Snapshot
	tx, dag, trips carry // the background's fractional events, per process

	rndMu sync.Mutex
	rnd   *rand.Rand

	stopMu   sync.Mutex
	stopped  bool
	running  atomic.Bool
	stopLoop context.CancelFunc
	loopDone chan struct{}
	unwatch  func() bool
}

// process is the state of the running process. It is replaced, never
// changed: SetFault and Restart store a new one.
type process struct {
	release string
	fault   Fault
	beh     behaviour
	started time.Time
	m       *metrics
}

// Snapshot is what a process left behind when it was restarted.
type Snapshot struct {
	Release string
	Fault   Fault
	Started time.Time
	Ended   time.Time
	Metrics []byte // its last metrics, in the Prometheus text format
}

// Start listens on a loopback port and serves the version until Stop is
// called or ctx ends. GET /metrics exports the metrics; every other GET is
// a request answered with simulated work.
func Start(ctx context.Context, cfg Config) (*Service, error) {
	cfg, err := cfg.complete()
	if err != nil {
		return nil, err
	}
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", cfg.Version, err)
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	s := &Service{
		cfg:      cfg,
		addr:     ln.Addr().String(),
		log:      newRing(cfg.LogSize),
		rnd:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		loopDone: make(chan struct{}),
	}
	s.cur.Store(s.newProcess(cfg.Release, FaultNone))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) { s.cur.Load().m.handler.ServeHTTP(w, r) })
	mux.HandleFunc("GET /", s.serveWork)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	loopCtx, stopLoop := context.WithCancel(context.Background())
	s.stopLoop = stopLoop
	s.running.Store(true)
	go s.srv.Serve(ln) //nolint:errcheck // returns ErrServerClosed on Stop
	go s.run(loopCtx)
	s.unwatch = context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Stop(sctx) // nobody to report to: the owner's context ended
	})
	return s, nil
}

func (s *Service) newProcess(release string, f Fault) *process {
	p := &process{release: release, fault: f, beh: s.cfg.behaviour(f), started: time.Now(), m: newMetrics(s.cfg.Version, release)}
	p.m.memoryLimit.Set(s.cfg.MemoryLimit)
	p.m.workingSet.Set(s.workingSet(p.beh))
	return p
}

// Addr is the host:port the service listens on.
func (s *Service) Addr() string { return s.addr }

// URL is the service's base URL, http://host:port.
func (s *Service) URL() string { return "http://" + s.addr }

// Version is the role, the value of the version label.
func (s *Service) Version() string { return s.cfg.Version }

// Release is the release the process runs.
func (s *Service) Release() string { return s.cur.Load().release }

// Fault is the fault switched on.
func (s *Service) Fault() Fault { return s.cur.Load().fault }

// Running reports whether the service serves, i.e. Stop was not called
// and its context did not end.
func (s *Service) Running() bool { return s.running.Load() }

// String names the service for logs and plans, e.g. "canary 1.5.0 at 127.0.0.1:41234".
func (s *Service) String() string {
	return fmt.Sprintf("%s %s at %s", s.cfg.Version, s.Release(), s.addr)
}

// SetFault switches the fault on (FaultNone: off) in the running process.
// FaultByzantine records its one event when it is switched on; the other
// faults act on every request or every tick while on.
func (s *Service) SetFault(f Fault) error {
	if _, err := ParseFault(string(f)); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cur.Load()
	if old.fault == f {
		return nil
	}
	p := *old
	p.fault, p.beh = f, s.cfg.behaviour(f)
	if f == FaultByzantine {
		p.m.byzantine.Inc()
	}
	p.m.workingSet.Set(s.workingSet(p.beh))
	s.cur.Store(&p)
	return nil
}

// Restart replaces the process by a new one running release, with no
// fault and fresh metrics (counters from 0); the old process's metrics are
// kept as Previous. A stopped service stays stopped: the restart only sets
// what it runs when it comes back, as a scaled-to-zero Deployment's
// template does.
func (s *Service) Restart(release string) error {
	if release == "" {
		return errors.New("service: restart without a release")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cur.Load()
	var buf bytes.Buffer
	if err := old.m.write(&buf); err != nil {
		buf.Reset()
		fmt.Fprintf(&buf, "# metrics not gathered: %v\n", err)
	}
	s.prev = &Snapshot{Release: old.release, Fault: old.fault, Started: old.started, Ended: time.Now(), Metrics: buf.Bytes()}
	s.cur.Store(s.newProcess(release, FaultNone))
	s.tx, s.dag, s.trips = 0, 0, 0
	return nil
}

// Previous is what the process before the last Restart left, or nil.
func (s *Service) Previous() *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.prev == nil {
		return nil
	}
	p := *s.prev
	return &p
}

// Requests returns the request log: the last Config.LogSize requests
// answered, oldest first, across restarts.
func (s *Service) Requests() []Request { return s.log.requests() }

// WriteMetrics writes the running process's metrics in the Prometheus
// text format, what GET /metrics answers. It works on a stopped service too.
func (s *Service) WriteMetrics(w io.Writer) error { return s.cur.Load().m.write(w) }

// Stop scales the service to zero: it stops accepting requests, lets
// those in flight finish until ctx ends (then cuts them), and stops the
// background activity. The metrics stop being served and freeze. Stop is
// idempotent; after the first call it returns nil at once. The error says
// the graceful shutdown was cut short; the service is stopped either way.
func (s *Service) Stop(ctx context.Context) error {
	s.stopMu.Lock()
	defer s.stopMu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	s.running.Store(false)
	s.unwatch()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = fmt.Errorf("stopping %s: requests in flight cut short: %w", s.cfg.Version, errors.Join(err, s.srv.Close()))
	}
	s.stopLoop()
	<-s.loopDone
	return err
}
