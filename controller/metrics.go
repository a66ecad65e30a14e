package controller

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	rewind "github.com/rewind-sre/rewind"
)

// Metrics are the controller's own metrics (docs/metrics.md), registered on
// an injected registry.
type Metrics struct {
	Rollbacks        *prometheus.CounterVec   // system, trigger, result
	RollbackDuration prometheus.Histogram     // decision or request → end
	Detection        prometheus.Histogram     // first violating sample → decision
	TriggerState     *StateCollector          // system, trigger, state: 1 for the current state
	QueryErrors      *prometheus.CounterVec   // system
	Blind            *prometheus.GaugeVec     // system
	StepDuration     *prometheus.HistogramVec // step
	Evaluations      *prometheus.CounterVec   // system
	PolicyReloads    *prometheus.CounterVec   // result
	Paused           *prometheus.GaugeVec     // system
	CycleDuration    prometheus.Histogram     // one batch's evaluation cycle
	CycleQueries     prometheus.Counter       // queries sent by evaluation cycles
	Overruns         prometheus.Counter       // cycles skipped: the previous one still ran
	Batches          prometheus.Gauge         // batches of systems evaluated together
	Panics           *prometheus.CounterVec   // stage: recovered panics
	watchMetrics                              // watch.go
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer, version string) *Metrics {
	m := &Metrics{
		Rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rewind_rollbacks_total",
			Help: "Rollbacks by system, trigger (or manual) and result (started, succeeded, failed, refused)."}, []string{"system", "trigger", "result"}),
		RollbackDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rewind_rollback_duration_seconds",
			Help: "Time from the start of a rollback to its verified end.", Buckets: []float64{1, 2, 5, 10, 20, 30, 60, 120, 300, 600}}),
		Detection: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rewind_detection_seconds",
			Help: "Time from the first violating sample to the rollback decision.", Buckets: []float64{0, 15, 30, 60, 120, 180, 300, 420, 600, 900, 1800}}),
		TriggerState: &StateCollector{desc: prometheus.NewDesc("rewind_trigger_state",
			"1 for each trigger's current state, 0 for the others.", []string{"system", "trigger", "state"}, nil)},
		QueryErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rewind_query_errors_total",
			Help: "Trigger evaluations whose queries failed."}, []string{"system"}),
		Blind: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rewind_system_blind",
			Help: "1 while a system's queries have failed 3 cycles in a row."}, []string{"system"}),
		StepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rewind_step_duration_seconds",
			Help: "Duration of rollback steps.", Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120}}, []string{"step"}),
		Evaluations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rewind_evaluations_total",
			Help: "Evaluation cycles by system."}, []string{"system"}),
		PolicyReloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rewind_policy_reloads_total",
			Help: "Policy reloads by result (ok, invalid)."}, []string{"result"}),
		Paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rewind_system_paused",
			Help: "1 while automatic rollback of a system is paused."}, []string{"system"}),
	}
	m.CycleDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rewind_cycle_duration_seconds",
		Help:    "Duration of one evaluation cycle of a batch of systems (grouped queries, then every system's triggers).",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60}})
	m.CycleQueries = prometheus.NewCounter(prometheus.CounterOpts{Name: "rewind_cycle_queries_total",
		Help: "Queries sent by evaluation cycles (grouped queries count once)."})
	m.Overruns = prometheus.NewCounter(prometheus.CounterOpts{Name: "rewind_cycle_overruns_total",
		Help: "Evaluation cycles skipped because the previous cycle of the same systems still ran: never stacked."})
	m.Batches = prometheus.NewGauge(prometheus.GaugeOpts{Name: "rewind_batches",
		Help: "Batches of systems evaluated together, each at its own phase of the interval."})
	m.Panics = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rewind_panics_total",
		Help: "Panics recovered by stage (fetch, evaluate, rollback, hook); the system is marked failed, the others go on."}, []string{"stage"})
	m.watchMetrics = newWatchMetrics(reg)
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rewind_build_info", Help: "Rewind's version."}, []string{"version"})
	info.WithLabelValues(version).Set(1)
	reg.MustRegister(m.Rollbacks, m.RollbackDuration, m.Detection, m.TriggerState, m.QueryErrors, m.Blind, m.StepDuration, m.Evaluations, m.PolicyReloads, m.Paused,
		m.CycleDuration, m.CycleQueries, m.Overruns, m.Batches, m.Panics, info)
	return m
}

var allStates = []rewind.TriggerState{rewind.StateOK, rewind.StatePending, rewind.StateFiring, rewind.StateInsufficientData, rewind.StateDegraded}

// StateCollector exports rewind_trigger_state from the controller's
// state when it is scraped: nothing is kept per series, so 10 000 systems
// of 9 triggers cost no memory beyond their state.
type StateCollector struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	each func(yield func(system, trigger string, st rewind.TriggerState))
}

// from sets where the states come from.
func (s *StateCollector) from(each func(yield func(system, trigger string, st rewind.TriggerState))) {
	s.mu.Lock()
	s.each = each
	s.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (s *StateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- s.desc }

// Collect implements prometheus.Collector: five series per trigger, 1 for
// its state.
func (s *StateCollector) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	each := s.each
	s.mu.Unlock()
	if each == nil {
		return
	}
	each(func(system, trigger string, cur rewind.TriggerState) {
		for _, st := range allStates {
			v := 0.0
			if st == cur {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(s.desc, prometheus.GaugeValue, v, system, trigger, string(st))
		}
	})
}
