package backtest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/backtest"
	"github.com/rewind-sre/rewind/internal/scenario"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/source/embedded"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func load(t *testing.T, cfg scenario.Config) *embedded.DB {
	t.Helper()
	db, err := scenario.Open(cfg, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func defaultPolicy(t *testing.T) *policy.Policy {
	p, err := policy.Parse("default.yaml", policy.Default())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func transitions(s backtest.SystemReport) string {
	var b bytes.Buffer
	for _, tr := range s.Transitions {
		fmt.Fprintf(&b, "%s %s %s→%s\n", tr.At.Format(time.TimeOnly), tr.Trigger, tr.From, tr.To)
	}
	return b.String()
}

// TestChunkingKeepsState: a hold time that spans prefetch chunks decides the
// same as one chunk; range prefetching and instant queries agree.
func TestChunkingKeepsState(t *testing.T) {
	cfg := scenario.Healthy(t0, time.Hour, 5, 4)
	cfg.Fault = scenario.Fault{Kind: scenario.FaultLatency, At: t0.Add(30 * time.Minute)}
	db := load(t, cfg)
	pol := defaultPolicy(t)
	opt := backtest.Options{From: t0, To: t0.Add(time.Hour)}
	whole, err := backtest.Run(context.Background(), db, pol, opt)
	if err != nil {
		t.Fatal(err)
	}
	opt.Chunk = 7
	chunked, err := backtest.Run(context.Background(), db, pol, opt)
	if err != nil {
		t.Fatal(err)
	}
	instant, err := backtest.Run(context.Background(), instantOnly{db}, pol, backtest.Options{From: t0, To: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	w := transitions(whole.Systems[0])
	if whole.Systems[0].Decision != backtest.Rollback || w != transitions(chunked.Systems[0]) || w != transitions(instant.Systems[0]) {
		t.Fatalf("replays differ:\nwhole:\n%s\nchunked:\n%s\ninstant:\n%s", w, transitions(chunked.Systems[0]), transitions(instant.Systems[0]))
	}
}

// instantOnly hides the RangeSource so that Run issues instant queries.
type instantOnly struct{ src rewind.Source }

func (i instantOnly) Query(ctx context.Context, q string, at time.Time) (rewind.Vector, error) {
	return i.src.Query(ctx, q, at)
}

// failingFrom fails every query range that reaches past a time: a metrics
// backend outage in the middle of a fault must not roll back, and is blind.
type failingFrom struct {
	*embedded.DB
	from time.Time
}

func (f failingFrom) QueryRange(ctx context.Context, q string, start, end time.Time, step time.Duration) (rewind.Matrix, error) {
	if !end.Before(f.from) {
		return nil, fmt.Errorf("%w: 503 Service Unavailable", rewind.ErrQuery)
	}
	return f.DB.QueryRange(ctx, q, start, end, step)
}

func TestFailingBackendIsBlindNeverRollback(t *testing.T) {
	cfg := scenario.Healthy(t0, time.Hour, 5, 5)
	cfg.Fault = scenario.Fault{Kind: scenario.FaultErrorRate, At: t0.Add(30 * time.Minute)}
	db := load(t, cfg)
	src := failingFrom{db, t0.Add(29 * time.Minute)}
	rep, err := backtest.Run(context.Background(), src, defaultPolicy(t), backtest.Options{From: t0, To: t0.Add(time.Hour), Chunk: 10})
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Systems[0]
	if s.Decision != backtest.Inconclusive || len(s.BlindAt) != 1 {
		t.Fatalf("decision %s, blind at %v; want inconclusive and blind once", s.Decision, s.BlindAt)
	}
	for _, f := range s.Final {
		if f.State != rewind.StateDegraded {
			t.Fatalf("%s is %s, want degraded", f.Trigger, f.State)
		}
	}
}

func TestSeveralSystemsAndSelection(t *testing.T) {
	db := load(t, scenario.Healthy(t0, 30*time.Minute, 5, 6))
	// The default policy's only system, twice: the second renamed "other".
	text := string(policy.Default())
	sys := text[strings.Index(text, "  - name: dwcp-manager"):]
	two := text + strings.Replace(sys, "name: dwcp-manager", "name: other", 1)
	pol, err := policy.Parse("two.yaml", []byte(two))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := backtest.Run(context.Background(), db, pol, backtest.Options{From: t0, To: t0.Add(30 * time.Minute)})
	if err != nil || len(rep.Systems) != 2 || rep.Systems[0].System != "dwcp-manager" || rep.Systems[1].System != "other" {
		t.Fatalf("%v %+v", err, rep)
	}
	rep, err = backtest.Run(context.Background(), db, pol, backtest.Options{From: t0, To: t0.Add(30 * time.Minute), System: "other"})
	if err != nil || len(rep.Systems) != 1 {
		t.Fatalf("%v %+v", err, rep)
	}
	if _, err := backtest.Run(context.Background(), db, pol, backtest.Options{From: t0, To: t0.Add(time.Minute), System: "nope"}); err == nil {
		t.Fatal("unknown system must be an error")
	}
	if _, err := backtest.Run(context.Background(), db, pol, backtest.Options{From: t0.Add(time.Minute), To: t0}); err == nil {
		t.Fatal("from after to must be an error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := backtest.Run(ctx, db, pol, backtest.Options{From: t0, To: t0.Add(time.Minute)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}
