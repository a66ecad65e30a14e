package router

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/demo/service"
	"github.com/rewind-sre/rewind/plan/plantest"
)

// backendHeader names the test backend that answered.
const backendHeader = "X-Backend"

func backendServer(t *testing.T, name string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set(backendHeader, name)
		io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// startRouter starts a router in front of two test backends.
func startRouter(t *testing.T, canaryWeight int) *Router {
	t.Helper()
	r, err := Start(t.Context(), Config{Baseline: backendServer(t, "baseline").URL, Canary: backendServer(t, "canary").URL, CanaryWeight: canaryWeight})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return r
}

// send sends n GETs to url, 16 at a time, and counts the answers by the
// backendHeader (or by status code when it is missing).
func send(t *testing.T, url string, n int) map[string]int {
	t.Helper()
	var (
		mu     sync.Mutex
		counts = map[string]int{}
		wg     sync.WaitGroup
		jobs   = make(chan struct{})
	)
	for range 16 {
		wg.Go(func() {
			for range jobs {
				name := get(t, url)
				mu.Lock()
				counts[name]++
				mu.Unlock()
			}
		})
	}
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	return counts
}

// client keeps a connection per sender alive: 16 senders must not open a
// connection per request.
var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

func get(t *testing.T, url string) string {
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Error(err)
		return "error"
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Error(err)
		return "error"
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if name := resp.Header.Get(backendHeader); name != "" {
		return name
	}
	return resp.Status
}

func TestSplitConvergesToTheWeights(t *testing.T) {
	for _, tc := range []struct{ weight, n int }{{0, 200}, {20, 1000}, {50, 1000}, {100, 200}} {
		w, n := tc.weight, tc.n
		r := startRouter(t, w)
		counts := send(t, r.URL(), n)
		p := float64(w) / 100
		sigma := math.Sqrt(float64(n) * p * (1 - p))
		if got, want := float64(counts["canary"]), float64(n)*p; math.Abs(got-want) > 4*sigma {
			t.Errorf("weight %d: %d of %d requests to the canary, want %.0f ± %.0f (%v)", w, counts["canary"], n, want, 4*sigma, counts)
		}
		if counts["canary"]+counts["baseline"] != n {
			t.Errorf("weight %d: answers %v, want %d from the two backends", w, counts, n)
		}
		if b, c := r.Routed(); b != uint64(counts["baseline"]) || c != uint64(counts["canary"]) {
			t.Errorf("Routed() = %d, %d; the backends answered %v", b, c, counts)
		}
	}
}

func TestSetWeights(t *testing.T) {
	r := startRouter(t, 20)
	if b, c := r.Weights(); b != 80 || c != 20 {
		t.Fatalf("Weights() = %d, %d; want 80, 20", b, c)
	}
	for _, w := range [][2]int{{50, 60}, {-1, 101}, {101, -1}, {0, 0}} {
		if err := r.SetWeights(w[0], w[1]); err == nil {
			t.Errorf("SetWeights(%d, %d) accepted", w[0], w[1])
		}
	}
	if err := r.SetWeights(0, 100); err != nil {
		t.Fatal(err)
	}
	if counts := send(t, r.URL(), 50); counts["canary"] != 50 {
		t.Errorf("at canary 100: %v", counts)
	}
	if _, err := Start(t.Context(), Config{Baseline: "http://127.0.0.1:1", Canary: "http://127.0.0.1:2", CanaryWeight: 120}); err == nil {
		t.Error("Start with a canary weight of 120 accepted")
	}
	if _, err := Start(t.Context(), Config{Baseline: "127.0.0.1:1", Canary: "http://127.0.0.1:2"}); err == nil {
		t.Error("Start with a baseline address that is no URL accepted")
	}
}

func TestUnreachableDestinationIs502(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	r, err := Start(t.Context(), Config{Baseline: backendServer(t, "baseline").URL, Canary: down.URL, CanaryWeight: 100})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop(context.Background()) })
	if got := get(t, r.URL()); got != "502 Bad Gateway" {
		t.Errorf("a request to a stopped canary: %s, want 502 Bad Gateway", got)
	}
}

func TestStop(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	r, err := Start(ctx, Config{Baseline: backendServer(t, "baseline").URL, Canary: backendServer(t, "canary").URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop(context.Background()) })
	cancel()
	eventually(t, "the router stops when its context ends", func() bool { return !r.Running() })
	if err := r.Stop(t.Context()); err != nil {
		t.Errorf("Stop after the context ended: %v", err)
	}
}

func TestDrainSuite(t *testing.T) {
	plantest.ExecutorSuite(t, func(t *testing.T) (rewind.Executor, *rewind.Rollback, func() string) {
		r := startRouter(t, 20)
		return Drain{Router: r}, &rewind.Rollback{ID: "rb-1", System: "dwcp-manager"}, func() string {
			b, c := r.Weights()
			return fmt.Sprintf("baseline %d, canary %d", b, c)
		}
	})
}

func TestDrain(t *testing.T) {
	r := startRouter(t, 20)
	d := Drain{Router: r}
	rb := &rewind.Rollback{ID: "rb-1", System: "dwcp-manager"}
	changes, err := d.Plan(t.Context(), rb)
	want := rewind.Change{Target: "router " + r.Addr(), Action: "set weights", Detail: "route canary 20 → 0, baseline 80 → 100"}
	if err != nil || len(changes) != 1 || changes[0] != want {
		t.Fatalf("Plan: %+v, %v; want %+v", changes, err, want)
	}
	res, err := d.Do(t.Context(), rb)
	if err != nil || res.Skipped || res.Facts["fromCanaryWeight"] != "20" {
		t.Fatalf("Do: %+v, %v", res, err)
	}
	if b, c := r.Weights(); b != 100 || c != 0 {
		t.Errorf("after the drain: baseline %d, canary %d", b, c)
	}
	if counts := send(t, r.URL(), 200); counts["canary"] != 0 {
		t.Errorf("the drained router still sends to the canary: %v", counts)
	}
	res, err = d.Do(t.Context(), rb)
	if err != nil || !res.Skipped {
		t.Errorf("second Do: %+v, %v; want skipped", res, err)
	}
	if changes, err := d.Plan(t.Context(), rb); err != nil || len(changes) != 0 {
		t.Errorf("Plan after the drain: %+v, %v; want no changes", changes, err)
	}
}

// TestDrainStopsTheCanarysTraffic runs the real services behind the
// router: after the drain the canary's request counter stops growing.
func TestDrainStopsTheCanarysTraffic(t *testing.T) {
	var svc [2]*service.Service
	for i, v := range []string{"baseline", "canary"} {
		s, err := service.Start(t.Context(), service.Config{Version: v, Median: time.Millisecond, Tick: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Stop(context.Background()) })
		svc[i] = s
	}
	baseline, canary := svc[0], svc[1]
	r, err := Start(t.Context(), Config{Baseline: baseline.URL(), Canary: canary.URL(), CanaryWeight: 50})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop(context.Background()) })
	send(t, r.URL(), 100)
	before := len(canary.Requests())
	if before == 0 || before+len(baseline.Requests()) != 100 {
		t.Fatalf("before the drain: canary %d, baseline %d requests", before, len(baseline.Requests()))
	}
	if _, err := (Drain{Router: r}).Do(t.Context(), &rewind.Rollback{ID: "rb-1"}); err != nil {
		t.Fatal(err)
	}
	send(t, r.URL(), 100)
	if after := len(canary.Requests()); after != before {
		t.Errorf("the canary answered %d requests after the drain", after-before)
	}
}

// eventually polls cond every few milliseconds until it holds, for at most 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
		<-tick.C
	}
}
