package observe

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/decide"
	"github.com/rewind-sre/rewind/policy"
)

// BenchmarkEvaluateTrigger is the engine's cost per trigger evaluation
// without I/O: a cycle against an in-memory source (reading results, CEL
// conditions, the state machine), divided by the number of triggers. "seed
// rules" are the seed's triggers as CEL conditions (testdata); "default" is
// the built-in policy, whose error and latency triggers run the judge.
func BenchmarkEvaluateTrigger(b *testing.B) {
	seed, err := os.ReadFile("testdata/seed-rules.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("seed rules", func(b *testing.B) { benchCycle(b, seed) })
	b.Run("default", func(b *testing.B) { benchCycle(b, policy.Default()) })
}

func benchCycle(b *testing.B, text []byte) {
	p, err := policy.Parse("p.yaml", text)
	if err != nil {
		b.Fatal(err)
	}
	sys := p.Systems[0]
	src := memorySource{}
	for _, q := range sys.Queries() {
		src[q] = rewind.Vector{{V: 42}}
		canary := strings.Contains(q, `"canary"`)
		switch {
		case strings.Contains(q, "_bucket"):
			src[q] = buckets()
		case strings.Contains(q, "increase(http_requests_total") && strings.Contains(q, `"5.."`):
			src[q] = rewind.Vector{{V: pick(canary, 8, 30)}} // healthy: 0.5 % errors
		case strings.Contains(q, "increase(http_requests_total"):
			src[q] = rewind.Vector{{V: pick(canary, 1500, 6000)}}
		}
	}
	st := decide.NewSystemState(sys)
	at := time.Unix(1e9, 0)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		obs := Cycle(ctx, src, sys, at, 1)
		st.Apply(at, obs, p.Hash)
		at = at.Add(sys.Interval)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(sys.Triggers)), "ns/trigger")
}

func pick(canary bool, c, b float64) float64 {
	if canary {
		return c
	}
	return b
}

// buckets is a realistic 12-bucket latency histogram over 5 minutes.
func buckets() rewind.Vector {
	les := []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"}
	cum := []float64{2, 10, 120, 600, 1100, 1450, 1490, 1497, 1499, 1500, 1500, 1500}
	v := make(rewind.Vector, len(les))
	for i := range les {
		v[i] = rewind.Sample{Labels: map[string]string{"le": les[i]}, V: cum[i]}
	}
	return v
}

type memorySource map[string]rewind.Vector

func (m memorySource) Query(_ context.Context, q string, _ time.Time) (rewind.Vector, error) {
	return m[q], nil
}

// grouped answers a grouped query of the built-in policy as Prometheus
// would: for every member named in the query, the series of benchCycle's
// answers with the member's system and version labels.
type grouped struct{ n int }

func (g grouped) Query(_ context.Context, q string, at time.Time) (rewind.Vector, error) {
	var out rewind.Vector
	sides := []string{"canary", "baseline"}
	if !strings.Contains(q, "baseline") {
		sides = sides[:1]
	}
	for i := range g.n {
		for _, side := range sides {
			canary := side == "canary"
			add := func(v float64, extra map[string]string) {
				l := map[string]string{"system": "s" + strconv.Itoa(i), "version": side}
				for k, x := range extra {
					l[k] = x
				}
				out = append(out, rewind.Sample{Labels: l, T: at, V: v})
			}
			switch {
			case strings.Contains(q, "_bucket"):
				for _, s := range buckets() {
					add(s.V, s.Labels)
				}
			case strings.Contains(q, "increase(http_requests_total") && strings.Contains(q, `"5.."`):
				add(pick(canary, 8, 30), nil)
			case strings.Contains(q, "increase(http_requests_total"):
				add(pick(canary, 1500, 6000), nil)
			default:
				add(42, nil)
			}
		}
	}
	return out, nil
}

// BenchmarkBatchCycle is Rewind's own cost of one cycle of a batch of 500
// systems of the built-in policy with grouped queries: fanning the 9
// answers out and evaluating 4 500 triggers (the source answers from
// memory), per system.
func BenchmarkBatchCycle(b *testing.B) {
	p := manySystems(b, 500)
	batch := NewBatch(p.Systems, BatchOptions{})
	src := cached{src: grouped{n: 500}, m: map[string]rewind.Vector{}}
	states := make([]*decide.SystemState, len(p.Systems))
	for i, s := range p.Systems {
		states[i] = decide.NewSystemState(s)
	}
	at := time.Unix(1e9, 0)
	ctx := context.Background()
	batch.Fetch(ctx, src, at, 1) // fills the cache
	b.ReportAllocs()
	for b.Loop() {
		ans := batch.Fetch(ctx, src, at, 1)
		for i, s := range p.Systems {
			states[i].Apply(at, ans.Observe(ctx, s, 1), p.Hash)
		}
		at = at.Add(30 * time.Second)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(p.Systems)), "ns/system")
}

// BenchmarkNewBatch is the cost of planning the grouped queries of 500
// systems of the built-in policy (at start and at each reload).
func BenchmarkNewBatch(b *testing.B) {
	p := manySystems(b, 500)
	b.ReportAllocs()
	for b.Loop() {
		NewBatch(p.Systems, BatchOptions{})
	}
}

// cached answers each query once from src, then from memory.
type cached struct {
	src rewind.Source
	m   map[string]rewind.Vector
}

func (c cached) Query(ctx context.Context, q string, at time.Time) (rewind.Vector, error) {
	if v, ok := c.m[q]; ok {
		return v, nil
	}
	v, err := c.src.Query(ctx, q, at)
	c.m[q] = v
	return v, err
}
