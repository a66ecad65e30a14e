package judge

import (
	"math"
	"strconv"
)

// text builds a Detail string with few allocations: the judge runs every
// evaluation cycle for every trigger.
type text struct{ b []byte }

func newText() *text { return &text{b: make([]byte, 0, 192)} }

func (t *text) String() string { return string(t.b) }

// s appends literal strings.
func (t *text) s(parts ...string) *text {
	for _, p := range parts {
		t.b = append(t.b, p...)
	}
	return t
}

// num appends integers exactly and other values with three significant
// digits.
func (t *text) num(v float64) *text {
	switch {
	case math.IsInf(v, 1):
		t.b = append(t.b, "∞"...)
	case math.IsNaN(v):
		t.b = append(t.b, "n/a"...)
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		t.b = strconv.AppendFloat(t.b, v, 'f', -1, 64)
	default:
		t.b = strconv.AppendFloat(t.b, v, 'g', 3, 64)
	}
	return t
}

// pct appends a proportion as a percentage.
func (t *text) pct(v float64) *text {
	if math.IsNaN(v) {
		return t.s("n/a")
	}
	t.b = strconv.AppendFloat(t.b, 100*v, 'g', 3, 64)
	return t.s("%")
}

// times appends a ratio as "2.5×".
func (t *text) times(v float64) *text {
	switch {
	case math.IsInf(v, 1):
		return t.s("∞")
	case math.IsNaN(v):
		return t.s("n/a")
	}
	t.b = strconv.AppendFloat(t.b, v, 'g', 3, 64)
	return t.s("×")
}

// requests appends "1 canary request" or "n canary requests".
func (t *text) requests(n float64) *text {
	if n == 1 {
		return t.s("1 canary request")
	}
	return t.num(n).s(" canary requests")
}

// needed appends the needed-requests clause of an insufficient result.
func (t *text) needed(n float64) *text {
	switch {
	case n == 0:
		return t
	case math.IsInf(n, 1):
		return t.s("; no request count would suffice")
	}
	return t.s("; about ").requests(n).s(" needed to decide")
}

// verdict appends the decision after "p=…": whether the canary is worse
// by the seed's measure (its point estimate past goal) and whether that is
// significant.
func (t *text) verdict(sig, worse, holds bool, alpha float64, goal func(*text) *text) *text {
	switch {
	case holds:
		t.s("≤ α=").num(alpha).s(" and effect ")
		return goal(t).s(": holds")
	case worse && !sig:
		t.s("> α=").num(alpha).s(": effect ")
		return goal(t).s(" but not significant")
	case worse:
		t.s("≤ α=").num(alpha).s(" and effect ")
		return goal(t).s(", but fewer than 2 bad canary requests")
	case sig:
		t.s("≤ α=").num(alpha).s(", but the effect is not ")
		return goal(t)
	}
	t.s("> α=").num(alpha).s(": not significant, and the effect is not ")
	return goal(t)
}

// beyond is the goal of a ratio test: strictly past f toward worse.
func beyond(f float64, inc bool) func(*text) *text {
	return func(t *text) *text {
		if inc {
			return t.s("> ").times(f)
		}
		return t.s("< ").times(1 / f)
	}
}

// beyondShare is the goal of a one-sample test: the share strictly past a.
func beyondShare(a float64, inc bool) func(*text) *text {
	return func(t *text) *text {
		if inc {
			return t.s("> ").pct(a)
		}
		return t.s("< ").pct(a)
	}
}

// cannotDecide appends the clause of a result that cannot reach
// significance even at its most extreme outcome.
func (t *text) cannotDecide(n, alpha float64, extreme string, needed float64) *text {
	return t.requests(n).s(" cannot reach significance at α=").num(alpha).s(" even if ", extreme).needed(needed)
}

// tooFew appends the clause of a canary below the minimum request count.
func (t *text) tooFew(n, minimum, needed float64) *text {
	return t.requests(n).s(", fewer than the minimum ").num(minimum).needed(needed)
}

func worseWord(inc bool) string {
	if inc {
		return "above"
	}
	return "below"
}

// worstCase names the most extreme outcome toward worse.
func worstCase(inc bool) string {
	if inc {
		return "all were bad"
	}
	return "none were counted"
}
