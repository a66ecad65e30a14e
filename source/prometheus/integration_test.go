package prometheus

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/internal/testenv"
)

// The history served by the real Prometheus: counters sampled every 15s for
// 4h from t0, at constant rates, and a gauge that turns NaN.
var (
	t0         = time.Unix(1700000000, 0).UTC()
	historyLen = 4 * time.Hour
	scrape     = 15 * time.Second
	rates      = map[[2]string]float64{ // {version, status} -> requests per second
		{"canary", "200"}:   9,
		{"canary", "500"}:   1,
		{"baseline", "200"}: 20,
	}
)

func history() []byte {
	var om testenv.OpenMetrics
	for at := t0; !at.After(t0.Add(historyLen)); at = at.Add(scrape) {
		elapsed := at.Sub(t0).Seconds()
		for k, rate := range rates {
			om.Counter("http_requests", map[string]string{"version": k[0], "status": k[1]}, at, rate*elapsed)
		}
		depth := 3.0
		if at.Sub(t0) >= time.Hour {
			depth = math.NaN()
		}
		om.Gauge("queue_depth", map[string]string{"version": "canary"}, at, depth)
	}
	return om.Bytes()
}

func startHistory(t *testing.T) *Client {
	t.Helper()
	p := testenv.StartPrometheus(t, history())
	return mustNew(t, Config{URL: p.URL, Timeout: 30 * time.Second})
}

func byLabel(t *testing.T, v rewind.Vector, name string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, s := range v {
		out[s.Labels[name]] = s.V
	}
	if len(out) != len(v) {
		t.Fatalf("label %q does not tell the %d series apart: %v", name, len(v), v)
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestIntegrationQuery(t *testing.T) {
	c := startHistory(t)
	ctx := context.Background()
	at := t0.Add(10 * time.Minute)

	v, err := c.Query(ctx, "http_requests_total", at)
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != 3 {
		t.Fatalf("%d series, want 3: %v", len(v), v)
	}
	for _, s := range v {
		want := rates[[2]string{s.Labels["version"], s.Labels["status"]}] * 600
		if s.Labels["__name__"] != "http_requests_total" || !near(s.V, want) || !s.T.Equal(at) {
			t.Errorf("sample %+v, want value %v at %s", s, want, at)
		}
	}

	v, err = c.Query(ctx, `sum by (version) (rate(http_requests_total[5m]))`, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got := byLabel(t, v, "version"); len(got) != 2 || !near(got["canary"], 10) || !near(got["baseline"], 20) {
		t.Errorf("request rates %v, want canary 10, baseline 20", got)
	}

	v, err = c.Query(ctx, `sum by (version) (rate(http_requests_total{status="500"}[5m])) / sum by (version) (rate(http_requests_total[5m]))`, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got := byLabel(t, v, "version"); len(got) != 1 || !near(got["canary"], 0.1) {
		t.Errorf("error ratio %v, want canary 0.1 only", got)
	}

	v, err = c.Query(ctx, `scalar(sum(http_requests_total{version="baseline"}))`, at)
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != 1 || len(v[0].Labels) != 0 || !near(v[0].V, 12000) {
		t.Errorf("scalar %v, want one unlabelled sample 12000", v)
	}

	v, err = c.Query(ctx, "queue_depth", t0.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != 1 || !math.IsNaN(v[0].V) {
		t.Errorf("queue_depth %v, want NaN passed through", v)
	}

	// Past the end of the history plus the 5m lookback there is no data.
	v, err = c.Query(ctx, "http_requests_total", t0.Add(historyLen+6*time.Minute))
	if err != nil || v == nil || len(v) != 0 {
		t.Errorf("after the history: %v, %v; want an empty vector", v, err)
	}
}

func TestIntegrationQueryFailures(t *testing.T) {
	c := startHistory(t)
	ctx := context.Background()

	_, err := c.Query(ctx, "sum(", t0)
	qe := wantQueryError(t, err, "sum(", KindHTTP, "bad_data")
	if qe.Status != 400 || qe.ErrorType != "bad_data" {
		t.Errorf("bad query: status %d, errorType %q", qe.Status, qe.ErrorType)
	}

	_, err = c.Query(ctx, "http_requests_total[1m]", t0.Add(time.Hour))
	wantQueryError(t, err, "http_requests_total[1m]", KindResultType, `"matrix"`)

	_, err = c.QueryRange(ctx, `"a string"`, t0, t0.Add(time.Minute), time.Minute)
	wantQueryError(t, err, `"a string"`, KindHTTP, "bad_data")
}

func TestIntegrationQueryRange(t *testing.T) {
	c := startHistory(t)
	ctx := context.Background()

	m, err := c.QueryRange(ctx, `http_requests_total{version="canary"}`, t0, t0.Add(30*time.Minute), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || m[0].Labels["status"] != "200" || m[1].Labels["status"] != "500" {
		t.Fatalf("series %v, want canary status 200 and 500, sorted", m)
	}
	for _, s := range m {
		rate := rates[[2]string{"canary", s.Labels["status"]}]
		if len(s.Points) != 31 {
			t.Errorf("%v: %d points, want 31", s.Labels, len(s.Points))
		}
		for i, p := range s.Points {
			wantT := t0.Add(time.Duration(i) * time.Minute)
			if !p.T.Equal(wantT) || !near(p.V, rate*60*float64(i)) {
				t.Errorf("%v point %d = %v, want %v at %s", s.Labels, i, p, rate*60*float64(i), wantT)
			}
		}
	}
}

// Four hours at 1s are 14 401 points: more than one Prometheus request
// may return (11 000), so the client must split and merge.
func TestIntegrationQueryRangeSplits(t *testing.T) {
	c := startHistory(t)
	m, err := c.QueryRange(context.Background(), "sum(http_requests_total)", t0, t0.Add(historyLen), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 {
		t.Fatalf("%d series, want 1", len(m))
	}
	points := m[0].Points
	if len(points) != 14401 {
		t.Fatalf("%d points, want 14401", len(points))
	}
	for i, p := range points {
		// The last sample at or before t: scraped every 15s, 30 req/s in all.
		wantV := 30 * float64(i/15*15)
		if wantT := t0.Add(time.Duration(i) * time.Second); !p.T.Equal(wantT) || !near(p.V, wantV) {
			t.Fatalf("point %d = %v, want %v at %s", i, p, wantV, wantT)
		}
	}
}
