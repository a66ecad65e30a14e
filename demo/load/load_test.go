package load

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRate(t *testing.T) {
	var served atomic.Uint64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served.Add(1) }))
	t.Cleanup(srv.Close)
	const rate = 200
	g, err := New(Config{URL: srv.URL, Rate: rate})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	start := time.Now()
	if err := g.Run(ctx); err != nil {
		t.Fatal(err)
	}
	end, _ := ctx.Deadline()
	st := g.Stats()
	want := rate * end.Sub(start).Seconds()
	if got := float64(st.Due); got < 0.9*want || got > 1.1*want+1 {
		t.Errorf("%d requests due in %v, want %.0f ± 10 %% (%d a second)", st.Due, end.Sub(start), want, rate)
	}
	// The pool keeps up, loosely: on a starved machine requests still
	// queued at the end are not sent.
	if st.Sent < st.Due*3/4 || st.Dropped != 0 {
		t.Errorf("stats %+v: want most requests due sent, none dropped", st)
	}
	if st.OK+st.Aborted != st.Sent || st.Errors != 0 {
		t.Errorf("stats %+v: want every request sent answered OK (or cut by the end)", st)
	}
	if served.Load() < st.OK {
		t.Errorf("the target served %d requests, the generator counted %d OK", served.Load(), st.OK)
	}
}

func TestErrorsAreCounted(t *testing.T) {
	var n atomic.Uint64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1)%2 == 0 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	g, err := New(Config{URL: srv.URL, Rate: 400, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	run(t, g, func(st Stats) bool { return st.OK >= 20 && st.Errors >= 20 })
	st := g.Stats()
	if diff := int64(st.OK) - int64(st.Errors); diff < -2 || diff > 2 {
		t.Errorf("stats %+v: want as many errors as OKs", st)
	}

	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	g, err = New(Config{URL: down.URL, Rate: 100})
	if err != nil {
		t.Fatal(err)
	}
	run(t, g, func(st Stats) bool { return st.Errors >= 5 })
	if st := g.Stats(); st.OK != 0 {
		t.Errorf("OKs from a closed port: %+v", st)
	}
}

// TestBoundedAndStopsOnCancel runs against a target that never answers:
// at most Workers requests are in flight, the rest is dropped, and
// cancelling the run cuts the requests in flight and returns.
func TestBoundedAndStopsOnCancel(t *testing.T) {
	var inFlight, most atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	const workers = 4
	g, err := New(Config{URL: srv.URL, Rate: 1000, Workers: workers, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	eventually(t, "every worker is busy and requests are dropped", func() bool {
		return inFlight.Load() == workers && g.Stats().Dropped > 0
	})
	if err := g.Run(t.Context()); err == nil {
		t.Error("a second Run while the first runs was accepted")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of its context's end")
	}
	st := g.Stats()
	if most.Load() > workers {
		t.Errorf("%d requests in flight at once, want at most %d", most.Load(), workers)
	}
	if st.Sent != workers || st.Aborted != workers || st.OK != 0 || st.Errors != 0 || st.Due < st.Sent+st.Dropped {
		t.Errorf("stats %+v: want the %d requests in flight sent and aborted, nothing else sent", st, workers)
	}
	eventually(t, "the target sees the requests cut", func() bool { return inFlight.Load() == 0 })
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "http://127.0.0.1:1"},
		{URL: "127.0.0.1:1", Rate: 1},
		{URL: "http://127.0.0.1:1", Rate: 1, Workers: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

// run runs g until stop holds for its stats, for at most 10 s.
func run(t *testing.T, g *Generator, stop func(Stats) bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { g.Run(ctx) })
	defer wg.Wait()
	defer cancel()
	eventually(t, "the generator's stats", func() bool { return stop(g.Stats()) })
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
