package ui

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/controller"
	"github.com/rewind-sre/rewind/internal/scenario"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/source/embedded"
	"github.com/rewind-sre/rewind/store/sqlite"
)

// bigUI is the UI over a controller of n systems, each the built-in policy's
// dwcp-manager with its nine triggers, evaluated once against an hour of
// history in which the canary went bad (so triggers are pending, some
// systems paused): what an on-call engineer opens in a large install.
func bigUI(b *testing.B, n int) (*UI, *embedded.DB) {
	b.Helper()
	cfg := scenario.Healthy(t0, time.Hour, 5, 7)
	cfg.Fault = scenario.Fault{Kind: scenario.FaultErrorRate, At: t0.Add(30 * time.Minute)}
	db, err := scenario.Open(cfg, embedded.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	def := string(policy.Default())
	head, sys, _ := strings.Cut(def, "systems:\n")
	var text strings.Builder
	text.WriteString(head + "systems:\n")
	for i := range n {
		text.WriteString(strings.Replace(sys, "name: dwcp-manager", fmt.Sprintf("name: dwcp-manager-%04d", i), 1))
	}
	pol, err := policy.Parse("big.yaml", []byte(text.String()))
	if err != nil {
		b.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "rewind.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	build := func(*policy.System) (*plan.Runner, rewind.Source, error) { return &plan.Runner{Store: st}, db, nil }
	hist := NewHistory()
	ctl, err := controller.New(controller.Options{Policy: pol, Store: st, Build: build, Events: hist})
	if err != nil {
		b.Fatal(err)
	}
	at := t0.Add(31 * time.Minute)
	for i, s := range pol.Systems {
		if _, err := ctl.Evaluate(context.Background(), s.Name, at); err != nil {
			b.Fatal(err)
		}
		if i%10 == 0 {
			_ = ctl.SetPaused(s.Name, true)
		}
	}
	u, err := New(Options{Controller: ctl, Rollbacks: st, Notices: st, History: hist, OpenReads: true, Now: func() time.Time { return at }})
	if err != nil {
		b.Fatal(err)
	}
	return u, db
}

// BenchmarkOverview1000Systems renders the overview of 1 000 systems from
// scratch (every row rendered anew, as after a start) and reports the
// page's size, plain and gzipped as sent to a browser.
func BenchmarkOverview1000Systems(b *testing.B) {
	u, _ := bigUI(b, 1000)
	loop(b, func() {
		u.live = newLive(u)
		get(b, u, "/")
	})
	size, zipped := sizes(get(b, u, "/"))
	b.ReportMetric(float64(size), "page-bytes")
	b.ReportMetric(float64(zipped), "gzip-bytes")
}

// BenchmarkOverviewSteady1000Systems is the overview once its rows are
// rendered: a new snapshot of every system's state each time, the rows
// whose state did not change reused.
func BenchmarkOverviewSteady1000Systems(b *testing.B) {
	u, _ := bigUI(b, 1000)
	get(b, u, "/")
	loop(b, func() {
		u.live.invalidate()
		get(b, u, "/")
	})
}

// BenchmarkSystemPage1000Systems renders one system's page (its nine
// triggers charted over the last hour from the embedded TSDB) in an install
// of 1 000 systems.
func BenchmarkSystemPage1000Systems(b *testing.B) {
	u, _ := bigUI(b, 1000)
	loop(b, func() { get(b, u, "/systems/dwcp-manager-0500") })
	size, zipped := sizes(get(b, u, "/systems/dwcp-manager-0500"))
	b.ReportMetric(float64(size), "page-bytes")
	b.ReportMetric(float64(zipped), "gzip-bytes")
}

// cpu is the process's CPU time (user and system): on a machine shared
// with other work, per-op CPU time says more than wall time.
func cpu() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loop runs f b.N times and reports its CPU time per op beside ns/op.
func loop(b *testing.B, f func()) {
	var used time.Duration
	for b.Loop() {
		c := cpu()
		f()
		used += cpu() - c
	}
	b.ReportMetric(float64(used.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// get renders a page as a browser asks for it (gzip accepted).
func get(b *testing.B, u *UI, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("Accept-Encoding", "gzip, deflate")
	w := httptest.NewRecorder()
	u.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		b.Fatalf("GET %s: %d %s", path, w.Code, w.Body.String())
	}
	return w
}

// sizes are a page's bytes, plain and as sent (gzipped).
func sizes(w *httptest.ResponseRecorder) (plain, sent int) {
	sent = w.Body.Len()
	if w.Header().Get("Content-Encoding") != "gzip" {
		return sent, sent
	}
	zr, err := gzip.NewReader(bytes.NewReader(w.Body.Bytes()))
	if err != nil {
		return 0, sent
	}
	n, _ := io.Copy(io.Discard, zr)
	return int(n), sent
}
