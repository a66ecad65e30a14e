package embedded

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// demoTarget is a /metrics endpoint served by client_golang, as the demo's
// services are; fail makes it answer 500.
type demoTarget struct {
	srv      *httptest.Server
	requests *prometheus.CounterVec
	fail     atomic.Bool
}

func newDemoTarget(t *testing.T, openMetrics bool) *demoTarget {
	t.Helper()
	reg := prometheus.NewRegistry()
	d := &demoTarget{requests: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_requests_total", Help: "Requests.",
	}, []string{"status", "job"})}
	reg.MustRegister(d.requests)
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: openMetrics})
	d.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.fail.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(d.srv.Close)
	return d
}

func TestScrape(t *testing.T) {
	for _, om := range []bool{false, true} {
		name := "text format"
		if om {
			name = "OpenMetrics"
		}
		t.Run(name, func(t *testing.T) { testScrape(t, om) })
	}
}

func testScrape(t *testing.T, openMetrics bool) {
	db := openDB(t)
	ctx := context.Background()
	d := newDemoTarget(t, openMetrics)
	target := map[string]string{"job": "demo", "version": "canary"}
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	host := mustHost(t, d.srv.URL)

	scrape := func(i int) (int, error) {
		return db.Scrape(ctx, d.srv.URL+"/metrics", target, t0.Add(time.Duration(i)*5*time.Second))
	}
	d.requests.WithLabelValues("200", "inner").Add(10)
	d.requests.WithLabelValues("500", "inner").Add(1)
	for i := range 4 {
		n, err := scrape(i)
		if err != nil || n != 2 {
			t.Fatalf("scrape %d: %d samples, %v", i, n, err)
		}
		d.requests.WithLabelValues("200", "inner").Add(50)
	}
	at := t0.Add(15 * time.Second)
	sel := `http_requests_total{job="demo",version="canary",status="200",exported_job="inner",instance="` + host + `"}`
	if got := queryOne(t, db, sel, at); got != 160 {
		t.Errorf("%s = %v, want 160", sel, got)
	}
	if got := queryOne(t, db, `irate(http_requests_total{status="200"}[1m])`, at); !near(got, 10) {
		t.Errorf("irate = %v, want 10", got)
	}
	if got := queryOne(t, db, `up{job="demo",version="canary"}`, at); got != 1 {
		t.Errorf("up = %v, want 1", got)
	}
	if got := queryOne(t, db, `count({__name__=~".+"})`, at); got != 3 {
		t.Errorf("series = %v, want 3 (two counters and up; no _created)", got)
	}

	// A series that vanishes is marked stale at the next scrape.
	d.requests.DeleteLabelValues("500", "inner")
	if _, err := scrape(4); err != nil {
		t.Fatal(err)
	}
	at = t0.Add(20 * time.Second)
	if v, err := db.Query(ctx, `http_requests_total{status="500"}`, at); err != nil || len(v) != 0 {
		t.Errorf("vanished series = %v, %v; want stale (no sample)", v, err)
	}

	// A failed scrape writes up=0 and marks everything stale.
	d.fail.Store(true)
	if n, err := scrape(5); err == nil || n != 0 || !strings.Contains(err.Error(), "500") {
		t.Fatalf("failed scrape: %d, %v", n, err)
	}
	at = t0.Add(25 * time.Second)
	if got := queryOne(t, db, `up`, at); got != 0 {
		t.Errorf("up after failure = %v, want 0", got)
	}
	if v, err := db.Query(ctx, `http_requests_total`, at); err != nil || len(v) != 0 {
		t.Errorf("series after failure = %v, %v; want stale", v, err)
	}

	// Recovery.
	d.fail.Store(false)
	if _, err := scrape(6); err != nil {
		t.Fatal(err)
	}
	if got := queryOne(t, db, `up`, t0.Add(30*time.Second)); got != 1 {
		t.Errorf("up after recovery = %v", got)
	}
}

func TestScrapeErrors(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, u := range []string{"", "not a url", "ftp://x/metrics", "http:///metrics"} {
		if _, err := db.Scrape(ctx, u, nil, now); err == nil {
			t.Errorf("Scrape(%q) succeeded", u)
		}
	}
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte("ok_metric 1\nbroken{ 2\n"))
	}))
	defer bad.Close()
	if _, err := db.Scrape(ctx, bad.URL, map[string]string{"job": "bad"}, now); err == nil {
		t.Fatal("unparsable exposition accepted")
	}
	// Nothing of the bad exposition is stored, but up=0 is.
	if v, err := db.Query(ctx, `ok_metric`, now); err != nil || len(v) != 0 {
		t.Errorf("partial exposition stored: %v, %v", v, err)
	}
	if got := queryOne(t, db, `up{job="bad"}`, now); got != 0 {
		t.Errorf("up = %v, want 0", got)
	}
	// A canceled context fails the scrape.
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := db.Scrape(canceled, bad.URL, nil, now.Add(time.Second)); err == nil {
		t.Error("scrape with a canceled context succeeded")
	}
}

func mustHost(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}
