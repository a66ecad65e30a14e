package controller

import (
	"github.com/prometheus/client_golang/prometheus"

	rewind "github.com/rewind-sre/rewind"
)

// Metrics are the controller's own metrics (docs/metrics.md), registered on
// an injected registry.
type Metrics struct {
	Rollbacks        *prometheus.CounterVec   // system, trigger, result
	RollbackDuration prometheus.Histogram     // decision or request → end
	Detection        prometheus.Histogram     // first violating sample → decision
	TriggerState     *prometheus.GaugeVec     // system, trigger, state: 1 for the current state
	QueryErrors      *prometheus.CounterVec   // system
	Blind            *prometheus.GaugeVec     // system
	StepDuration     *prometheus.HistogramVec // step
	Evaluations      *prometheus.CounterVec   // system
	PolicyReloads    *prometheus.CounterVec   // result
	Paused           *prometheus.GaugeVec     // system
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
		TriggerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rewind_trigger_state",
			Help: "1 for each trigger's current state."}, []string{"system", "trigger", "state"}),
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
	m.watchMetrics = newWatchMetrics(reg)
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rewind_build_info", Help: "Rewind's version."}, []string{"version"})
	info.WithLabelValues(version).Set(1)
	reg.MustRegister(m.Rollbacks, m.RollbackDuration, m.Detection, m.TriggerState, m.QueryErrors, m.Blind, m.StepDuration, m.Evaluations, m.PolicyReloads, m.Paused, info)
	return m
}

var allStates = []rewind.TriggerState{rewind.StateOK, rewind.StatePending, rewind.StateFiring, rewind.StateInsufficientData, rewind.StateDegraded}

func (m *Metrics) setTriggerState(system, trigger string, s rewind.TriggerState) {
	for _, st := range allStates {
		v := 0.0
		if st == s {
			v = 1
		}
		m.TriggerState.WithLabelValues(system, trigger, string(st)).Set(v)
	}
}
