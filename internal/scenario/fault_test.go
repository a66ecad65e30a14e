package scenario

import (
	"math"
	"testing"
	"time"
)

// TestFaultParameters: the Monte Carlo's faults change the canary's
// parameters as documented.
func TestFaultParameters(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 10, 0, 0, time.UTC)
	c := Healthy(at.Add(-10*time.Minute), time.Hour, 2, 1)
	q99 := func(s Side) float64 { return s.LatencyP50 * math.Exp(z99*s.LatencyCV) }

	c.Fault = Fault{Kind: FaultLatencySpread, At: at}
	if s := c.faulty(c.Canary, at.Add(-time.Second), nil); s != c.Canary {
		t.Fatalf("fault applied before its start: %+v", s)
	}
	s := c.faulty(c.Canary, at, nil)
	if s.LatencyP50 != c.Canary.LatencyP50 || math.Abs(q99(s)/q99(c.Canary)-3) > 1e-9 {
		t.Fatalf("latency-spread: median %g → %g, p99 × %g; want the same median and p99 × 3", c.Canary.LatencyP50, s.LatencyP50, q99(s)/q99(c.Canary))
	}

	c.Fault = Fault{Kind: FaultSparseErrors, At: at, Value: 1.5}
	if s := c.faulty(c.Canary, at, nil); math.Abs(s.ErrorRate*s.RPS*60-1.5) > 1e-12 {
		t.Fatalf("sparse-errors: %g errors a minute, want 1.5", s.ErrorRate*s.RPS*60)
	}
}
