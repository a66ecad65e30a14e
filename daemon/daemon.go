// Package daemon assembles Rewind once: from a policy it builds the metrics
// sources (one per endpoint), each system's platform executors and
// rollback runner, the controller, the notifiers with their routing and
// the durable outbox, the readiness checks and the HTTP handler (API,
// Alertmanager receiver, /metrics, /healthz, /readyz). Apply rebuilds all
// of it from a new policy and swaps it in together, as Alertmanager
// rebuilds its pipeline on a reload.
//
// `rewind serve`, `rewind demo` and `rewind rollback` use it and differ
// only in their platform (Options.Platforms) and source (Options.Source).
// The daemon starts without its dependencies: a cluster, a Prometheus or a
// notifier that is not configured or not reachable shows in /readyz and the
// log, and a rollback that needs it fails loudly (journal, metric, notice);
// the process stays up.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/alertmanager"
	"github.com/rewind-sre/rewind/controller"
	"github.com/rewind-sre/rewind/notify"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/server"
	promsource "github.com/rewind-sre/rewind/source/prometheus"
	"github.com/rewind-sre/rewind/ui"
)

// Store is where the daemon keeps its rollbacks, their journal and the
// outbox of notices (store/sqlite, see OpenStore).
type Store interface {
	plan.Store
	notify.Store
}

// Options configure a Daemon. Store and Policy are required; zero values
// of the others take the defaults named.
type Options struct {
	Policy *policy.Policy
	Store  Store
	// Platforms build each system's executors and fence; their parts are
	// merged (one executor per step; evidence parts run in order). Default:
	// DefaultPlatforms. Add a PlatformFunc for a new platform or plan step.
	Platforms []PlatformFunc
	// Source builds the metrics source of an endpoint; default
	// PooledSource of a pool of the daemon's own (its metrics on Registry).
	Source SourceFunc
	// EvidenceDir overrides every system's evidence directory; without it
	// a system's bundles go to the policy's rollback.evidence.dir, else to
	// EvidenceFallback (default DefaultEvidenceDir).
	EvidenceDir      string
	EvidenceFallback string
	// Evidence, when set, keeps every bundle in durable storage (an S3
	// bucket, evidence/s3) once it is written locally: the Rollback points
	// at it there. nil: bundles stay in their local directory.
	Evidence rewind.EvidenceStore
	// Events subscribe to every event, after the post-mortem writer and the
	// outbox (a terminal, a UI). They must return quickly.
	Events []rewind.Publisher
	// Registry gets the daemon's metrics and serves /metrics; default a new
	// registry with the Go and process collectors.
	Registry *prometheus.Registry
	Version  string
	Log      *slog.Logger // default: discard
	Now      func() time.Time
	// Poll is how often waiting steps (drain, verify) re-read the metrics
	// (default 2 s).
	Poll time.Duration

	// Token is the API's bearer token; empty: mutating calls are refused.
	Token     []byte
	OpenReads bool // read-only API calls without a token
	// Handlers are mounted on the HTTP handler beside the API, by pattern
	// (net/http.ServeMux), e.g. a UI at "/". The API's own routes win.
	Handlers map[string]http.Handler
	// UI, when set, serves the web UI at "/" (package ui).
	UI *UIOptions

	// Election, when set, makes the daemon act only while it holds a
	// Kubernetes Lease; nil: it acts alone (the store's file lock keeps
	// a second process off the store).
	Election *Election
	// ShutdownTimeout bounds the stop after ctx ends: rollback steps under
	// way are interrupted and stay in the journal for the next process;
	// what is still not stopped then is abandoned to the journal (default
	// DefaultShutdownTimeout).
	ShutdownTimeout time.Duration
	// CheckEvery is how often the readiness checks run (default 10 s).
	CheckEvery time.Duration
	// GitOpsEvery is how often each system's GitOps owners are looked at
	// (the API's status, automatic resume); default DefaultGitOpsEvery.
	GitOpsEvery time.Duration
}

// DefaultShutdownTimeout is well within the shipped grace period (60 s).
const DefaultShutdownTimeout = 20 * time.Second

// Daemon is Rewind assembled from a policy.
type Daemon struct {
	opt     Options
	log     *slog.Logger
	reg     *prometheus.Registry
	metrics *controller.Metrics
	leader  prometheus.Gauge
	outbox  *notify.Outbox
	notices *notify.Notices
	// leading is true while this replica holds the Lease (Options.Election).
	leading atomic.Bool
	// archived counts evidence archives by result (Options.Evidence).
	archived *prometheus.CounterVec
	events   bus
	ctl      *controller.Controller
	health   *health
	handler  http.Handler
	ui       *ui.UI
	history  *ui.History
	gitops   gitopsWatch

	applyMu sync.Mutex
	gen     atomic.Pointer[generation]
	next    *generation // being applied: the controller's Build reads it
}

// New assembles the daemon from opt.Policy. Its error is a configuration
// error (policy.Errors when it is about the policy); missing dependencies
// are not errors.
func New(opt Options) (*Daemon, error) {
	if opt.Policy == nil || opt.Store == nil {
		return nil, errors.New("daemon: Options need a Policy and a Store")
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if len(opt.Platforms) == 0 {
		opt.Platforms = DefaultPlatforms
	}
	if opt.Registry == nil {
		opt.Registry = prometheus.NewRegistry()
		opt.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if opt.Source == nil {
		pool := promsource.NewPool()
		opt.Registry.MustRegister(pool)
		opt.Source = PooledSource(pool)
	}
	if opt.EvidenceFallback == "" {
		opt.EvidenceFallback = DefaultEvidenceDir()
	}
	if opt.ShutdownTimeout <= 0 {
		opt.ShutdownTimeout = DefaultShutdownTimeout
	}
	if opt.CheckEvery <= 0 {
		opt.CheckEvery = 10 * time.Second
	}
	if opt.GitOpsEvery <= 0 {
		opt.GitOpsEvery = DefaultGitOpsEvery
	}
	d := &Daemon{opt: opt, log: opt.Log, reg: opt.Registry}
	d.metrics = controller.NewMetrics(d.reg, opt.Version)
	d.leader = prometheus.NewGauge(prometheus.GaugeOpts{Name: "rewind_leader",
		Help: "1 while this replica acts: it holds the leader Lease, or the store's file lock without leader election."})
	d.reg.MustRegister(d.leader)
	d.health = newHealth(d.log)
	d.outbox = newOutbox(opt.Store, d.log, d.reg, d.health)
	if opt.Election != nil {
		d.outbox.Owner = opt.Election.Identity // in the claims a new leader sees
	}
	if opt.Evidence != nil {
		d.archived = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rewind_evidence_archives_total",
			Help: "Evidence bundles copied to durable storage, by result (archived, failed: the bundle is only on the pod)."}, []string{"result"})
		d.reg.MustRegister(d.archived)
	}
	d.notices = &notify.Notices{Outbox: d.outbox, Policy: d.Policy, Links: Links}
	d.events = bus{log: d.log, subs: append(append([]rewind.Publisher{postMortems{d}, d.notices}, d.uiHistory()...), opt.Events...)}

	g, err := d.build(opt.Policy)
	if err != nil {
		return nil, err
	}
	d.warnEnvironment(opt.Policy)
	d.next = g
	d.ctl, err = controller.New(controller.Options{Policy: opt.Policy, Store: opt.Store, Build: d.buildFor, Watcher: d.watcherFor,
		Metrics: d.metrics, Events: &d.events, Log: d.log, Now: opt.Now})
	d.next = nil
	if err != nil {
		return nil, err
	}
	d.install(g)
	if err := d.newUI(); err != nil {
		return nil, err
	}
	d.handler = d.newHandler()
	// A large policy's YAML tree is garbage now (780 MiB at 10 000
	// systems, for 300 MiB kept): give it back to the system at once
	// rather than as the scavenger gets round to it.
	debug.FreeOSMemory()
	return d, nil
}

// Apply rebuilds everything the daemon builds from a policy (sources,
// platforms, runners, notifiers, routing, thresholds, checks) and swaps it
// in together: the controller's systems, the outbox's routing and the
// readiness checks change at once. Systems keep their pause and their
// rollback in flight; trigger states start over. On error nothing changes.
func (d *Daemon) Apply(pol *policy.Policy) error {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	g, err := d.build(pol)
	if err != nil {
		return err
	}
	d.warnEnvironment(pol)
	d.next = g
	err = d.ctl.Reload(pol)
	d.next = nil
	if err != nil {
		return err
	}
	d.install(g)
	return nil
}

// warnEnvironment logs what the policy names but this machine lacks (a
// secret file, a variable): the daemon runs without it, the parts that
// need it fail until it appears, and /readyz says so.
func (d *Daemon) warnEnvironment(pol *policy.Policy) {
	for _, e := range pol.CheckEnvironment(policy.Everything) {
		d.log.Warn("the policy names what this machine lacks", "problem", e.Error())
	}
}

// install makes g the generation in force.
func (d *Daemon) install(g *generation) {
	d.outbox.SetRouting(g.notifiers, g.router)
	d.health.set(g.checks)
	d.gen.Store(g)
	d.events.Publish(context.Background(), rewind.Event{Kind: rewind.EventPolicyApplied, At: d.opt.Now(),
		Reason: fmt.Sprintf("policy %s (%s), %d systems", g.pol.File, g.pol.Hash, len(g.pol.Systems))})
}

// buildFor is the controller's BuildFunc: the runner and source of sys in
// the generation being applied.
func (d *Daemon) buildFor(sys *policy.System) (*plan.Runner, rewind.Source, error) {
	if d.next == nil {
		return nil, nil, errors.New("daemon: no generation being applied")
	}
	b, err := d.next.system(sys.Name)
	if err != nil {
		return nil, nil, err
	}
	return b.runner, b.source, nil
}

// Policy is the policy in force.
func (d *Daemon) Policy() *policy.Policy { return d.gen.Load().pol }

// Controller is the daemon's controller.
func (d *Daemon) Controller() *controller.Controller { return d.ctl }

// Registry holds the daemon's metrics.
func (d *Daemon) Registry() *prometheus.Registry { return d.reg }

// Handler is the HTTP handler: the API under /api/v1, the Alertmanager
// receiver, /metrics, /healthz, /readyz and Options.Handlers.
func (d *Daemon) Handler() http.Handler { return d.handler }

func (d *Daemon) newHandler() http.Handler {
	audit := d.log.With("audit", true)
	return server.Handler(server.Options{
		Controller: d.ctl, Store: d.opt.Store, Gatherer: d.reg, Token: d.opt.Token, OpenReads: d.opt.OpenReads,
		Ready: d.ready, Audit: audit, Mount: d.mounts(),
		ResumeGitOps: func(ctx context.Context, system, who string) (any, error) { return d.ResumeGitOps(ctx, system, who) },
		GitOps:       d.GitOpsStatus,
		Alerts:       alertmanager.New(alertmanager.Options{Controller: d.ctl, Token: d.opt.Token, Registerer: d.reg, Log: d.log, Audit: audit}),
	})
}

// ready is what /readyz reports down: each dependency that fails its
// check, each notifier whose last notice failed, each blind system.
func (d *Daemon) ready(ctx context.Context) map[string]string {
	down := d.health.report(ctx)
	for _, s := range d.ctl.Systems() {
		if s.Blind {
			down["system "+s.Name] = "blind: its queries failed 3 cycles in a row; no rollback can be decided"
		}
	}
	return down
}

// progress is every runner's Progress: the step's event to the subscribers.
func (d *Daemon) progress(rb *rewind.Rollback, step rewind.StepRecord) {
	snap := *rb
	snap.Steps = append([]rewind.StepRecord(nil), rb.Steps...)
	d.events.Publish(context.Background(), rewind.Event{Kind: rewind.EventStep, System: rb.System, RollbackID: rb.ID,
		Rollback: &snap, Step: &step, At: d.opt.Now()})
}

// Links are the places a notice points to for a rollback: its evidence
// bundle and the post-mortem draft in it.
func Links(rb *rewind.Rollback) rewind.Links {
	l := rewind.Links{Evidence: rb.Evidence}
	if rb.Evidence != "" {
		l.PostMortem = PostMortemPath(rb)
	}
	return l
}
