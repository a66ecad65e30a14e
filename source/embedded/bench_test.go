package embedded

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// backtestQueries are 20 range queries shaped like the default policy's
// triggers, both sides of each comparison: what `rewind backtest` runs.
var backtestQueries = func() []string {
	var qs []string
	for _, sel := range []string{`version="canary"`, `version="baseline"`} {
		qs = append(qs,
			`sum(rate(http_requests_total{`+sel+`}[5m]))`,
			`sum(rate(http_requests_total{status=~"5..",`+sel+`}[5m])) / sum(rate(http_requests_total{`+sel+`}[5m]))`,
			`sum(rate(http_requests_total{status!~"5..",`+sel+`}[5m])) / sum(rate(http_requests_total{`+sel+`}[5m]))`,
			`sum(increase(http_requests_total{status=~"5..",`+sel+`}[5m]))`,
			`sum(increase(http_requests_total{`+sel+`}[5m]))`,
			`histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{`+sel+`}[5m])))`,
			`histogram_quantile(0.5, sum by (le) (rate(http_request_duration_seconds_bucket{`+sel+`}[5m])))`,
			`sum by (le) (increase(http_request_duration_seconds_bucket{`+sel+`}[5m]))`,
			`max(process_resident_memory_bytes{`+sel+`})`,
			`increase(circuit_breaker_trips_total{`+sel+`}[5m]) > 10`,
		)
	}
	return qs
}()

const benchStep = 15 * time.Second

func BenchmarkLoad24h(b *testing.B) {
	data := shared24h(b)
	dir := b.TempDir()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		db, err := Open(Options{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		if err := db.LoadOpenMetrics(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(bytes.Count(data, []byte{'\n'}))*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkQueryRange24h runs the 20 backtest queries over 24 h at a 15 s
// step (5760 steps each); one op is all 20 queries.
func BenchmarkQueryRange24h(b *testing.B) {
	db := openLoaded(b, shared24h(b))
	ctx := context.Background()
	end := day0.Add(24*time.Hour - benchStep)
	b.ReportAllocs()
	for b.Loop() {
		runBacktestQueries(b, ctx, db, end)
	}
}

// BenchmarkBacktest24h is the whole `rewind backtest --data` budget (< 2 s):
// open, load 24 h of 15 s data, run the 20 range queries, close.
func BenchmarkBacktest24h(b *testing.B) {
	data := shared24h(b)
	dir := b.TempDir()
	ctx := context.Background()
	end := day0.Add(24*time.Hour - benchStep)
	b.ReportAllocs()
	for b.Loop() {
		db, err := Open(Options{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		if err := db.LoadOpenMetrics(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		runBacktestQueries(b, ctx, db, end)
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func runBacktestQueries(b *testing.B, ctx context.Context, db *DB, end time.Time) {
	for _, q := range backtestQueries {
		m, err := db.QueryRange(ctx, q, day0, end, benchStep)
		if err != nil {
			b.Fatalf("%s: %v", q, err)
		}
		if len(m) == 0 && q[:8] != "increase" {
			b.Fatalf("%s: no data", q)
		}
	}
}

// BenchmarkParse24h is the parsing part of BenchmarkLoad24h alone.
func BenchmarkParse24h(b *testing.B) {
	data := shared24h(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseOpenMetrics(data); err != nil {
			b.Fatal(err)
		}
	}
}
