package cli

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rewind-sre/rewind/internal/testenv"
)

// exporter serves http_requests_total for a healthy canary and baseline,
// growing every 100 ms, until the test ends.
func exporter(t *testing.T) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	req := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "http_requests_total", Help: "requests"}, []string{"version", "status"})
	reg.MustRegister(req)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: time.Second}
	go srv.Serve(ln)
	stop := make(chan struct{})
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				req.WithLabelValues("canary", "200").Add(2)
				req.WithLabelValues("baseline", "200").Add(8)
			}
		}
	}()
	t.Cleanup(func() { close(stop); srv.Close() })
	return ln.Addr().String()
}

// TestServeBlindWhenPrometheusStops: with Prometheus stopped nothing is
// rolled back, and the system is reported blind within three intervals.
func TestServeBlindWhenPrometheusStops(t *testing.T) {
	prom := testenv.StartPrometheusScraping(t, []string{exporter(t)}, time.Second)
	waitForMetrics(t, prom.URL)
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	os.WriteFile(pol, []byte(`apiVersion: rewind/v1
kind: Policy
systems:
  - name: web
    interval: 1s
    prometheus: { url: `+prom.URL+`, timeout: 2s }
    canary:   { selector: 'version="canary"' }
    baseline: { selector: 'version="baseline"' }
    triggers:
      - name: error-rate-high
        judge:
          test: proportion
          bad:   'sum(increase(http_requests_total{status=~"5..", {{selector}} }[1m]))'
          total: 'sum(increase(http_requests_total{ {{selector}} }[1m]))'
          minEffect: 1.5
        for: 0s
    rollback:
      exec:
        undo: { command: ["/bin/false"] }
`), 0o644)
	base, logs := startServe(t, "--policy", pol, "--listen", "127.0.0.1:0", "--store", filepath.Join(dir, "r.db"), "--open-reads")
	waitFor(t, 30*time.Second, "evaluations", func() (string, bool) {
		_, m := call(t, "GET", base+"/metrics", "", "")
		return "", strings.Contains(m, `rewind_system_blind{system="web"} 0`)
	})
	prom.Stop()
	stopped := time.Now()
	waitFor(t, 3*time.Second+2*time.Second, "the system reported blind within 3 intervals", func() (string, bool) {
		_, m := call(t, "GET", base+"/metrics", "", "")
		return "", strings.Contains(m, `rewind_system_blind{system="web"} 1`)
	})
	t.Logf("blind %s after Prometheus stopped", time.Since(stopped).Round(100*time.Millisecond))
	if code, body := call(t, "GET", base+"/readyz", "", ""); code != 503 || !strings.Contains(body, "prometheus "+prom.URL) || !strings.Contains(body, "(systems: web)") {
		t.Fatalf("readyz must name Prometheus as down: %d %s", code, body)
	}
	if _, body := call(t, "GET", base+"/api/v1/rollbacks", "", ""); !strings.Contains(body, `"rollbacks": []`) {
		t.Fatalf("a blind system must never be rolled back: %s", body)
	}
	if !strings.Contains(logs.String(), "BLIND") {
		t.Fatalf("the log must say loudly that the system is blind:\n%s", logs)
	}
}
