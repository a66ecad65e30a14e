package decide

import (
	"math"
	"strings"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/judge"
	"github.com/rewind-sre/rewind/policy"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// run feeds outcomes at 30 s intervals and returns the states.
func run(r Rule, outcomes string) []rewind.TriggerState {
	st := Status{State: rewind.StateOK}
	var out []rewind.TriggerState
	for i, c := range outcomes {
		o := map[rune]rewind.Outcome{'T': rewind.OutcomeTrue, 'U': rewind.OutcomeUnproven, 'F': rewind.OutcomeFalse, 'N': rewind.OutcomeNoData, 'E': rewind.OutcomeError}[c]
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

		// The judge form: U is worse by the seed's measure (the point
		// estimate) without sufficient evidence, T worse with it.
		{"worse for the hold and proven at its end fires at the hold", twoMin, "UUUUT", "ppppf"},
		{"proven all along fires at the hold, not before", twoMin, "TTTTTT", "ppppff"},
		{"worse for the hold but unproven stays pending", twoMin, "UUUUUUUU", "pppppppp"},
		{"proven after the hold fires at the first proof", twoMin, "UUUUUUUTU", "pppppppff"},
		{"a proven regression shorter than the hold never fires", twoMin, "TTTTFTTTTF", "ppppoppppo"},
		{"noise that flickers never fires", twoMin, "UFUFTFTUFT", "popopoppop"},
		{"firing stays while worse, proven or not", twoMin, "UUUUTUUF", "ppppfffo"},
		{"no data ends the run, proof or not", twoMin, "UUUNTTTTT", "pppippppf"},
		{"a failed query ends the run", twoMin, "UUUETTTTU", "pppdppppp"},
		{"for 0s fires at the first proof", Rule{OnNoData: policy.NoDataIgnore}, "UUTF", "ppfo"},
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

// seqRun feeds a sequential judge one observation per 30 s: outcome U
// (worse by the window) or F, with the interval's counts canary bad/total
// and baseline bad/total.
type seqObs struct {
	outcome        rune
	cb, ct, bb, bt float64
}

func seqRun(r Rule, obs []seqObs) ([]rewind.TriggerState, Status) {
	st := Status{State: rewind.StateOK}
	var out []rewind.TriggerState
	for i, o := range obs {
		oc := map[rune]rewind.Outcome{'U': rewind.OutcomeUnproven, 'F': rewind.OutcomeFalse, 'N': rewind.OutcomeNoData}[o.outcome]
		ob := rewind.Observation{At: t0.Add(time.Duration(i) * 30 * time.Second), Outcome: oc, Judge: &rewind.Judgement{Test: "proportion"},
			Step: &rewind.Step{Canary: rewind.StepCounts{Bad: o.cb, Total: o.ct}, Baseline: rewind.StepCounts{Bad: o.bb, Total: o.bt}}}
		st = Assess(st, ob, r)
		out = append(out, st.State)
	}
	return out, st
}

func repeat(n int, o seqObs) []seqObs {
	out := make([]seqObs, n)
	for i := range out {
		out[i] = o
	}
	return out
}

func TestAssessSequential(t *testing.T) {
	seq := func(hold time.Duration) Rule {
		return Rule{For: hold, OnNoData: policy.NoDataIgnore,
			Seq: &Sequential{Test: judge.SeqTest{MinEffect: 1.5}, Alpha: 0.01, Step: 30 * time.Second, Window: 2 * time.Minute}}
	}
	fine := seqObs{'F', 0, 150, 3, 600}
	// 5 req/s canary at 10 % errors, 20 req/s baseline at 0.5 %, per 30 s.
	bad := seqObs{'U', 15, 150, 3, 600}
	// The same canary at the baseline's rate: worse by a noisy window, not in its counts.
	healthy := seqObs{'U', 1, 150, 3, 600}
	cases := []struct {
		name string
		rule Rule
		obs  []seqObs
		want string
	}{
		{"a strong regression fires at the hold", seq(2 * time.Minute), repeat(6, bad), "ppppff"},
		{"the window that begins a run is not evidence", seq(0), repeat(2, bad), "pf"},
		{"healthy counts in a worse window never prove it", seq(2 * time.Minute), repeat(12, healthy), "pppppppppppp"},
		{"a short regression never fires, however strong", seq(2 * time.Minute),
			append(append(repeat(4, bad), fine), repeat(4, bad)...), "ppppopppp"},
		{"evidence outlives a break shorter than the window; the hold does not", seq(2 * time.Minute),
			append(append(repeat(3, bad), fine), repeat(8, healthy)...), "pppoppppffff"},
		{"a break of more than the window begins a new episode", seq(2 * time.Minute),
			append(append(repeat(3, bad), repeat(5, fine)...), repeat(8, healthy)...), "pppooooopppppppp"},
		{"no data ends the run", seq(2 * time.Minute),
			append(append(repeat(3, bad), seqObs{'N', 0, 0, 0, 0}), repeat(5, bad)...), "pppippppf"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, _ := seqRun(c.rule, c.obs)
			want := states(c.want)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("got %v, want %v (first difference at %d)", got, want, i)
				}
			}
		})
	}
}

// TestSequentialEvidenceIsReported: the episode's e-value, counts and number
// reach the observation, and a proven observation's outcome is true.
func TestSequentialEvidenceIsReported(t *testing.T) {
	r := Rule{For: time.Minute, Seq: &Sequential{Test: judge.SeqTest{MinEffect: 1.5}, Alpha: 0.01, Step: 30 * time.Second, Window: time.Minute}}
	_, st := seqRun(r, repeat(3, seqObs{'U', 15, 150, 3, 600}))
	j := st.Last.Judge
	if st.State != rewind.StateFiring || st.Last.Outcome != rewind.OutcomeTrue || j == nil || !(*j.EValue >= 100) || j.Episode != 1 || j.PValue > 0.01 {
		t.Fatalf("state %s outcome %s judge %+v", st.State, st.Last.Outcome, j)
	}
	if !strings.Contains(j.Detail, "canary 30/300") || !strings.Contains(j.Detail, "proven") {
		t.Fatalf("detail %q", j.Detail)
	}
	// The second episode has a smaller share of α: the same counts give an
	// e-value weighted 1/(2·3) instead of 1/(1·2).
	obs := append(append(repeat(3, seqObs{'U', 15, 150, 3, 600}), repeat(3, seqObs{'F', 0, 150, 3, 600})...), repeat(3, seqObs{'U', 15, 150, 3, 600})...)
	_, st2 := seqRun(r, obs)
	if st2.Last.Judge.Episode != 2 || math.Abs(*st2.Last.Judge.EValue / *j.EValue - 2.0/6) > 1e-9 {
		t.Fatalf("episode %d, e %v vs the first one's %v", st2.Last.Judge.Episode, *st2.Last.Judge.EValue, *j.EValue)
	}
}

// TestSequentialStepSpacing: an observation closer to the previous one than
// the step interval (a backtest with a shorter --step) adds nothing.
func TestSequentialStepSpacing(t *testing.T) {
	r := Rule{For: 0, Seq: &Sequential{Test: judge.SeqTest{MinEffect: 1.5}, Alpha: 0.01, Step: time.Minute, Window: 5 * time.Minute}}
	_, st := seqRun(r, repeat(4, seqObs{'U', 15, 150, 3, 600}))
	if st.Evidence.Intervals != 0 || st.State != rewind.StatePending {
		t.Fatalf("30 s apart with a 1m step: %d intervals added, state %s", st.Evidence.Intervals, st.State)
	}
}
