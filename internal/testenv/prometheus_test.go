package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// apiResult is the part of an instant-query answer these tests read.
type apiResult struct {
	Status string `json:"status"`
	Data   struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	} `json:"data"`
}

func instantQuery(t *testing.T, base, query string, at time.Time) apiResult {
	t.Helper()
	params := url.Values{"query": {query}}
	if !at.IsZero() {
		params.Set("time", fmt.Sprint(at.Unix()))
	}
	resp, err := http.Get(base + "/api/v1/query?" + params.Encode())
	if err != nil {
		t.Fatalf("query %q: %v", query, err)
	}
	defer resp.Body.Close()
	var r apiResult
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("query %q: decoding: %v", query, err)
	}
	if resp.StatusCode != http.StatusOK || r.Status != "success" {
		t.Fatalf("query %q: HTTP %d, status %q", query, resp.StatusCode, r.Status)
	}
	return r
}

func TestStartPrometheusLoadsHistory(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	var om OpenMetrics
	for i := range 11 {
		at := t0.Add(time.Duration(i) * 30 * time.Second)
		om.Counter("http_requests", map[string]string{"version": "canary"}, at, float64(10*i))
		om.Counter("http_requests", map[string]string{"version": "baseline"}, at, float64(20*i))
	}
	p := StartPrometheus(t, om.Bytes())

	r := instantQuery(t, p.URL, "http_requests_total", t0.Add(5*time.Minute))
	got := map[string]string{}
	for _, s := range r.Data.Result {
		got[s.Metric["version"]] = fmt.Sprint(s.Value[1])
	}
	if len(got) != 2 || got["canary"] != "100" || got["baseline"] != "200" {
		t.Errorf("http_requests_total at t0+5m = %v, want canary 100, baseline 200", got)
	}
	// Long after the last sample, the lookback delta (5m) finds nothing.
	if r := instantQuery(t, p.URL, "http_requests_total", t0.Add(time.Hour)); len(r.Data.Result) != 0 {
		t.Errorf("an hour after the history: %d series, want none", len(r.Data.Result))
	}
}

func TestStartPrometheusEmpty(t *testing.T) {
	p := StartPrometheus(t, nil)
	if r := instantQuery(t, p.URL, "vector(1)", time.Time{}); len(r.Data.Result) != 1 {
		t.Errorf("vector(1) on an empty server: %d samples, want 1", len(r.Data.Result))
	}
	p.Stop()
	p.Stop() // idempotent
	if _, err := http.Get(p.URL + "/-/ready"); err == nil {
		t.Error("server still answers after Stop")
	}
}

func TestStartPrometheusScraping(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintln(w, "# TYPE demo_value gauge")
		fmt.Fprintln(w, "demo_value 42")
	}))
	defer target.Close()
	p := StartPrometheusScraping(t, []string{strings.TrimPrefix(target.URL, "http://")}, 200*time.Millisecond)

	// Wait, bounded, for the first scrape to land.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		r := instantQuery(t, p.URL, `demo_value{job="test"}`, time.Time{})
		if len(r.Data.Result) == 1 && fmt.Sprint(r.Data.Result[0].Value[1]) == "42" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("demo_value never scraped; last answer %+v", r)
		case <-tick.C:
		}
	}
}

func TestLaunchReportsPortRace(t *testing.T) {
	bin := lookBinary(t, "prometheus", "prometheus")
	busy := httptest.NewServer(http.NotFoundHandler())
	defer busy.Close()
	addr := strings.TrimPrefix(busy.URL, "http://")
	dir := t.TempDir()
	_, err := launchServer("prometheus", bin, dir, addr, "--config.file=/dev/null", "--storage.tsdb.path="+dir, "--web.listen-address="+addr)
	if !errors.Is(err, errAddrInUse) {
		t.Fatalf("launch on a busy port: %v, want errAddrInUse", err)
	}
}

// recordingTB records Skip and Fatal instead of ending the test.
type recordingTB struct {
	testing.TB
	skipped, failed string
}

type stopped struct{}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Skip(args ...any) {
	r.skipped = fmt.Sprint(args...)
	panic(stopped{})
}
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	panic(stopped{})
}

func lookMissing(tb *recordingTB) {
	defer func() {
		if r := recover(); r != nil && r != (stopped{}) {
			panic(r)
		}
	}()
	lookBinary(tb, "rewind-no-such-binary", "no-such-package")
}

func TestLookBinaryMissing(t *testing.T) {
	t.Setenv("CI", "")
	local := &recordingTB{TB: t}
	lookMissing(local)
	if local.failed != "" || !strings.Contains(local.skipped, "rewind-no-such-binary not found") {
		t.Errorf("without CI: skipped %q, failed %q; want a skip naming the binary", local.skipped, local.failed)
	}
	t.Setenv("CI", "true")
	ci := &recordingTB{TB: t}
	lookMissing(ci)
	if ci.skipped != "" || !strings.Contains(ci.failed, "CI must not skip") {
		t.Errorf("with CI: skipped %q, failed %q; want a failure", ci.skipped, ci.failed)
	}
}
