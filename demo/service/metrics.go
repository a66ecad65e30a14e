package service

import (
	"io"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

// The metric names the service exports: the seed's, which the default
// policy queries, and demo_build_info.
const (
	MetricRequests     = "http_requests_total"                    // counter {status, version}
	MetricDuration     = "http_request_duration_seconds"          // histogram {version}
	MetricTransactions = "bullshark_transactions_processed_total" // counter {version}
	MetricByzantine    = "probft_byzantine_events_detected"       // counter {version}
	MetricDAGErrors    = "bullshark_dag_validation_errors"        // counter {version}
	MetricWorkingSet   = "container_memory_working_set_bytes"     // gauge {version}
	MetricMemoryLimit  = "container_spec_memory_limit_bytes"      // gauge {version}
	MetricTrips        = "dwcp_circuit_breaker_trips_total"       // counter {version}
	MetricBuildInfo    = "demo_build_info"                        // gauge 1 {release, version}
)

// VersionLabel is the constant label every metric carries: the service's
// role, which the policy's canary and baseline selectors match.
const VersionLabel = "version"

// DurationBuckets are the request-duration histogram's bucket bounds in
// seconds: fine from 5 ms to 2.5 s, where the demo's latencies and the
// p99 judge live.
var DurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 10}

// metrics are one process's metrics, in a registry of their own: a restart
// starts from new ones, as a restarted process would.
type metrics struct {
	reg          *prometheus.Registry
	handler      http.Handler
	requests     map[int]prometheus.Counter // by status code
	duration     prometheus.Histogram
	transactions prometheus.Counter
	byzantine    prometheus.Counter
	dagErrors    prometheus.Counter
	workingSet   prometheus.Gauge
	memoryLimit  prometheus.Gauge
	trips        prometheus.Counter
}

func newMetrics(version, release string) *metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricRequests, Help: "Requests answered, by status code."}, []string{"status"})
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricBuildInfo, Help: "The release the service runs (always 1)."}, []string{"release"})
	info.WithLabelValues(release).Set(1)
	m := &metrics{
		reg: prometheus.NewRegistry(),
		// Both statuses exist from the start, at 0: an error ratio has a
		// numerator series before the first error.
		requests: map[int]prometheus.Counter{
			http.StatusOK:                  requests.WithLabelValues(strconv.Itoa(http.StatusOK)),
			http.StatusInternalServerError: requests.WithLabelValues(strconv.Itoa(http.StatusInternalServerError)),
		},
		duration:     prometheus.NewHistogram(prometheus.HistogramOpts{Name: MetricDuration, Help: "Time to answer a request.", Buckets: DurationBuckets}),
		transactions: counter(MetricTransactions, "Bullshark transactions processed."),
		byzantine:    counter(MetricByzantine, "ProBFT byzantine events detected."),
		dagErrors:    counter(MetricDAGErrors, "Bullshark DAG validation errors."),
		workingSet:   gauge(MetricWorkingSet, "Working set of the service's memory, in bytes."),
		memoryLimit:  gauge(MetricMemoryLimit, "Memory limit of the service, in bytes."),
		trips:        counter(MetricTrips, "DWCP circuit-breaker trips."),
	}
	prometheus.WrapRegistererWith(prometheus.Labels{VersionLabel: version}, m.reg).MustRegister(
		requests, info, m.duration, m.transactions, m.byzantine, m.dagErrors, m.workingSet, m.memoryLimit, m.trips)
	// OpenMetrics stays off: in OpenMetrics a counter's name ends in
	// _total, so probft_byzantine_events_detected and
	// bullshark_dag_validation_errors would be exposed under other names
	// than the policy's queries use. The text format keeps them as named.
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m
}

// write writes the metrics in the Prometheus text format.
func (m *metrics) write(w io.Writer) error {
	fams, err := m.reg.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range fams {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}
