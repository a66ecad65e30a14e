package montecarlo

import (
	"context"
	"time"

	"github.com/rewind-sre/rewind/internal/scenario"
)

// Life is how long a healthy canary is monitored: every evaluation (30 s)
// of Life after the warm-up is replayed.
const Life = 4 * time.Hour

// HealthyCase is a canary as good as its baseline: it must never be rolled
// back.
type HealthyCase struct {
	Name string
	RPS  float64 // canary requests per second
	// Tweak changes the reference system (scenario.Healthy: baseline 2 pods
	// at 20 req/s, both sides at 0.5 % errors); nil keeps it.
	Tweak func(*scenario.Config)
}

// HealthyResult counts the would-be rollbacks of one healthy case.
type HealthyResult struct {
	Case       HealthyCase
	Rules      string
	Lives      int            // canaries monitored for a Life each
	Rollbacks  int            // every rollback episode
	RolledBack int            // lives with at least one episode
	ByTrigger  map[string]int // episodes by firing trigger (one may name several)
}

// CanaryHours is the monitored time.
func (r HealthyResult) CanaryHours() float64 { return float64(r.Lives) * Life.Hours() }

// PerHour is the false rollbacks per canary-hour with its 95 % interval
// (exact Poisson).
func (r HealthyResult) PerHour() (rate, lo, hi float64) {
	h := r.CanaryHours()
	if h == 0 {
		return 0, 0, 0
	}
	lo, hi = poissonCI(r.Rollbacks)
	return float64(r.Rollbacks) / h, lo / h, hi / h
}

// PerLife is the share of lives rolled back at least once, with its 95 %
// interval (Clopper–Pearson).
func (r HealthyResult) PerLife() (share, lo, hi float64) {
	if r.Lives == 0 {
		return 0, 0, 0
	}
	lo, hi = binomialCI(r.RolledBack, r.Lives)
	return float64(r.RolledBack) / float64(r.Lives), lo, hi
}

// MeasureHealthy replays lives independent canaries of c: each a history of
// WarmUp plus one Life, replayed over the Life after the warm-up.
func MeasureHealthy(ctx context.Context, rules Rules, c HealthyCase, lives int, opt Options) (HealthyResult, error) {
	from, to := Start.Add(WarmUp), Start.Add(WarmUp+Life)
	counts, err := parallel(ctx, lives, opt.workers(), func(ctx context.Context, i int) ([][]string, error) {
		cfg := scenario.Healthy(Start, to.Sub(Start), c.RPS, seedOf(opt.Seed, "healthy/"+c.Name, i))
		if c.Tweak != nil {
			c.Tweak(&cfg)
		}
		sr, err := replay(ctx, cfg, rules, from, to)
		if err != nil {
			return nil, err
		}
		opt.ran()
		episodes := make([][]string, len(sr.Rollbacks))
		for k, e := range sr.Rollbacks {
			episodes[k] = e.Firing
		}
		return episodes, nil
	})
	if err != nil {
		return HealthyResult{}, err
	}
	r := HealthyResult{Case: c, Rules: rules.Name, Lives: lives, ByTrigger: map[string]int{}}
	for _, episodes := range counts {
		r.Rollbacks += len(episodes)
		if len(episodes) > 0 {
			r.RolledBack++
		}
		for _, firing := range episodes {
			for _, t := range firing {
				r.ByTrigger[t]++
			}
		}
	}
	return r, nil
}
