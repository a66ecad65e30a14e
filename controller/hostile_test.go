package controller

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/policy"
	promsource "github.com/rewind-sre/rewind/source/prometheus"
	"github.com/rewind-sre/rewind/store/sqlite"
)

// hostile answers every query of a system's series with v (+Inf, NaN),
// with a body of a gigabyte, or not at all.
func hostile(mode string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm() // read the body, so that a client hanging up ends r.Context()
		w.Header().Set("Content-Type", "application/json")
		switch mode {
		case "+Inf", "NaN", "-Inf":
			var samples []string
			for i := range 100 {
				for _, side := range []string{"canary", "baseline"} {
					for _, le := range []string{"", `,"le":"+Inf"`, `,"le":"0.1"`} {
						samples = append(samples, fmt.Sprintf(`{"metric":{"system":"s%d","version":"%s"%s},"value":[1767225600,"%s"]}`, i, side, le, mode))
					}
				}
			}
			_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[` + strings.Join(samples, ",") + `]}}`))
		case "1GiB":
			_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"system":"`))
			chunk := []byte(strings.Repeat("x", 1<<20))
			for range 1 << 10 {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		case "1GiB-of-samples":
			_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[`))
			for i := 0; i < 20<<20; i++ {
				if _, err := fmt.Fprintf(w, `{"metric":{"system":"s%d","version":"canary","pod":"p%d"},"value":[1767225600,"1"]},`, i%100, i); err != nil {
					return
				}
			}
		case "silent":
			<-r.Context().Done()
		}
	}
}

// TestHostilePrometheusNeverRollsBack: a Prometheus that answers +Inf,
// NaN, a gigabyte or nothing makes the built-in policy's 100 systems
// degraded or short of data — never a rollback, never a panic — and the
// heap stays below 192 MiB.
func TestHostilePrometheusNeverRollsBack(t *testing.T) {
	for _, mode := range []string{"+Inf", "NaN", "-Inf", "1GiB", "1GiB-of-samples", "silent"} {
		t.Run(mode, func(t *testing.T) {
			api := httptest.NewServer(hostile(mode))
			defer api.Close()
			ctx := context.Background()
			st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rewind.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			pol := fleetOfBuiltIn(t, api.URL, 100)
			metrics := NewMetrics(prometheus.NewRegistry(), "test")
			c := actingController(t, pol, st, metrics, time.Second)
			runtime.GC() // the peak is of this subtest's heap
			var peak atomic.Uint64
			stop := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				var m runtime.MemStats
				for {
					runtime.ReadMemStats(&m)
					if m.HeapInuse > peak.Load() {
						peak.Store(m.HeapInuse)
					}
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			}()
			at := time.Unix(1767225600, 0)
			for i := range 3 {
				for _, b := range batches(c.systems(), DefaultBatchSystems) {
					b.every = 5 * time.Second // the cycle's bound; the silent server outlasts the query timeout
					c.cycle(ctx, b, at.Add(time.Duration(i)*30*time.Second))
				}
			}
			c.Wait()
			close(stop)
			<-sampled
			rbs, err := st.List(ctx, plan.ListOptions{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			if len(rbs) > 0 {
				t.Fatalf("%d rollbacks, the first on %s: %v", len(rbs), rbs[0].System, rbs[0].Reason)
			}
			if n := testutil.CollectAndCount(metrics.Panics); n > 0 {
				t.Fatalf("%d panics", n)
			}
			states := map[rewind.TriggerState]int{}
			for _, s := range c.Systems() {
				for _, tr := range s.Triggers {
					states[tr.State]++
				}
			}
			if states[rewind.StateFiring] > 0 || states[rewind.StatePending] > 0 {
				t.Errorf("trigger states %v", states)
			}
			// 8 queries in flight, each at most 20 000 decoded series or a
			// 256 KiB token, garbage included.
			if p := peak.Load(); p > 192<<20 {
				t.Errorf("heap in use reached %d MiB", p>>20)
			}
			t.Logf("%s: trigger states %v, heap in use at most %d MiB", mode, states, peak.Load()>>20)
		})
	}
}

// actingController is an acting controller of pol journaling to st,
// reading Prometheus through a fresh client pool (a fresh backoff each
// time) with the query timeout.
func actingController(t testing.TB, pol *policy.Policy, st *sqlite.Store, metrics *Metrics, timeout time.Duration) *Controller {
	t.Helper()
	pool := promsource.NewPool()
	build := func(sys *policy.System) (*plan.Runner, rewind.Source, error) {
		src, err := pool.Client(promsource.Config{URL: sys.Prometheus.URL, Timeout: timeout, MaxInFlight: sys.Prometheus.MaxInFlight})
		return &plan.Runner{Store: st}, src, err
	}
	c, err := New(Options{Policy: pol, Store: st, Build: build, Metrics: metrics, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	c.acting.Store(true)
	return c
}

// fleetOfBuiltIn is the built-in policy for n systems reading url.
func fleetOfBuiltIn(t testing.TB, url string, n int) *policy.Policy {
	t.Helper()
	def := string(policy.Default())
	head, sys, _ := strings.Cut(def, "systems:\n")
	sys = strings.Replace(sys, "url: http://prometheus:9090", "url: "+url, 1)
	var b strings.Builder
	b.WriteString(head + "systems:\n")
	for i := range n {
		s := strings.Replace(sys, "name: dwcp-manager", fmt.Sprintf("name: s%d", i), 1)
		s = strings.Replace(s, `selector: 'version="canary"'`, fmt.Sprintf(`selector: 'system="s%d",version="canary"'`, i), 1)
		s = strings.Replace(s, `selector: 'version="baseline"'`, fmt.Sprintf(`selector: 'system="s%d",version="baseline"'`, i), 1)
		b.WriteString(s)
	}
	p, err := policy.Parse("fleet.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
