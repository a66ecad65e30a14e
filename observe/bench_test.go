package observe

import (
	"context"
	"os"
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
