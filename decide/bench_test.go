package decide

import (
	"runtime"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

// BenchmarkApply10000Systems is one evaluation cycle of 10 000 systems × 9
// triggers through the state machine (observations precomputed; no I/O).
func BenchmarkApply10000Systems(b *testing.B) {
	sys := testSystem(b)
	const n = 10000
	states := make([]*SystemState, n)
	for i := range states {
		states[i] = NewSystemState(sys)
	}
	cycles := [][]rewind.Observation{allObs(sys, rewind.OutcomeFalse), allObs(sys, rewind.OutcomeTrue), allObs(sys, rewind.OutcomeNoData)}
	for _, c := range cycles {
		for i := range c {
			c[i].Canary, c[i].Baseline = rewind.Float(0.01), rewind.Float(0.005)
		}
	}
	at := t0
	b.ReportAllocs()
	k := 0
	for b.Loop() {
		obs := cycles[k%len(cycles)]
		for _, s := range states {
			s.Apply(at, obs, "hash")
		}
		at = at.Add(30 * time.Second)
		k++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n*len(sys.Triggers)), "ns/trigger")
}

// TestStateSizePerTrigger bounds the memory a trigger's state keeps.
func TestStateSizePerTrigger(t *testing.T) {
	sys := testSystem(t)
	const n = 2000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	states := make([]*SystemState, n)
	for i := range states {
		states[i] = NewSystemState(sys)
		for k := 0; k < 2*historyLen; k++ { // fill the history ring
			o := rewind.OutcomeTrue
			if k%2 == 1 {
				o = rewind.OutcomeFalse
			}
			obs := allObs(sys, o)
			for j := range obs {
				obs[j].Canary, obs[j].Baseline = rewind.Float(0.01), rewind.Float(0.005)
				obs[j].Readings = []rewind.Reading{{Side: "canary", Query: sys.Triggers[j].Canary, Value: obs[j].Canary}, {Side: "baseline", Query: sys.Triggers[j].Baseline, Value: obs[j].Baseline}}
			}
			states[i].Apply(t0.Add(time.Duration(k)*time.Minute), obs, "h")
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perTrigger := float64(after.HeapAlloc-before.HeapAlloc) / float64(n*len(sys.Triggers))
	t.Logf("state: %.0f bytes per trigger", perTrigger)
	if perTrigger > 2048 {
		t.Fatalf("state is %.0f bytes per trigger, over 2 KiB", perTrigger)
	}
	runtime.KeepAlive(states)
}
