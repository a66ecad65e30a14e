package service

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRestartIsANewProcess(t *testing.T) {
	s := start(t, fast("canary"))
	if err := s.SetFault(FaultErrorRate); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFault(FaultMemory); err != nil {
		t.Fatal(err)
	}
	serve(t, s, 50)
	s.advance(10 * time.Second)
	if err := s.Restart("1.4.2"); err != nil {
		t.Fatal(err)
	}
	if s.Release() != "1.4.2" || s.Fault() != FaultNone {
		t.Errorf("after the restart: release %s, fault %s; want 1.4.2, none", s.Release(), s.Fault())
	}
	fs := scrape(t, s.URL())
	if v := fs.value(t, MetricTransactions); v != 0 {
		t.Errorf("transactions = %v after the restart, want 0 (a new process)", v)
	}
	if v := fs.value(t, MetricRequests, "status", "200"); v != 0 {
		t.Errorf("requests = %v after the restart, want 0", v)
	}
	if v := fs.value(t, MetricBuildInfo, "release", "1.4.2"); v != 1 {
		t.Errorf("build info: %v", v)
	}
	if share := fs.value(t, MetricWorkingSet) / fs.value(t, MetricMemoryLimit); share > 0.5 {
		t.Errorf("working set at %.2f of the limit after the restart, want healthy", share)
	}

	prev := s.Previous()
	if prev == nil || prev.Release != "1.5.0" || prev.Fault != FaultMemory {
		t.Fatalf("previous process: %+v", prev)
	}
	pm := parse(t, prev.Metrics)
	if v := pm.value(t, MetricRequests, "status", "200") + pm.value(t, MetricRequests, "status", "500"); v != 50 {
		t.Errorf("previous process's requests %v, want 50", v)
	}
	if v := pm.value(t, MetricTransactions); v != 1000 {
		t.Errorf("previous process's transactions %v, want 1000", v)
	}

	serve(t, s, 1)
	reqs := s.Requests()
	if len(reqs) != 51 || reqs[0].Release != "1.5.0" || reqs[0].Fault != FaultMemory || reqs[50].Release != "1.4.2" {
		t.Errorf("request log across the restart: %d entries, first %v, last %v", len(reqs), reqs[0], reqs[len(reqs)-1])
	}
	if err := s.Restart(""); err == nil {
		t.Error("Restart without a release accepted")
	}
}

func TestRequestLogKeepsTheLastN(t *testing.T) {
	cfg := fast("baseline")
	cfg.LogSize = 5
	s := start(t, cfg)
	for i := range 8 {
		rec := httptest.NewRecorder()
		s.serveWork(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, fmt.Sprintf("/%d", i), nil))
	}
	var paths []string
	for _, r := range s.Requests() {
		paths = append(paths, r.Path)
		if r.Method != http.MethodGet || r.Release != "1.5.0" || r.Fault != FaultNone || r.At.IsZero() {
			t.Errorf("log entry %+v", r)
		}
	}
	if got := strings.Join(paths, " "); got != "/3 /4 /5 /6 /7" {
		t.Errorf("request log %q, want the last 5 oldest first", got)
	}
	line := s.Requests()[0].String()
	if !strings.Contains(line, " GET /3 ") || !strings.Contains(line, "release=1.5.0 fault=none") {
		t.Errorf("log line %q", line)
	}
}

func TestStopIsScaleToZero(t *testing.T) {
	s := start(t, fast("canary"))
	if code, err := get(t, s.URL()+"/"); err != nil || code != http.StatusOK {
		t.Fatalf("GET / before Stop: %d %v", code, err)
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s.Running() {
		t.Error("Running after Stop")
	}
	if _, err := get(t, s.URL()+"/metrics"); err == nil {
		t.Error("a stopped service still answers")
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if v := gathered(t, s).value(t, MetricRequests, "status", "200"); v != 1 {
		t.Errorf("frozen metrics of the stopped service: %v requests, want 1", v)
	}
}

func TestStopsWhenItsContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	s, err := Start(ctx, fast("canary"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(context.Background()) })
	cancel()
	eventually(t, "the service stops", func() bool { return !s.Running() })
	eventually(t, "its port closes", func() bool { _, err := get(t, s.URL()+"/"); return err != nil })
}
