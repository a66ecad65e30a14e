package verify

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/internal/scenario"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/source/embedded"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func history(t *testing.T, cfg scenario.Config) *embedded.DB {
	t.Helper()
	db, err := scenario.Open(cfg, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// fakeClock advances by step on every reading, so waits over historical
// data run in milliseconds.
func fakeClock(start time.Time, step time.Duration) func() time.Time {
	var mu sync.Mutex
	now := start.Add(-step)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(step)
		return now
	}
}

func system(t *testing.T, verifyFor string) *policy.System {
	t.Helper()
	text := strings.Replace(string(policy.Default()), "        for: 30s\n        timeout: 2m", "        for: "+verifyFor+"\n        timeout: 2m", 1)
	p, err := policy.Parse("p.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return p.Systems[0]
}

func TestDrainWaitsForTheCanaryRateToFall(t *testing.T) {
	cfg := scenario.Healthy(t0, 40*time.Minute, 5, 1)
	cfg.Fault = scenario.Fault{Kind: scenario.FaultNoTraffic, At: t0.Add(20 * time.Minute)}
	db := history(t, cfg)
	sys := system(t, "30s")
	d := &Drain{Source: db, Drain: sys.Rollback.Drain, Now: fakeClock(t0.Add(20*time.Minute), 5*time.Second), Poll: time.Millisecond}
	res, err := d.Do(context.Background(), &rewind.Rollback{})
	if err != nil || res.Escalate {
		t.Fatalf("%+v %v", res, err)
	}
	if got := res.Facts["drainSeconds"]; got == "" || got == "0.000" {
		t.Fatalf("drain time not recorded: %q (%s)", got, res.Detail)
	}
	t.Logf("%s (drain %ss)", res.Detail, res.Facts["drainSeconds"])

	// A canary that keeps its traffic is not drained: escalate, not fail.
	d.Now = fakeClock(t0.Add(10*time.Minute), 5*time.Second)
	res, err = d.Do(context.Background(), &rewind.Rollback{})
	if err != nil || !res.Escalate || !strings.Contains(res.Detail, "not confirmed drained within 1m0s") {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestBaselineCheck(t *testing.T) {
	sys := system(t, "30s")
	healthy := history(t, scenario.Healthy(t0, 20*time.Minute, 5, 2))
	b := &Baseline{Source: healthy, Verify: sys.Rollback.Verify, Now: func() time.Time { return t0.Add(15 * time.Minute) }}
	if res, err := b.Do(context.Background(), nil); err != nil || res.Escalate {
		t.Fatalf("healthy baseline: %+v %v", res, err)
	}
	sick := scenario.Healthy(t0, 20*time.Minute, 5, 2)
	sick.Baseline.ErrorRate = 0.05
	b.Source = history(t, sick)
	if res, err := b.Do(context.Background(), nil); err != nil || !res.Escalate || !strings.Contains(res.Detail, "baseline unhealthy") {
		t.Fatalf("sick baseline: %+v %v", res, err)
	}
	b.Source = failing{}
	if res, err := b.Do(context.Background(), nil); err != nil || !res.Escalate || !strings.Contains(res.Detail, "unknown") {
		t.Fatalf("failing source: %+v %v", res, err)
	}
}

func TestValidator(t *testing.T) {
	sys := system(t, "10s")
	db := history(t, scenario.Healthy(t0, 40*time.Minute, 5, 3))
	v := &Validator{Source: db, System: sys, Now: fakeClock(t0.Add(30*time.Minute), 2*time.Second), Poll: time.Millisecond, Before: t0.Add(10 * time.Minute)}
	res, err := v.Do(context.Background(), &rewind.Rollback{})
	if err != nil || res.Escalate || !strings.HasPrefix(res.Detail, "verified") {
		t.Fatalf("%+v %v", res, err)
	}
	if c := res.Facts["compare/error-rate-high"]; !strings.HasPrefix(c, "before canary ") || !strings.Contains(c, "→ after canary") {
		t.Fatalf("comparator: %q", c)
	}
	sick := scenario.Healthy(t0, 40*time.Minute, 5, 3)
	sick.Baseline.ErrorRate = 0.05
	v.Source, v.Now = history(t, sick), fakeClock(t0.Add(30*time.Minute), 10*time.Second)
	res, err = v.Do(context.Background(), &rewind.Rollback{})
	if err != nil || !res.Escalate || !strings.Contains(res.Detail, "verification failed") {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestValidatorHonoursContext(t *testing.T) {
	sys := system(t, "10s")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	v := &Validator{Source: failing{}, System: sys, Poll: time.Hour}
	if _, err := v.Do(ctx, &rewind.Rollback{}); err == nil {
		t.Fatal("a cancelled step must return the context's error")
	}
}

type failing struct{}

func (failing) Query(context.Context, string, time.Time) (rewind.Vector, error) {
	return nil, fmt.Errorf("%w: connection refused", rewind.ErrQuery)
}
