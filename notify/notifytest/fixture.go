// Package notifytest is the test kit of the notifiers: the suite that every
// rewind.Notifier passes (Run), a fake clock that drives an Outbox through
// its backoff without sleeping (Clock), a recorded rollback to notify about
// (Rollback, Event) and a log capture that looks for secrets (Logs).
package notifytest

import (
	"time"

	rewind "github.com/rewind-sre/rewind"
)

// T0 is the decision time of the recorded rollback.
var T0 = time.Date(2026, 1, 1, 14, 20, 0, 0, time.UTC)

// Rollback is a recorded, finished rollback of "checkout": error-rate-high
// (judged) and latency-p99-high fired; every step ran; verified.
func Rollback() *rewind.Rollback {
	at := func(s int) time.Time { return T0.Add(time.Duration(s) * time.Second) }
	d := &rewind.Decision{
		System: "checkout", At: T0, Firing: []string{"error-rate-high", "latency-p99-high"}, PolicyHash: "3f2a91c0d1e2f3a4",
		Triggers: []rewind.TriggerEvidence{
			{
				Trigger: "error-rate-high", Severity: "critical", Action: rewind.ActionRollback, State: rewind.StateFiring,
				ActiveAt: T0.Add(-5 * time.Minute), For: "2m",
				Observation: rewind.Observation{
					Trigger: "error-rate-high", At: T0, Outcome: rewind.OutcomeTrue,
					Canary: rewind.Float(0.025), Baseline: rewind.Float(0.008),
					Reason: "canary 2.5% (75/3000) vs baseline 0.8% (480/60000): 3.1× the baseline, p = 2e-9 < α 0.01",
					Judge:  &rewind.Judgement{Test: "proportion", PValue: 2e-9, Alpha: 0.01, MinEffect: 1.5},
				},
				History: []rewind.Transition{
					{At: T0.Add(-5 * time.Minute), Trigger: "error-rate-high", From: rewind.StateOK, To: rewind.StatePending, Canary: rewind.Float(0.021), Baseline: rewind.Float(0.008)},
					{At: T0, Trigger: "error-rate-high", From: rewind.StatePending, To: rewind.StateFiring, Canary: rewind.Float(0.025), Baseline: rewind.Float(0.008)},
				},
			},
			{
				Trigger: "latency-p99-high", Severity: "warning", Action: rewind.ActionRollback, State: rewind.StateFiring,
				ActiveAt: T0.Add(-3 * time.Minute), For: "2m",
				Observation: rewind.Observation{
					Trigger: "latency-p99-high", At: T0, Outcome: rewind.OutcomeTrue,
					Canary: rewind.Float(1.92), Baseline: rewind.Float(0.41),
					Judge: &rewind.Judgement{Test: "latency", PValue: 1e-6, Alpha: 0.001, MinEffect: 2},
				},
				History: []rewind.Transition{
					{At: T0.Add(-3 * time.Minute), Trigger: "latency-p99-high", From: rewind.StateOK, To: rewind.StatePending, Canary: rewind.Float(1.7), Baseline: rewind.Float(0.4)},
					{At: T0.Add(-time.Minute), Trigger: "latency-p99-high", From: rewind.StatePending, To: rewind.StateFiring, Canary: rewind.Float(1.92), Baseline: rewind.Float(0.41)},
				},
			},
			{
				Trigger: "throughput-low", Severity: "critical", Action: rewind.ActionRollback, State: rewind.StateOK,
				Observation: rewind.Observation{Trigger: "throughput-low", At: T0, Outcome: rewind.OutcomeFalse, Canary: rewind.Float(98), Baseline: rewind.Float(101)},
			},
		},
	}
	step := func(n rewind.StepName, state rewind.StepState, from, to int, detail string, facts map[string]string) rewind.StepRecord {
		return rewind.StepRecord{Name: n, State: state, Attempts: 1, Started: at(from), Ended: at(to), Detail: detail, Facts: facts}
	}
	return &rewind.Rollback{
		ID: "rb-20260101T142000Z-3f2a91c0", System: "checkout", Reason: "error-rate-high, latency-p99-high",
		Requester: "rewind", Decision: d, State: rewind.RollbackSucceeded, Started: T0, Ended: at(95),
		Evidence: "/var/lib/rewind/evidence/rb-20260101T142000Z-3f2a91c0",
		Steps: []rewind.StepRecord{
			step(rewind.StepDrain, rewind.StepDone, 0, 4, "100% of traffic to checkout-baseline; canary request rate 0 after 3.2s", map[string]string{"drainTime": "3.2s"}),
			step(rewind.StepCheckBaseline, rewind.StepDone, 4, 5, "baseline success rate 99.9%, error rate 0.08%", nil),
			step(rewind.StepUndo, rewind.StepDone, 5, 31, "Deployment shop/checkout-canary rolled back to revision 41", map[string]string{"revision": "41"}),
			step(rewind.StepScaleDown, rewind.StepDone, 31, 33, "scaled to 0 replicas", nil),
			step(rewind.StepEvidence, rewind.StepDone, 33, 35, "evidence bundle /var/lib/rewind/evidence/rb-20260101T142000Z-3f2a91c0 (9 files)", map[string]string{"bundle": "/var/lib/rewind/evidence/rb-20260101T142000Z-3f2a91c0"}),
			step(rewind.StepVerify, rewind.StepDone, 35, 95, "baseline >= 0.99 held for 1m0s (0.9991)", nil),
		},
	}
}

// Thresholds are the recorded rollback's thresholds as the policy says.
var Thresholds = map[string]string{
	"error-rate-high":  "error ratio ≥ 1.5× baseline, α = 0.01",
	"latency-p99-high": "p99 ≥ 2× baseline, α = 0.001",
	"throughput-low":   "canary < baseline * 0.5",
}

// Event is an event of kind about Rollback(), with links.
func Event(kind rewind.EventKind) rewind.Event {
	rb := Rollback()
	sev := rewind.SeverityCritical
	if kind == rewind.EventRollbackCompleted {
		sev = rewind.SeverityInfo
	}
	return rewind.Event{
		Kind: kind, Severity: sev, System: rb.System, RollbackID: rb.ID, Reason: rb.Reason,
		Findings: rewind.FindingsOf(rb.Decision, Thresholds), Decision: rb.Decision, Rollback: rb,
		Links: rewind.Links{
			Evidence:  rb.Evidence,
			Dashboard: "https://grafana.example.com/d/rewind?var-system=checkout&from=1767276900000",
			Rollback:  "https://rewind.example.com/api/v1/rollbacks/" + rb.ID,
		},
		At: T0,
	}
}
