package rewind_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

func inf() *float64 { v := math.Inf(1); return &v }
func nan() *float64 { v := math.NaN(); return &v }

// TestNonFiniteValuesAreOmitted: NaN and ±Inf never reach JSON (the
// journal, the API, evidence): they are omitted, and the encoding succeeds.
func TestNonFiniteValuesAreOmitted(t *testing.T) {
	if rewind.Float(math.Inf(-1)) != nil || rewind.Float(math.NaN()) != nil || *rewind.Float(2) != 2 {
		t.Fatal("Float must return nil for NaN and ±Inf, and the value otherwise")
	}
	j := &rewind.Judgement{Test: "proportion", PValue: math.NaN(), Alpha: 0.01, Effect: inf(), MinEffect: math.Inf(1),
		Counts: map[string]float64{"canaryBad": 3, "canaryTotal": math.Inf(1)}, Needed: nan()}
	obs := rewind.Observation{Trigger: "t", At: time.Unix(0, 0), Outcome: rewind.OutcomeTrue, Canary: inf(), Baseline: nan(), Judge: j,
		Readings: []rewind.Reading{{Side: "canary", Value: inf(), Series: 1}}}
	d := rewind.Decision{System: "s", Triggers: []rewind.TriggerEvidence{{Trigger: "t", State: rewind.StateFiring, Observation: obs,
		History: []rewind.Transition{{Trigger: "t", Canary: inf(), Baseline: nan(), Judge: j}}}}}
	rb := rewind.Rollback{ID: "rb-1", System: "s", Decision: &d}
	b, err := json.Marshal(rb)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"Inf", "NaN", `"canary":`, `"baseline":`, `"value":`, `"pValue":`, `"effect":`, `"neededRequests":`, `"canaryTotal":`, `"minEffect":`} {
		if strings.Contains(string(b), bad) {
			t.Errorf("%s in %s", bad, b)
		}
	}
	for _, good := range []string{`"alpha":0.01`, `"canaryBad":3`} {
		if !strings.Contains(string(b), good) {
			t.Errorf("%s missing from %s", good, b)
		}
	}
	var back rewind.Rollback
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if got := back.Decision.Triggers[0].Observation.Judge; got.Alpha != 0.01 || got.Counts["canaryBad"] != 3 {
		t.Fatalf("round trip: %+v", got)
	}
	f := rewind.FindingsOf(&d, nil)
	if _, err := json.Marshal(f); err != nil {
		t.Fatal(err)
	}
}
