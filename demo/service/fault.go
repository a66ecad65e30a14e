package service

import (
	"fmt"
	"math"
)

// Fault is what the fault switch makes the service do wrong. Each fault is
// built to trip one trigger of the default policy (policy/default.yaml).
type Fault string

// The faults, named as the demo's scenarios.
const (
	FaultNone           Fault = "none"
	FaultErrorRate      Fault = "error-rate"      // 10 % of requests answered 500
	FaultLatency        Fault = "latency"         // every latency ×3, the tail included
	FaultSuccessRate    Fault = "success-rate"    // 8 % of requests answered 500
	FaultThroughput     Fault = "throughput"      // transactions at 30 % of the healthy rate
	FaultByzantine      Fault = "byzantine"       // one byzantine event, when the fault is switched on
	FaultDAGCorruption  Fault = "dag-corruption"  // a DAG validation error every second
	FaultMemory         Fault = "memory"          // working set at 97 % of the memory limit
	FaultCircuitBreaker Fault = "circuit-breaker" // 20 circuit-breaker trips a minute
)

// Fault magnitudes.
const (
	errorRateFault   = 0.10
	successRateFault = 0.08
	latencyFactor    = 3
	throughputFactor = 0.30
	dagErrorsPerSec  = 1.0
	memoryShareFault = 0.97
	tripsPerSec      = 20.0 / 60
)

// Faults lists every fault, FaultNone last.
func Faults() []Fault {
	return []Fault{FaultErrorRate, FaultLatency, FaultSuccessRate, FaultThroughput, FaultByzantine,
		FaultDAGCorruption, FaultMemory, FaultCircuitBreaker, FaultNone}
}

// ParseFault returns the fault named s, or an error listing the valid names.
func ParseFault(s string) (Fault, error) {
	for _, f := range Faults() {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown fault %q (one of %v)", s, Faults())
}

// behaviour is how a process behaves under a fault.
type behaviour struct {
	errorRate   float64 // share of requests answered 500
	latency     float64 // factor on every drawn latency
	txFactor    float64 // factor on Config.TxPerSecond
	dagPerSec   float64 // DAG validation errors per second
	memoryShare float64 // working set as a share of the memory limit
	tripsPerSec float64 // circuit-breaker trips per second
}

// behaviour returns how a service configured by c behaves under f.
func (c Config) behaviour(f Fault) behaviour {
	b := behaviour{errorRate: c.ErrorRate, latency: 1, txFactor: 1, memoryShare: c.MemoryShare}
	switch f {
	case FaultErrorRate:
		b.errorRate = math.Max(b.errorRate, errorRateFault)
	case FaultSuccessRate:
		b.errorRate = math.Max(b.errorRate, successRateFault)
	case FaultLatency:
		b.latency = latencyFactor
	case FaultThroughput:
		b.txFactor = throughputFactor
	case FaultDAGCorruption:
		b.dagPerSec = dagErrorsPerSec
	case FaultMemory:
		b.memoryShare = memoryShareFault
	case FaultCircuitBreaker:
		b.tripsPerSec = tripsPerSec
	}
	return b
}

// carry turns a fractional count of events into whole events over time, so
// that counters of discrete events grow by whole numbers at the right rate.
type carry float64

// take adds n events and returns the whole ones due. A sum within 1e-9 of
// a whole number counts as that number: a third of an event three times
// is one event, not 0.999… of one.
func (c *carry) take(n float64) float64 {
	*c += carry(n)
	whole := math.Floor(float64(*c) + 1e-9)
	*c -= carry(whole)
	return whole
}
