package bench

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// exporter serves the metrics the built-in policy reads for n healthy
// systems, each with a canary (5 req/s) and a baseline (20 req/s) of one
// instance: 22 series per side. The systems are split into shards, one
// scrape target each (/metrics/K), so that no scrape is huge.
type exporter struct {
	n, perShard int
	start       time.Time
}

// latency is the share of requests at or below each bucket bound (a
// healthy 50 ms median), cumulative; +Inf is 1.
var latency = []struct {
	le    string
	share float64
}{
	{"0.005", 0.001}, {"0.01", 0.005}, {"0.025", 0.08}, {"0.05", 0.5}, {"0.1", 0.9}, {"0.25", 0.99},
	{"0.5", 0.998}, {"1", 0.9995}, {"2.5", 0.9999}, {"5", 1}, {"10", 1}, {"+Inf", 1},
}

func (e *exporter) shards() int { return (e.n + e.perShard - 1) / e.perShard }

func (e *exporter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/metrics/"))
	if err != nil || k < 0 || k >= e.shards() {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	bw := bufio.NewWriterSize(w, 64<<10)
	defer bw.Flush()
	elapsed := time.Since(e.start).Seconds() + 3600 // an hour of history before the start
	for i := k * e.perShard; i < min((k+1)*e.perShard, e.n); i++ {
		for _, side := range []struct {
			version string
			rps     float64
		}{{"canary", 5}, {"baseline", 20}} {
			writeSide(bw, fmt.Sprintf(`system="s%d",version="%s",instance="%s-%d"`, i, side.version, side.version, i), side.rps, elapsed)
		}
	}
}

// writeSide writes the series of one side: counters at steady rates.
func writeSide(w *bufio.Writer, lbl string, rps, t float64) {
	total := rps * t
	errs := total * 0.005
	f := func(name, extra string, v float64) {
		w.WriteString(name)
		w.WriteByte('{')
		w.WriteString(lbl)
		w.WriteString(extra)
		w.WriteString("} ")
		w.WriteString(strconv.FormatFloat(v, 'f', 0, 64))
		w.WriteByte('\n')
	}
	f("http_requests_total", `,status="200"`, total-errs)
	f("http_requests_total", `,status="500"`, errs)
	for _, b := range latency {
		f("http_request_duration_seconds_bucket", `,le="`+b.le+`"`, total*b.share)
	}
	f("http_request_duration_seconds_count", "", total)
	f("http_request_duration_seconds_sum", "", total*0.06)
	f("bullshark_transactions_processed_total", "", 100*t)
	f("probft_byzantine_events_detected", "", 0)
	f("bullshark_dag_validation_errors", "", 0)
	f("dwcp_circuit_breaker_trips_total", "", 0)
	f("container_memory_working_set_bytes", `,container="dwcp"`, 0.6*(2<<30))
	f("container_spec_memory_limit_bytes", `,container="dwcp"`, 2<<30)
}

// floorQueries are the built-in policy's queries for every system at
// once, written by hand as an SRE would for one dashboard: the grouped
// floor that Rewind's queries are measured against. The sequential judges'
// counts of the last interval (error-rate-high, success-rate-low and
// latency-p99-high share two of them) are the last three.
func floorQueries(interval time.Duration) []string {
	step := func(by, sel string) string {
		return fmt.Sprintf(`sum by (%s) ((%s - %s offset %s) >= 0)`, by, sel, sel, model.Duration(interval))
	}
	return []string{
		`sum by (system) (rate(http_requests_total{version="canary"}[5m]))`,
		`sum by (system, version) (increase(http_requests_total{status=~"5..",version=~"canary|baseline"}[5m]))`,
		`sum by (system, version) (increase(http_requests_total{version=~"canary|baseline"}[5m]))`,
		`sum by (le, system, version) (increase(http_request_duration_seconds_bucket{version=~"canary|baseline"}[5m]))`,
		`avg by (system, version) (sum by (instance, system, version) (rate(bullshark_transactions_processed_total{version=~"canary|baseline"}[1m])))`,
		`sum by (system) (increase(probft_byzantine_events_detected{version="canary"}[5m]))`,
		`sum by (system) (increase(bullshark_dag_validation_errors{version="canary"}[1m]))`,
		`max by (system) (container_memory_working_set_bytes{version="canary"} / (container_spec_memory_limit_bytes{version="canary"} > 0))`,
		`sum by (system) (increase(dwcp_circuit_breaker_trips_total{version="canary"}[5m]))`,
		step("system, version", `http_requests_total{status=~"5..",version=~"canary|baseline"}`),
		step("system, version", `http_requests_total{version=~"canary|baseline"}`),
		step("le, system, version", `http_request_duration_seconds_bucket{version=~"canary|baseline"}`),
	}
}
