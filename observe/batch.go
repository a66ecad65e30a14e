package observe

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
)

// DefaultMaxMembers bounds the member queries one grouped query answers:
// about a thousand canary and baseline queries, a few MiB of answer.
const DefaultMaxMembers = 1000

// maxSplitQueries bounds the extra queries one cycle of a batch may send
// when a grouped query fails in a way that splitting can isolate (a query
// error of one member, an answer over a bound): never a storm.
const maxSplitQueries = 32

// Batch evaluates systems that read one source together, at one instant,
// with one query per shape instead of one per system and side: the
// queries of the systems' triggers that differ only in their selectors'
// values are answered by one grouped query (see shape.go), and each
// system's triggers are then evaluated from its own share of the answers,
// exactly as Cycle would. Queries of a shape of their own are sent as they
// are. A Batch is built once per policy and used for every cycle.
type Batch struct {
	Systems []*policy.System
	units   []*unit
	// Ungrouped lists the shapes that were not grouped, and why.
	Ungrouped []string
}

// unit is one query sent each cycle and the member queries it answers.
type unit struct {
	query   string
	members []member
	plan    *shapePlan // nil: a single member, sent as it is
}

// member is one system query answered by a unit: its PromQL as the policy
// resolved it, and its values of the shape's labels.
type member struct {
	query  string
	values []string
}

// BatchOptions tune NewBatch.
type BatchOptions struct {
	// MaxMembers bounds the member queries of one grouped query
	// (DefaultMaxMembers when zero; 1 turns grouping off).
	MaxMembers int
}

// NewBatch plans the queries of systems.
func NewBatch(systems []*policy.System, opt BatchOptions) *Batch {
	if opt.MaxMembers <= 0 {
		opt.MaxMembers = DefaultMaxMembers
	}
	b := &Batch{Systems: systems}
	var queries []string
	seen := map[string]bool{}
	for _, s := range systems {
		for _, q := range s.Queries() {
			if !seen[q] {
				seen[q] = true
				queries = append(queries, q)
			}
		}
	}
	type shape struct {
		abs     []abstraction
		queries []string
	}
	var keys []string
	shapes := map[string]*shape{}
	for _, q := range queries {
		a, err := abstract(q)
		if err != nil || opt.MaxMembers == 1 {
			b.units = append(b.units, single(q))
			continue
		}
		sh := shapes[a.key]
		if sh == nil {
			sh = &shape{}
			shapes[a.key] = sh
			keys = append(keys, a.key)
		}
		sh.abs, sh.queries = append(sh.abs, a), append(sh.queries, q)
	}
	for _, k := range keys {
		sh := shapes[k]
		if len(sh.queries) == 1 {
			b.units = append(b.units, single(sh.queries[0]))
			continue
		}
		sp, err := planShape(sh.abs, sh.queries)
		if err == nil {
			var units []*unit
			units, err = sp.units(sh.abs, sh.queries, opt.MaxMembers)
			b.units = append(b.units, units...)
		}
		if err != nil {
			b.Ungrouped = append(b.Ungrouped, err.Error()+": "+oneLine(sh.queries[0]))
			for _, q := range sh.queries {
				b.units = append(b.units, single(q))
			}
		}
	}
	return b
}

func single(q string) *unit { return &unit{query: q, members: []member{{query: q}}} }

// units writes the grouped queries of a shape, at most max members each,
// members sorted by their values so that each query's set matchers stay
// narrow.
func (sp *shapePlan) units(abs []abstraction, queries []string, max int) ([]*unit, error) {
	ms := make([]member, len(queries))
	for j, a := range abs {
		ms[j] = member{query: queries[j], values: make([]string, len(sp.labels))}
		for i, l := range sp.labels {
			ms[j].values[i] = a.values[slices.Index(a.names, l)]
		}
	}
	slices.SortFunc(ms, func(a, b member) int { return slices.Compare(a.values, b.values) })
	var out []*unit
	for start := 0; start < len(ms); start += max {
		u, err := sp.unit(ms[start:min(start+max, len(ms))])
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

func (sp *shapePlan) unit(ms []member) (*unit, error) {
	values := make([][]string, len(ms))
	for j, m := range ms {
		values[j] = m.values
	}
	q, err := sp.query(values)
	if err != nil {
		return nil, err
	}
	return &unit{query: q, members: ms, plan: sp}, nil
}

// Queries lists the PromQL strings that one cycle of the batch sends.
func (b *Batch) Queries() []string {
	out := make([]string, len(b.units))
	for i, u := range b.units {
		out[i] = u.query
	}
	return out
}

// Answers are the results of one cycle of a batch, by member query.
type Answers struct {
	at      time.Time
	results map[string]result
	// Sent counts the queries sent, grouped or not, split ones included.
	Sent int
	// Panics describes the queries that panicked (with their stacks): their
	// members have a failed query.
	Panics []string
}

// Fetch runs every query of the batch at instant at, at most limit at a
// time (DefaultConcurrency when limit <= 0), and hands each member its
// share of the answers.
func (b *Batch) Fetch(ctx context.Context, src rewind.Source, at time.Time, limit int) *Answers {
	if limit <= 0 {
		limit = DefaultConcurrency
	}
	f := &fetcher{ctx: ctx, src: src, at: at, results: map[string]result{}}
	f.budget.Store(maxSplitQueries)
	var g errgroup.Group
	g.SetLimit(limit)
	for _, u := range b.units {
		g.Go(func() error { f.run(u); return nil })
	}
	_ = g.Wait()
	return &Answers{at: at, results: f.results, Sent: int(f.sent.Load()), Panics: f.panics}
}

// Observe evaluates the triggers of sys (one of the batch's systems) from
// the answers; only its probes do I/O of their own, at most limit at a time.
func (a *Answers) Observe(ctx context.Context, sys *policy.System, limit int) []rewind.Observation {
	if limit <= 0 {
		limit = DefaultConcurrency
	}
	return evaluate(ctx, &querier{at: a.at, results: a.results}, sys, a.at, limit)
}

type fetcher struct {
	ctx     context.Context
	src     rewind.Source
	at      time.Time
	mu      sync.Mutex
	results map[string]result
	panics  []string
	sent    atomic.Int64
	budget  atomic.Int64 // split queries left this cycle
}

// run sends u's query and fans its answer out. A grouped query that fails
// in a way that a smaller query may not (a query error of one member, an
// answer over a bound) is split in two, within the cycle's budget; a
// source that is down, overloaded or out of time is not asked again.
func (f *fetcher) run(u *unit) {
	f.sent.Add(1)
	vec, err, panicked := query(f.ctx, f.src, u.query, f.at)
	if panicked != "" {
		f.mu.Lock()
		f.panics = append(f.panics, panicked)
		f.mu.Unlock()
	}
	if err != nil && len(u.members) > 1 && splittable(f.ctx, err) && f.budget.Add(-2) >= 0 {
		half := len(u.members) / 2
		a, errA := u.plan.unit(u.members[:half])
		b, errB := u.plan.unit(u.members[half:])
		if errA == nil && errB == nil {
			f.run(a)
			f.run(b)
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		for _, m := range u.members {
			f.results[m.query] = result{err: err}
		}
		return
	}
	if u.plan == nil {
		f.results[u.query] = result{vec: vec}
		return
	}
	for q, v := range fanOut(vec, u.members, u.plan) {
		f.results[q] = result{vec: v}
	}
}

// splittable reports whether a failed grouped query may succeed in parts.
func splittable(ctx context.Context, err error) bool {
	return ctx.Err() == nil && !errors.Is(err, rewind.ErrUnavailable) && !errors.Is(err, ErrPanic) &&
		!errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled)
}

// fanOut gives each member the series of vec with its values of the
// shape's labels, without the labels its own query would not return.
func fanOut(vec rewind.Vector, ms []member, sp *shapePlan) map[string]rewind.Vector {
	byValues := make(map[string]rewind.Vector, len(ms))
	var key strings.Builder
	for _, s := range vec {
		key.Reset()
		for _, l := range sp.labels {
			key.WriteString(s.Labels[l])
			key.WriteByte(0)
		}
		k := key.String()
		if len(sp.strip) > 0 {
			lbls := make(map[string]string, len(s.Labels))
			for n, v := range s.Labels {
				if !slices.Contains(sp.strip, n) {
					lbls[n] = v
				}
			}
			s.Labels = lbls
		}
		byValues[k] = append(byValues[k], s)
	}
	out := make(map[string]rewind.Vector, len(ms))
	for _, m := range ms {
		key.Reset()
		for _, v := range m.values {
			key.WriteString(v)
			key.WriteByte(0)
		}
		v := byValues[key.String()]
		if v == nil {
			v = rewind.Vector{}
		}
		out[m.query] = v
	}
	return out
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
