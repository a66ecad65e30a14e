package observe

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
)

func TestProbe(t *testing.T) {
	var status atomic.Int32
	var slow atomic.Bool
	status.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slow.Load() {
			time.Sleep(300 * time.Millisecond) // the simulated slow endpoint's latency
		}
		w.WriteHeader(int(status.Load()))
		w.Write([]byte(`{"status":"ok"}`))
	}))
	defer srv.Close()
	p, err := policy.Parse("p.yaml", []byte(`apiVersion: rewind/v1
kind: Policy
systems:
  - name: s
    canary:   { selector: 'version="canary"' }
    baseline: { selector: 'version="baseline"' }
    triggers:
      - name: health
        probe: { url: '`+srv.URL+`/healthz', maxLatency: 200ms, timeout: 1s, bodyMatch: '"status":"ok"' }
        for: 10s
`))
	if err != nil {
		t.Fatal(err)
	}
	sys := p.Systems[0]
	run := func(at time.Time) rewind.Observation {
		return Cycle(context.Background(), staticEmpty{}, sys, at, 0)[0]
	}
	if o := run(time.Now()); o.Outcome != rewind.OutcomeFalse || o.Canary == nil {
		t.Fatalf("healthy: %+v", o)
	}
	status.Store(503)
	if o := run(time.Now()); o.Outcome != rewind.OutcomeTrue || !strings.Contains(o.Reason, "503") {
		t.Fatalf("503: %+v", o)
	}
	status.Store(200)
	slow.Store(true)
	if o := run(time.Now()); o.Outcome != rewind.OutcomeTrue || !strings.Contains(o.Reason, "over 200ms") {
		t.Fatalf("slow: %+v", o)
	}
	slow.Store(false)
	if o := run(time.Now().Add(-time.Hour)); o.Outcome != rewind.OutcomeNoData {
		t.Fatalf("a replay of the past has no probe data: %+v", o)
	}
	srv.Close()
	if o := run(time.Now()); o.Outcome != rewind.OutcomeTrue || !strings.Contains(o.Reason, "failed") {
		t.Fatalf("no answer is an unhealthy canary: %+v", o)
	}
}

type staticEmpty struct{}

func (staticEmpty) Query(context.Context, string, time.Time) (rewind.Vector, error) { return nil, nil }
