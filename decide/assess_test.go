package decide

import (
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// run feeds outcomes at 30 s intervals and returns the states.
func run(r Rule, outcomes string) []rewind.TriggerState {
	st := Status{State: rewind.StateOK}
	var out []rewind.TriggerState
	for i, c := range outcomes {
		o := map[rune]rewind.Outcome{'T': rewind.OutcomeTrue, 'F': rewind.OutcomeFalse, 'N': rewind.OutcomeNoData, 'E': rewind.OutcomeError}[c]
		st = Assess(st, rewind.Observation{At: t0.Add(time.Duration(i) * 30 * time.Second), Outcome: o}, r)
		out = append(out, st.State)
	}
	return out
}

func states(s string) []rewind.TriggerState {
	m := map[rune]rewind.TriggerState{'o': rewind.StateOK, 'p': rewind.StatePending, 'f': rewind.StateFiring, 'i': rewind.StateInsufficientData, 'd': rewind.StateDegraded}
	var out []rewind.TriggerState
	for _, c := range s {
		out = append(out, m[c])
	}
	return out
}

func TestAssess(t *testing.T) {
	twoMin := Rule{For: 2 * time.Minute, OnNoData: policy.NoDataIgnore}
	cases := []struct {
		name     string
		rule     Rule
		outcomes string
		want     string
	}{
		{"holds for exactly the hold time", twoMin, "TTTTTT", "ppppff"},
		{"false resets the hold", twoMin, "TTTFTTTTT", "pppoppppf"},
		{"no data resets the hold", twoMin, "TTTNTTTTT", "pppippppf"},
		{"failed query resets the hold", twoMin, "TTTETTTTT", "pppdppppf"},
		{"firing ends when the condition turns false", twoMin, "TTTTTF", "ppppfo"},
		{"for 0s fires at once", Rule{OnNoData: policy.NoDataIgnore}, "FTF", "ofo"},
		{"no data never fires by default", twoMin, "NNNNNNNN", "iiiiiiii"},
		{"errors never fire", Rule{}, "EEEE", "dddd"},
		{"onNoData fire holds on no data", Rule{For: time.Minute, OnNoData: policy.NoDataFire}, "NNNF", "ppfo"},
		{"onNoData fire does not fire on errors", Rule{OnNoData: policy.NoDataFire}, "EE", "dd"},
		{"short bumps never fire", twoMin, "TTFTTFTTF", "ppoppoppo"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := run(c.rule, c.outcomes)
			want := states(c.want)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("outcomes %s: got %v, want %v (first difference at %d)", c.outcomes, got, want, i)
				}
			}
		})
	}
}

func TestAssessActiveAtAndSince(t *testing.T) {
	r := Rule{For: time.Minute}
	st := Status{State: rewind.StateOK}
	st = Assess(st, rewind.Observation{At: t0, Outcome: rewind.OutcomeFalse}, r)
	st = Assess(st, rewind.Observation{At: t0.Add(30 * time.Second), Outcome: rewind.OutcomeTrue}, r)
	if !st.ActiveAt.Equal(t0.Add(30*time.Second)) || st.State != rewind.StatePending {
		t.Fatalf("activeAt %v state %s", st.ActiveAt, st.State)
	}
	st = Assess(st, rewind.Observation{At: t0.Add(90 * time.Second), Outcome: rewind.OutcomeTrue}, r)
	if st.State != rewind.StateFiring || !st.Since.Equal(t0.Add(90*time.Second)) || !st.ActiveAt.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("got %+v", st)
	}
	st = Assess(st, rewind.Observation{At: t0.Add(120 * time.Second), Outcome: rewind.OutcomeNoData}, r)
	if !st.ActiveAt.IsZero() || st.State != rewind.StateInsufficientData {
		t.Fatalf("no data must reset activeAt: %+v", st)
	}
}
