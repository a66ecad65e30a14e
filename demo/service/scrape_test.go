package service

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/rewind-sre/rewind/source/embedded"
)

// TestDefaultPolicyQueriesSeeTheFaults scrapes a baseline and a canary with
// the embedded Prometheus (which asks for OpenMetrics first, as Prometheus
// does) and runs the default policy's queries on them: each fault shows in
// the series the policy reads, under the names it reads them by.
func TestDefaultPolicyQueriesSeeTheFaults(t *testing.T) {
	db, err := embedded.Open(embedded.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	// One canary per fault, each its own version: the selectors tell them apart.
	faults := []Fault{FaultThroughput, FaultByzantine, FaultDAGCorruption, FaultMemory, FaultCircuitBreaker}
	services := map[string]*Service{"baseline": start(t, fast("baseline"))}
	for _, f := range faults {
		services["canary-"+string(f)] = start(t, fast("canary-"+string(f)))
	}

	t0 := time.Now().Truncate(time.Second)
	at := t0
	scrape := func() {
		for _, s := range services {
			if _, err := db.Scrape(t.Context(), s.URL()+"/metrics", nil, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	// minute serves 100 requests and advances every service by a minute,
	// scraping them every 15 s.
	minute := func() {
		for range 4 {
			for _, s := range services {
				serve(t, s, 25)
				for range 15 {
					s.advance(time.Second)
				}
			}
			at = at.Add(15 * time.Second)
			scrape()
		}
	}
	scrape()
	minute()
	for _, f := range faults {
		if err := services["canary-"+string(f)].SetFault(f); err != nil {
			t.Fatal(err)
		}
	}
	minute()
	now := at

	query := func(q string) (float64, bool) {
		t.Helper()
		vec, err := db.Query(t.Context(), q, now)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if len(vec) == 0 {
			return 0, false
		}
		if len(vec) != 1 {
			t.Fatalf("%s: %d series", q, len(vec))
		}
		return vec[0].V, true
	}
	sel := func(q, version string) string { return strings.ReplaceAll(q, "{{selector}}", `version="`+version+`"`) }

	for v := range services {
		if n, _ := query(sel(`sum(increase(http_requests_total{ {{selector}} }[5m]))`, v)); math.Abs(n-200) > 20 {
			t.Errorf("%s: %v requests over the window, want about 200 (extrapolated)", v, n)
		}
		if n, ok := query(sel(`sum(increase(http_request_duration_seconds_bucket{le="+Inf", {{selector}} }[5m]))`, v)); !ok || n == 0 {
			t.Errorf("%s: no request durations", v)
		}
	}
	throughput := `avg(sum by (instance) (rate(bullshark_transactions_processed_total{ {{selector}} }[1m])))`
	if r, _ := query(sel(throughput, "baseline")); math.Abs(r-100) > 1 {
		t.Errorf("baseline throughput %v/s, want 100", r)
	}
	if r, _ := query(sel(throughput, "canary-throughput")); math.Abs(r-30) > 1 {
		t.Errorf("canary throughput %v/s with the throughput fault, want 30", r)
	}
	for _, tc := range []struct {
		fault Fault
		expr  string
	}{
		{FaultByzantine, `sum(increase(probft_byzantine_events_detected{ {{selector}} }[5m])) > 0`},
		{FaultDAGCorruption, `sum(increase(bullshark_dag_validation_errors{ {{selector}} }[1m])) > 0`},
		{FaultMemory, `max(container_memory_working_set_bytes{ {{selector}} } / (container_spec_memory_limit_bytes{ {{selector}} } > 0)) > 0.95`},
		{FaultCircuitBreaker, `sum(increase(dwcp_circuit_breaker_trips_total{ {{selector}} }[5m])) > 10`},
	} {
		for v := range services {
			_, fires := query(sel(tc.expr, v))
			if want := v == "canary-"+string(tc.fault); fires != want {
				t.Errorf("the %s trigger on %s: fires %v, want %v", tc.fault, v, fires, want)
			}
		}
	}
}
