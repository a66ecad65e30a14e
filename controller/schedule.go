package controller

import (
	"cmp"
	"context"
	"fmt"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/observe"
	"github.com/rewind-sre/rewind/policy"
)

// DefaultBatchSystems bounds the systems of one batch: a grouped query of
// the built-in policy then answers for a thousand canary and baseline
// queries (about 1.5 MiB), and a cycle of 10 000 systems is 20 batches.
const DefaultBatchSystems = 500

// systemsAtOnce bounds the systems of a batch whose triggers are evaluated
// at the same time (their probes are I/O; the rest is CPU).
const systemsAtOnce = 8

// tick is how often the scheduler looks for a batch that is due.
const tick = 100 * time.Millisecond

// batch is a set of systems evaluated together at one instant: same
// source, same interval. Its cycles start at its phase of the interval.
type batch struct {
	name    string // its first and last system, for logs
	systems []*system
	plan    *observe.Batch
	source  rewind.Source
	every   time.Duration
	phase   time.Duration
	limit   int // queries in flight: the endpoint's bound
	next    time.Time
	running bool
	done    chan struct{} // closed when the running cycle ends
}

// batches partitions the systems by source and interval, sorts each
// partition by name and cuts it into batches of at most per systems,
// spread evenly over the interval: batch k of n starts k/n of an interval
// after the others. The phases depend on the policy alone.
func batches(systems []*system, per int) []*batch {
	type key struct {
		src   any
		every time.Duration
	}
	parts := map[key][]*system{}
	var keys []key
	for _, s := range systems {
		k := key{every: s.cfg.Interval, src: s}
		// A rollout-watch system's queries follow its rollouts (its
		// Watcher asks them): it is a batch of its own.
		if t := reflect.TypeOf(s.source); t != nil && t.Comparable() && s.live == nil {
			k.src = s.source // systems on one source share batches
		}
		if _, ok := parts[k]; !ok {
			keys = append(keys, k)
		}
		parts[k] = append(parts[k], s)
	}
	var out []*batch
	for _, k := range keys {
		ss := parts[k]
		slices.SortFunc(ss, func(a, b *system) int { return strings.Compare(a.cfg.Name, b.cfg.Name) })
		n := (len(ss) + per - 1) / per
		for i := range n {
			part := ss[i*len(ss)/n : (i+1)*len(ss)/n]
			var cfgs []*policy.System
			for _, s := range part {
				if s.live == nil {
					cfgs = append(cfgs, s.cfg)
				}
			}
			b := &batch{systems: part, source: part[0].source, every: k.every,
				phase: k.every * time.Duration(i) / time.Duration(n),
				limit: cmp.Or(part[0].cfg.Prometheus.MaxInFlight, policy.DefaultMaxInFlight),
				plan:  observe.NewBatch(cfgs, observe.BatchOptions{})}
			b.name = part[0].cfg.Name
			if len(part) > 1 {
				b.name += "…" + part[len(part)-1].cfg.Name
			}
			out = append(out, b)
		}
	}
	return out
}

// schedule runs the batches' cycles until ctx ends: each at its phase of
// its interval, never two cycles of a batch at once. A cycle still running
// when the next is due is an overrun: reported (metric, log) and skipped,
// never stacked. A reloaded policy gets new batches at the next tick.
func (c *Controller) schedule(ctx context.Context) {
	t := time.NewTicker(tick)
	defer t.Stop()
	var (
		bs    []*batch
		gen   uint64
		start = c.opt.Now()
	)
	for {
		c.mu.Lock()
		g := c.gen
		c.mu.Unlock()
		if bs == nil || g != gen {
			bs, gen = c.plan(start), g
		}
		now := c.opt.Now()
		for _, b := range bs {
			if now.Before(b.next) {
				continue
			}
			at := b.next
			// The next slot on this batch's grid after now: a late or
			// skipped cycle never shifts the phase or piles up.
			b.next = b.next.Add(b.every * (now.Sub(b.next)/b.every + 1))
			if b.running {
				select {
				case <-b.done:
					b.running = false
				default:
					c.overrun(b, at)
					continue
				}
			}
			if now.Sub(at) > b.every {
				at = now // fell behind (a stopped clock, a long pause): evaluate now
			}
			b.running, b.done = true, make(chan struct{})
			c.wg.Add(1)
			go func(b *batch, done chan struct{}) {
				defer c.wg.Done()
				defer close(done)
				c.cycle(ctx, b, at)
			}(b, b.done)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// plan builds the batches of the current systems; the first cycle of
// each is at its phase after start.
func (c *Controller) plan(start time.Time) []*batch {
	per := c.opt.BatchSystems
	if per <= 0 {
		per = DefaultBatchSystems
	}
	bs := batches(c.systems(), per)
	now := c.opt.Now()
	for _, b := range bs {
		b.next = start.Add(b.phase)
		if b.next.Before(now) { // a reload: the next slot of the grid
			b.next = b.next.Add(b.every * (now.Sub(b.next)/b.every + 1))
		}
		for _, u := range b.plan.Ungrouped {
			c.opt.Log.Debug("queries not grouped", "batch", b.name, "why", u)
		}
	}
	if c.opt.Metrics != nil {
		c.opt.Metrics.Batches.Set(float64(len(bs)))
	}
	return bs
}

func (c *Controller) overrun(b *batch, at time.Time) {
	if m := c.opt.Metrics; m != nil {
		m.Overruns.Inc()
	}
	c.opt.Log.Warn("evaluation cycle overran its interval: the previous one still runs, this one is skipped",
		"batch", b.name, "systems", len(b.systems), "interval", b.every, "due", at)
}

// cycle evaluates the systems of b at `at`: one fetch of the batch's
// queries, bounded by the interval, then each system's triggers from its
// share of the answers. A panic while fetching fails every system of the
// batch for this cycle; a panic while evaluating one system fails that
// system alone. Either is logged with the system, counted, and the others
// go on.
func (c *Controller) cycle(ctx context.Context, b *batch, at time.Time) {
	began := time.Now()
	qctx, cancel := context.WithTimeout(ctx, b.every)
	defer cancel()
	answers, err := c.fetch(qctx, b, at)
	if answers != nil {
		for _, p := range answers.Panics {
			_ = c.panicked(b.name, "query", p, "")
		}
	}
	var g errgroup.Group
	g.SetLimit(systemsAtOnce)
	for _, s := range b.systems {
		g.Go(func() error {
			c.evaluate(ctx, qctx, s, at, answers, err, b.limit)
			return nil
		})
	}
	_ = g.Wait()
	if m := c.opt.Metrics; m != nil {
		m.CycleDuration.Observe(time.Since(began).Seconds())
		if answers != nil {
			m.CycleQueries.Add(float64(answers.Sent))
		}
	}
}

func (c *Controller) fetch(ctx context.Context, b *batch, at time.Time) (a *observe.Answers, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = c.panicked(b.name, "fetch", p, string(debug.Stack()))
		}
	}()
	return b.plan.Fetch(ctx, b.source, at, b.limit), nil
}

// evaluate observes and acts on one system of a batch. queries bounds the
// cycle's I/O; ctx outlives it, for the rollback it may start.
func (c *Controller) evaluate(ctx, qctx context.Context, s *system, at time.Time, answers *observe.Answers, failed error, limit int) {
	defer func() {
		if p := recover(); p != nil {
			err := c.panicked(s.cfg.Name, "evaluate", p, string(debug.Stack()))
			c.fail(ctx, s, at, err)
		}
	}()
	var err error
	switch {
	case s.live != nil:
		_, err = c.acted(ctx, s, c.evaluateWatch(qctx, s, at))
	case failed != nil:
		c.fail(ctx, s, at, failed)
		return
	default:
		_, err = c.act(ctx, s, at, answers.Observe(qctx, s.cfg, limit))
	}
	if err != nil {
		c.opt.Log.Error("cannot start the rollback", "system", s.cfg.Name, "err", err)
	}
}

// fail records a cycle in which every trigger of s failed: degraded, and
// towards blind, never a value.
func (c *Controller) fail(ctx context.Context, s *system, at time.Time, why error) {
	defer func() {
		if p := recover(); p != nil {
			_ = c.panicked(s.cfg.Name, "evaluate", p, string(debug.Stack()))
		}
	}()
	obs := make([]rewind.Observation, len(s.cfg.Triggers))
	for i, t := range s.cfg.Triggers {
		obs[i] = rewind.Observation{Trigger: t.Name, At: at, Outcome: rewind.OutcomeError, Reason: why.Error()}
	}
	_, _ = c.act(ctx, s, at, obs)
}

// panicked logs and counts a recovered panic (with the stack where it was
// recovered, unless p already tells it) and returns it as an error.
func (c *Controller) panicked(who, stage string, p any, stack string) error {
	err := fmt.Errorf("internal error (%s panicked): %v", stage, firstLine(fmt.Sprint(p)))
	c.opt.Log.Error("PANIC recovered: marked failed for this cycle; the other systems go on",
		"system", who, "stage", stage, "panic", fmt.Sprint(p), "stack", stack)
	if m := c.opt.Metrics; m != nil {
		m.Panics.WithLabelValues(stage).Inc()
	}
	return err
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
