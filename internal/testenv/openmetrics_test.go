package testenv

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestOpenMetricsBytes(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	var om OpenMetrics
	// Added out of time order on purpose: Bytes sorts each series.
	om.Counter("http_requests", map[string]string{"version": "canary", "status": "200"}, t0.Add(30*time.Second), 31)
	om.Counter("http_requests_total", map[string]string{"version": "canary", "status": "200"}, t0, 1)
	om.Gauge("temp", nil, t0.Add(123*time.Millisecond), math.NaN())
	om.Gauge("temp", nil, t0.Add(time.Second), math.Inf(+1))
	om.Gauge("note", map[string]string{"text": "a \"b\" \\ c\nd"}, t0, -1.5)
	om.Histogram("latency_seconds", map[string]string{"version": "canary"}, t0,
		map[float64]float64{0.5: 3, 0.1: 1}, 4, 1.25)

	want := `# TYPE http_requests counter
http_requests_total{status="200",version="canary"} 1 1700000000
http_requests_total{status="200",version="canary"} 31 1700000030
# TYPE temp gauge
temp NaN 1700000000.123
temp +Inf 1700000001
# TYPE note gauge
note{text="a \"b\" \\ c\nd"} -1.5 1700000000
# TYPE latency_seconds histogram
latency_seconds_bucket{le="0.1",version="canary"} 1 1700000000
latency_seconds_bucket{le="0.5",version="canary"} 3 1700000000
latency_seconds_bucket{le="+Inf",version="canary"} 4 1700000000
latency_seconds_count{version="canary"} 4 1700000000
latency_seconds_sum{version="canary"} 1.25 1700000000
# EOF
`
	if got := string(om.Bytes()); got != want {
		t.Errorf("Bytes() =\n%s\nwant\n%s", got, want)
	}
}

func TestOpenMetricsEmpty(t *testing.T) {
	var om OpenMetrics
	if got := string(om.Bytes()); got != "# EOF\n" {
		t.Errorf("empty Bytes() = %q", got)
	}
}

func TestOpenMetricsMisusePanics(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	for name, misuse := range map[string]func(*OpenMetrics){
		"invalid metric name": func(o *OpenMetrics) { o.Gauge("1bad", nil, t0, 1) },
		"invalid label name":  func(o *OpenMetrics) { o.Gauge("g", map[string]string{"a-b": "x"}, t0, 1) },
		"before 1970":         func(o *OpenMetrics) { o.Gauge("g", nil, time.Unix(-1, 0), 1) },
		"two types": func(o *OpenMetrics) {
			o.Gauge("x", nil, t0, 1)
			o.Counter("x", nil, t0, 1)
		},
		"duplicate timestamp": func(o *OpenMetrics) {
			o.Gauge("g", nil, t0, 1)
			o.Gauge("g", nil, t0, 2)
		},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil {
					t.Fatal("no panic")
				}
				if !strings.HasPrefix(r.(string), "testenv.OpenMetrics: ") {
					t.Errorf("panic %v does not name the helper", r)
				}
			}()
			misuse(&OpenMetrics{})
		})
	}
}
