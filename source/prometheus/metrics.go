package prometheus

import (
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	descSent = prometheus.NewDesc("rewind_prometheus_queries_total",
		"Queries sent to a Prometheus endpoint.", []string{"endpoint"}, nil)
	descFailed = prometheus.NewDesc("rewind_prometheus_query_failures_total",
		"Queries sent to a Prometheus endpoint that failed (HTTP error, timeout, bad answer, over a bound).", []string{"endpoint"}, nil)
	descTooLarge = prometheus.NewDesc("rewind_prometheus_answers_too_large_total",
		"Answers refused for exceeding the body or series bound.", []string{"endpoint"}, nil)
	descRefused = prometheus.NewDesc("rewind_prometheus_queries_not_sent_total",
		"Queries not sent: the endpoint was backed off, or no slot came free before the deadline.", []string{"endpoint"}, nil)
	descInFlight = prometheus.NewDesc("rewind_prometheus_queries_in_flight",
		"Queries in flight to a Prometheus endpoint.", []string{"endpoint"}, nil)
	descMaxInFlight = prometheus.NewDesc("rewind_prometheus_max_queries_in_flight",
		"The bound on queries in flight to a Prometheus endpoint.", []string{"endpoint"}, nil)
	descBackoff = prometheus.NewDesc("rewind_prometheus_backoff_seconds",
		"How long Rewind still holds back queries to an endpoint that answered as overloaded or failing.", []string{"endpoint"}, nil)
)

// Describe implements prometheus.Collector.
func (p *Pool) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSent, descFailed, descTooLarge, descRefused, descInFlight, descMaxInFlight, descBackoff} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one series per endpoint and
// metric, labelled with the redacted URL (and its bound when two
// endpoints share a URL).
func (p *Pool) Collect(ch chan<- prometheus.Metric) {
	p.mu.Lock()
	eps := make([]*endpoint, 0, len(p.endpoints))
	for _, ep := range p.endpoints {
		eps = append(eps, ep)
	}
	p.mu.Unlock()
	slices.SortFunc(eps, func(a, b *endpoint) int { return strings.Compare(a.name, b.name) })
	seen := map[string]int{}
	for _, ep := range eps {
		name := ep.name
		if seen[name]++; seen[name] > 1 {
			name += "#" + string(rune('0'+min(seen[name], 9)))
		}
		ch <- prometheus.MustNewConstMetric(descSent, prometheus.CounterValue, float64(ep.sent.Load()), name)
		ch <- prometheus.MustNewConstMetric(descFailed, prometheus.CounterValue, float64(ep.failed.Load()), name)
		ch <- prometheus.MustNewConstMetric(descTooLarge, prometheus.CounterValue, float64(ep.tooLarge.Load()), name)
		ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(ep.refused.Load()), name)
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(len(ep.slots)), name)
		ch <- prometheus.MustNewConstMetric(descMaxInFlight, prometheus.GaugeValue, float64(cap(ep.slots)), name)
		ch <- prometheus.MustNewConstMetric(descBackoff, prometheus.GaugeValue, max(0, ep.backoff().Seconds()), name)
	}
}
