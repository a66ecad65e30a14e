package observe

import (
	"context"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/decide"
	"github.com/rewind-sre/rewind/policy"
)

// BenchmarkEvaluateTrigger is the engine's cost per trigger evaluation
// without I/O: the default policy's cycle against an in-memory source
// (queries, conditions, the state machine), divided by its 9 triggers.
func BenchmarkEvaluateTrigger(b *testing.B) {
	p, err := policy.Parse("d", policy.Default())
	if err != nil {
		b.Fatal(err)
	}
	sys := p.Systems[0]
	src := memorySource{}
	for _, q := range sys.Queries() {
		src[q] = rewind.Vector{{V: 42}}
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

type memorySource map[string]rewind.Vector

func (m memorySource) Query(_ context.Context, q string, _ time.Time) (rewind.Vector, error) {
	return m[q], nil
}
