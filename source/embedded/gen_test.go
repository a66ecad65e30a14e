package embedded

import (
	"bytes"
	"context"
	"math"
	"strconv"
	"testing"
	"time"
)

// The generated data set: a canary and a baseline with request counters,
// a latency histogram, gauges and a rare-event counter. With two versions it
// has 40 series. Every step of the data adds, per version:
//
//	http_requests_total{status="200"}  +300
//	http_requests_total{status="404"}  +10
//	http_requests_total{status="500"}  +1 (baseline), +3 (canary)
//	http_requests_total{status="503"}  +0 (a flat counter)
//	http_request_duration_seconds      +100 observations, cumulative per
//	                                   bucket as in genBuckets, sum +10
//	circuit_breaker_trips_total        +1 every 20th step
var (
	genVersions = []string{"baseline", "canary"}
	genStatuses = []struct {
		code string
		inc  map[string]float64
	}{
		{"200", map[string]float64{"baseline": 300, "canary": 300}},
		{"404", map[string]float64{"baseline": 10, "canary": 10}},
		{"500", map[string]float64{"baseline": 1, "canary": 3}},
		{"503", map[string]float64{"baseline": 0, "canary": 0}},
	}
	genBuckets = []struct {
		le  string
		cum float64 // observations at or below le per step
	}{
		{"0.005", 2}, {"0.01", 5}, {"0.025", 10}, {"0.05", 20}, {"0.1", 50},
		{"0.25", 80}, {"0.5", 95}, {"1", 99}, {"2.5", 100}, {"+Inf", 100},
	}
)

const genObsPerStep = 100

// genOpenMetrics returns OpenMetrics text with samples at start, start+step,
// ... < start+dur, series after series within each family, as an exporter of
// history (or promtool's input) would write it.
func genOpenMetrics(tb testing.TB, start time.Time, dur, step time.Duration) []byte {
	tb.Helper()
	n := int(dur / step)
	var buf bytes.Buffer
	buf.Grow(n * 40 * 80)
	num := make([]byte, 0, 32)
	line := func(name, labels string, v float64, i int) {
		buf.WriteString(name)
		buf.WriteString(labels)
		buf.WriteByte(' ')
		num = strconv.AppendFloat(num[:0], v, 'g', -1, 64)
		buf.Write(num)
		buf.WriteByte(' ')
		ms := start.Add(time.Duration(i) * step).UnixMilli()
		num = strconv.AppendFloat(num[:0], float64(ms)/1000, 'f', -1, 64)
		buf.Write(num)
		buf.WriteByte('\n')
	}

	buf.WriteString("# HELP http_requests Requests served.\n# TYPE http_requests counter\n")
	for _, ver := range genVersions {
		for _, st := range genStatuses {
			lbl := `{version="` + ver + `",status="` + st.code + `"}`
			for i := range n {
				line("http_requests_total", lbl, float64(i)*st.inc[ver], i)
			}
		}
	}
	buf.WriteString("# TYPE http_request_duration_seconds histogram\n")
	for _, ver := range genVersions {
		for i := range n {
			for _, b := range genBuckets {
				line("http_request_duration_seconds_bucket", `{version="`+ver+`",le="`+b.le+`"}`, float64(i)*b.cum, i)
			}
			line("http_request_duration_seconds_sum", `{version="`+ver+`"}`, float64(i)*10, i)
			line("http_request_duration_seconds_count", `{version="`+ver+`"}`, float64(i)*genObsPerStep, i)
		}
	}
	buf.WriteString("# TYPE process_resident_memory_bytes gauge\n")
	for _, ver := range genVersions {
		for i := range n {
			line("process_resident_memory_bytes", `{version="`+ver+`"}`, 1e8+1e7*math.Sin(2*math.Pi*float64(i)/240), i)
		}
	}
	buf.WriteString("# TYPE circuit_breaker_trips counter\n")
	for _, ver := range genVersions {
		for i := range n {
			line("circuit_breaker_trips_total", `{version="`+ver+`"}`, float64(i/20), i)
		}
	}
	buf.WriteString("# TYPE up gauge\n")
	for _, ver := range genVersions {
		for i := range n {
			line("up", `{version="`+ver+`"}`, 1, i)
		}
	}
	buf.WriteString("# EOF\n")
	return buf.Bytes()
}

// openLoaded opens a DB holding data and closes it at the end of the test.
func openLoaded(tb testing.TB, data []byte) *DB {
	tb.Helper()
	db := openDB(tb)
	if err := db.LoadOpenMetrics(bytes.NewReader(data)); err != nil {
		tb.Fatalf("load: %v", err)
	}
	return db
}

func openDB(tb testing.TB) *DB {
	tb.Helper()
	db, err := Open(Options{Dir: tb.TempDir()})
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return db
}

// queryOne runs an instant query that must return exactly one sample.
func queryOne(tb testing.TB, db *DB, q string, at time.Time) float64 {
	tb.Helper()
	v, err := db.Query(context.Background(), q, at)
	if err != nil {
		tb.Fatalf("%s at %s: %v", q, at, err)
	}
	if len(v) != 1 {
		tb.Fatalf("%s at %s: want 1 sample, got %d: %v", q, at, len(v), v)
	}
	return v[0].V
}

func near(a, b float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}
