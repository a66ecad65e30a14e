package controller

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/decide"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/watch"
)

// Watcher judges the rollouts of one rollout-watch system as they happen
// (watch.Live): Observe does the I/O, Apply (under the controller's lock)
// changes what State and Status show.
type Watcher interface {
	Observe(ctx context.Context, at time.Time) watch.Pending
	Apply(p watch.Pending, policyHash string) watch.LiveCycle
	State() *decide.SystemState
	Status() watch.Status
}

// WatcherFunc builds the Watcher of a watch system; src is the system's
// metrics source, reg shared by every watch system of the policy.
type WatcherFunc func(pol *policy.Policy, sys *policy.System, src rewind.Source, reg *watch.Registry) (Watcher, error)

// LiveWatcher is the default WatcherFunc: rollouts from kube-state-metrics
// through the system's metrics source.
func LiveWatcher(pol *policy.Policy, sys *policy.System, src rewind.Source, reg *watch.Registry) (Watcher, error) {
	return watch.NewLive(pol, sys, src, nil, reg)
}

// newWatcher builds the Watcher of a watch system (nil for a canary system).
func (c *Controller) newWatcher(pol *policy.Policy, sys *policy.System, src rewind.Source, reg *watch.Registry) (Watcher, error) {
	if sys.Watch == nil {
		return nil, nil
	}
	f := c.opt.Watcher
	if f == nil {
		f = LiveWatcher
	}
	return f(pol, sys, src, reg)
}

// evaluateWatch runs one cycle of a watch system and makes the current
// rollout's state the system's. Called without c.mu; returns with it held,
// as the canary path's Apply.
func (c *Controller) evaluateWatch(ctx context.Context, s *system, at time.Time) judged {
	p := s.live.Observe(ctx, at)
	c.mu.Lock()
	lc := s.live.Apply(p, c.pol.Hash)
	s.state = s.live.State()
	c.recordWatch(s, lc)
	why := ""
	if r := lc.Rollout; r != nil {
		why = "rollout of " + r.Namespace + "/" + r.Deployment + " to revision " + r.Revision + " (" + string(lc.Phase) + " phase): "
	}
	return judged{cyc: lc.Cycle.Cycle, obs: lc.Observations, about: why}
}

// closeWatchers stops what the watchers of replaced systems keep running
// (an API-server watch).
func closeWatchers(old map[string]*system) {
	for _, s := range old {
		if c, ok := s.live.(io.Closer); ok {
			c.Close()
		}
	}
}

// recordWatch updates the watch metrics and logs shared incidents.
func (c *Controller) recordWatch(s *system, lc watch.LiveCycle) {
	name := s.cfg.Name
	for _, sh := range lc.Shared {
		c.opt.Log.Warn("shared incident: the same degradation in peers that were not deployed; not blamed on the rollout",
			"system", name, "trigger", sh.Trigger, "peers", strings.Join(sh.Peers, ","))
	}
	m := c.opt.Metrics
	if m == nil {
		return
	}
	if lc.Started {
		m.WatchesStarted.WithLabelValues(name).Inc()
	}
	for _, sh := range lc.Shared {
		m.SharedIncidents.WithLabelValues(name, sh.Trigger).Inc()
	}
	m.WatchRollout.DeletePartialMatch(prometheus.Labels{"system": name})
	if r := lc.Rollout; r != nil && lc.Decision == nil {
		m.WatchRollout.WithLabelValues(name, r.Revision, r.Previous, string(lc.Phase)).Set(1)
	}
}

// watchMetrics are the metrics of rollout-watch systems.
type watchMetrics struct {
	WatchRollout    *prometheus.GaugeVec   // system, revision, previous, phase: 1 for the rollout being watched
	WatchesStarted  *prometheus.CounterVec // system
	SharedIncidents *prometheus.CounterVec // system, trigger
}

func newWatchMetrics(reg prometheus.Registerer) watchMetrics {
	m := watchMetrics{
		WatchRollout: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rewind_watch_rollout",
			Help: "1 for the rollout a watch system judges now, by its new and previous revision and its phase (compare, history)."}, []string{"system", "revision", "previous", "phase"}),
		WatchesStarted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rewind_watch_rollouts_total",
			Help: "Rollouts whose watch started, by watch system."}, []string{"system"}),
		SharedIncidents: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rewind_watch_shared_incidents_total",
			Help: "Evaluations at which a degradation of the rollout was shared with peers that were not deployed (not blamed on the rollout)."}, []string{"system", "trigger"}),
	}
	reg.MustRegister(m.WatchRollout, m.WatchesStarted, m.SharedIncidents)
	return m
}
