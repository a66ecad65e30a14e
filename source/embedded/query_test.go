package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rewind-sre/rewind"
)

var (
	day0     = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	data24h  []byte
	dataOnce sync.Once
)

// shared24h is 24 h of 15 s data from day0 (see genOpenMetrics).
func shared24h(tb testing.TB) []byte {
	dataOnce.Do(func() { data24h = genOpenMetrics(tb, day0, 24*time.Hour, 15*time.Second) })
	return data24h
}

func TestQueryAtOldTimestamps(t *testing.T) {
	db := openLoaded(t, shared24h(t))
	noon := day0.Add(12 * time.Hour)
	tests := []struct {
		query string
		want  float64
	}{
		{`rate(http_requests_total{version="canary",status="500"}[5m])`, 3.0 / 15},
		{`increase(http_requests_total{version="baseline",status="200"}[5m])`, 300 * 20},
		{`sum(rate(http_requests_total{version="canary",status=~"5.."}[5m])) / sum(rate(http_requests_total{version="canary"}[5m]))`, 3.0 / 313},
		{`histogram_quantile(0.5, sum by (le) (rate(http_request_duration_seconds_bucket{version="canary"}[5m])))`, 0.1},
		{`histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket{version="canary"}[5m])))`, 0.25 + 0.25*10/15},
		{`histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{version="canary"}[5m])))`, 1},
		{`sum(rate(http_request_duration_seconds_sum[5m])) / sum(rate(http_request_duration_seconds_count[5m]))`, 0.1},
		{`count(up)`, 2},
		{`scalar(sum(up))`, 2},
	}
	for _, tc := range tests {
		if got := queryOne(t, db, tc.query, noon); !near(got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.query, got, tc.want)
		}
	}

	// sum by returns every group, not only the first.
	v, err := db.Query(context.Background(), `sum by (version) (rate(http_requests_total[5m]))`, noon)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, s := range v {
		got[s.Labels["version"]] = s.V
		if len(s.Labels) != 1 || !s.T.Equal(noon) {
			t.Errorf("sample %+v: want only the version label and T=%s", s, noon)
		}
	}
	if len(got) != 2 || !near(got["baseline"], 311.0/15) || !near(got["canary"], 313.0/15) {
		t.Errorf("sum by (version) = %v", got)
	}

	// After the data ends and the lookback passes, there is no data: an
	// empty vector, not an error and not zero.
	end := day0.Add(24*time.Hour + 6*time.Minute)
	if v, err := db.Query(context.Background(), `up`, end); err != nil || len(v) != 0 {
		t.Errorf("up after the end = %v, %v; want empty", v, err)
	}
	if mint, maxt, ok := db.Bounds(); !ok || !mint.Equal(day0) || !maxt.Equal(day0.Add(24*time.Hour-15*time.Second)) {
		t.Errorf("Bounds = %s, %s, %v", mint, maxt, ok)
	}
}

// A range query equals instant queries at each of its steps, also for steps
// not aligned with the data.
func TestRangeEqualsInstant(t *testing.T) {
	db := openLoaded(t, shared24h(t))
	ctx := context.Background()
	start := day0.Add(6*time.Hour + 7*time.Second)
	end := start.Add(time.Hour)
	step := 70 * time.Second
	for _, q := range []string{
		`rate(http_requests_total[5m])`,
		`sum by (version) (increase(http_requests_total{status=~"5.."}[5m]))`,
		`histogram_quantile(0.95, sum by (version, le) (rate(http_request_duration_seconds_bucket[5m])))`,
		`process_resident_memory_bytes`,
		`max_over_time(process_resident_memory_bytes[10m]) - min_over_time(process_resident_memory_bytes[10m])`,
		`scalar(sum(up))`,
		`time()`,
		`absent(nonexistent)`,
	} {
		m, err := db.QueryRange(ctx, q, start, end, step)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		ranged := map[string]float64{}
		for _, s := range m {
			for _, p := range s.Points {
				ranged[key(s.Labels, p.T)] = p.V
			}
		}
		instant := map[string]float64{}
		for at := start; !at.After(end); at = at.Add(step) {
			v, err := db.Query(ctx, q, at)
			if err != nil {
				t.Fatalf("%s at %s: %v", q, at, err)
			}
			for _, s := range v {
				instant[key(s.Labels, s.T)] = s.V
			}
		}
		if len(ranged) == 0 || len(ranged) != len(instant) {
			t.Fatalf("%s: %d range points, %d instant samples", q, len(ranged), len(instant))
		}
		for k, rv := range ranged {
			if iv, ok := instant[k]; !ok || math.Float64bits(iv) != math.Float64bits(rv) {
				t.Errorf("%s: %s: range %v, instant %v (present %v)", q, k, rv, iv, ok)
			}
		}
	}
}

func key(lbls map[string]string, at time.Time) string {
	names := make([]string, 0, len(lbls))
	for n := range lbls {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s=%q,", n, lbls[n])
	}
	return b.String() + "@" + at.Format(time.RFC3339Nano)
}

// 30 days of 15 s data load (series after series, so later series go back
// 30 days behind the head's newest sample) and query correctly.
func TestThirtyDays(t *testing.T) {
	const step = 15 * time.Second
	n := int(30 * 24 * time.Hour / step)
	var buf bytes.Buffer
	buf.WriteString("# TYPE c counter\n")
	for _, inst := range []string{"a", "b"} {
		for i := range n {
			fmt.Fprintf(&buf, "c_total{i=%q} %d %d\n", inst, i*3, day0.Add(time.Duration(i)*step).Unix())
		}
	}
	// A series that exists only on the last day, and one only on the first.
	fmt.Fprintf(&buf, "# TYPE g gauge\ng{when=\"last\"} 1 %d\ng{when=\"first\"} 2 %d\n# EOF\n",
		day0.Add(29*24*time.Hour).Unix(), day0.Unix())
	db := openLoaded(t, buf.Bytes())

	for _, at := range []time.Time{day0.Add(10 * time.Minute), day0.Add(15 * 24 * time.Hour), day0.Add(30*24*time.Hour - time.Minute)} {
		if got := queryOne(t, db, `sum(rate(c_total[5m]))`, at); !near(got, 2*3.0/15) {
			t.Errorf("rate at %s = %v, want 0.4", at, got)
		}
	}
	last := day0.Add(time.Duration(n-1) * step)
	if got := queryOne(t, db, `count_over_time(c_total{i="b"}[31d])`, last); got != float64(n) {
		t.Errorf("count_over_time over 30 d = %v, want %d", got, n)
	}
	if got := queryOne(t, db, `g{when="first"}`, day0.Add(time.Minute)); got != 2 {
		t.Errorf("first-day gauge = %v", got)
	}
	m, err := db.QueryRange(context.Background(), `sum(increase(c_total[1h]))`, day0.Add(time.Hour), last, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || len(m[0].Points) != 30*24-1 {
		t.Fatalf("range over 30 d: %d series, want 1 with %d points", len(m), 30*24-1)
	}
	for _, p := range m[0].Points {
		if !near(p.V, 2*3*240) {
			t.Fatalf("increase at %s = %v, want 1440", p.T, p.V)
		}
	}
}

func TestQueryResultShapes(t *testing.T) {
	db := openLoaded(t, []byte("a NaN 1700000000\nb +Inf 1700000000\n# EOF\n"))
	ctx := context.Background()
	at := base.Add(time.Second)
	for q, want := range map[string]float64{"1+1": 2, "0/0": math.NaN(), "scalar(b)": math.Inf(1), "a": math.NaN()} {
		v, err := db.Query(ctx, q, at)
		if err != nil || len(v) != 1 || !v[0].T.Equal(at) {
			t.Fatalf("%s = %v, %v; want one sample at %s", q, v, err, at)
		}
		if got := v[0].V; math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Errorf("%s = %v, want %v", q, got, want)
		}
	}
	m, err := db.QueryRange(ctx, "1+1", base, base.Add(time.Minute), 30*time.Second)
	if err != nil || len(m) != 1 || m[0].Labels != nil || len(m[0].Points) != 3 {
		t.Fatalf("range scalar = %+v, %v", m, err)
	}
	if v, err := db.Query(ctx, "nothing_here", at); err != nil || v == nil || len(v) != 0 {
		t.Errorf("empty result = %#v, %v; want an empty, non-nil vector", v, err)
	}
}

func TestQueryErrors(t *testing.T) {
	var logs bytes.Buffer
	db, err := Open(Options{Dir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.LoadOpenMetrics(bytes.NewReader(shared24h(t))); err != nil {
		t.Fatal(err)
	}
	noon := day0.Add(12 * time.Hour)
	bg := context.Background()
	canceled, cancel := context.WithCancel(bg)
	cancel()
	expired, cancel2 := context.WithDeadline(bg, noon) // long past
	defer cancel2()

	tests := []struct {
		name  string
		ctx   context.Context
		query string
		want  string // substring of the error
		also  error  // errors.Is must hold too
	}{
		{"parse error", bg, `rate(x[5m]`, "parse error", nil},
		{"engine error", bg, `http_requests_total + on(version) http_requests_total`, "many-to-many", nil},
		{"warning: invalid quantile", bg, `histogram_quantile(1.5, rate(http_request_duration_seconds_bucket[5m]))`, "warnings: PromQL warning: quantile value should be between 0 and 1", nil},
		{"range vector from instant query", bg, `up[5m]`, "range vector", nil},
		{"string result", bg, `"hello"`, "unsupported result type string", nil},
		{"canceled", canceled, `up`, "canceled", context.Canceled},
		{"deadline", expired, `up`, "timed out", context.DeadlineExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := db.Query(tc.ctx, tc.query, noon)
			if !errors.Is(err, rewind.ErrQuery) || !strings.Contains(err.Error(), tc.want) || v != nil {
				t.Fatalf("got %v, %v; want nil and an ErrQuery containing %q", v, err, tc.want)
			}
			if tc.also != nil && !errors.Is(err, tc.also) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.also)
			}
		})
	}

	// An info annotation does not fail the query; it is logged.
	if _, err := db.Query(bg, `rate(process_resident_memory_bytes[5m])`, noon); err != nil {
		t.Errorf("info annotation failed the query: %v", err)
	}
	if !strings.Contains(logs.String(), "might not be a counter") {
		t.Errorf("info annotation not logged; logs:\n%s", logs.String())
	}

	if _, err := db.QueryRange(bg, `up`, noon, noon, 0); !errors.Is(err, rewind.ErrQuery) {
		t.Errorf("zero step: %v", err)
	}
	if _, err := db.QueryRange(bg, `up`, noon, noon.Add(-time.Second), time.Second); !errors.Is(err, rewind.ErrQuery) {
		t.Errorf("end before start: %v", err)
	}
	if _, err := db.QueryRange(bg, `histogram_quantile(2, rate(http_request_duration_seconds_bucket[5m]))`, noon, noon.Add(time.Hour), time.Minute); !errors.Is(err, rewind.ErrQuery) {
		t.Errorf("range warning: %v", err)
	}
	if _, err := db.QueryRange(bg, `sort(up)`, noon, noon.Add(time.Hour), time.Minute); err != nil {
		t.Errorf("sort() in a range query failed: %v", err)
	}
	if !strings.Contains(logs.String(), "sort is ineffective") {
		t.Errorf("sort() warning not seen; logs:\n%s", logs.String())
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Query(bg, `up`, noon); !errors.Is(err, rewind.ErrQuery) || !errors.Is(err, ErrClosed) {
		t.Errorf("query after close: %v", err)
	}
}

// Options.QueryTimeout bounds a query even when the caller's context does not.
func TestQueryTimeout(t *testing.T) {
	db, err := Open(Options{Dir: t.TempDir(), QueryTimeout: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.LoadOpenMetrics(bytes.NewReader(shared24h(t))); err != nil {
		t.Fatal(err)
	}
	_, err = db.QueryRange(context.Background(), `sum by (le) (rate(http_request_duration_seconds_bucket[5m]))`,
		day0, day0.Add(24*time.Hour), 15*time.Second)
	if !errors.Is(err, rewind.ErrQuery) || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("got %v, want a timeout", err)
	}
}
