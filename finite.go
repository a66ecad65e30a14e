package rewind

import (
	"encoding/json"
	"math"
)

// This file keeps NaN and ±Inf out of everything Rewind writes: the
// journal (SQLite), the API, evidence and notices. They are no data
// (docs/decisions.md), and encoding/json refuses them ("unsupported value"),
// which would lose a rollback's record. Float already returns nil for
// them; the MarshalJSON methods below are the backstop for a value set
// any other way: a non-finite optional value is omitted, never written.

// IsFinite reports whether v is neither NaN nor ±Inf.
func IsFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Finite returns p when it points to a finite value, else nil.
func Finite(p *float64) *float64 {
	if p == nil || !IsFinite(*p) {
		return nil
	}
	return p
}

// finiteOmit is v as an optional value: nil when it is not finite.
func finiteOmit(v float64) *float64 {
	if !IsFinite(v) {
		return nil
	}
	return &v
}

// marshalFinite writes v, a copy of a value as its plain type (without its
// MarshalJSON method), with the optional values at opt omitted where they
// are not finite.
func marshalFinite(v any, opt ...**float64) ([]byte, error) {
	for _, p := range opt {
		*p = Finite(*p)
	}
	return json.Marshal(v)
}

// MarshalJSON writes the reading with a non-finite value omitted.
func (r Reading) MarshalJSON() ([]byte, error) {
	type plain Reading
	p := plain(r)
	return marshalFinite(&p, &p.Value)
}

// MarshalJSON writes the observation with non-finite values omitted.
func (o Observation) MarshalJSON() ([]byte, error) {
	type plain Observation
	p := plain(o)
	return marshalFinite(&p, &p.Canary, &p.Baseline)
}

// MarshalJSON writes the transition with non-finite values omitted.
func (t Transition) MarshalJSON() ([]byte, error) {
	type plain Transition
	p := plain(t)
	return marshalFinite(&p, &p.Canary, &p.Baseline)
}

// MarshalJSON writes the finding with non-finite values omitted.
func (f Finding) MarshalJSON() ([]byte, error) {
	type plain Finding
	p := plain(f)
	return marshalFinite(&p, &p.Canary, &p.Baseline)
}

// MarshalJSON writes the judgement with every non-finite number omitted:
// the p-value, alpha and minimum effect as well as the optional values and
// the counts.
func (j Judgement) MarshalJSON() ([]byte, error) {
	type plain Judgement
	p := plain(j)
	p.Effect, p.EffectLow, p.EffectHigh, p.Needed = Finite(j.Effect), Finite(j.EffectLow), Finite(j.EffectHigh), Finite(j.Needed)
	if len(j.Counts) > 0 {
		p.Counts = make(map[string]float64, len(j.Counts))
		for k, v := range j.Counts {
			if IsFinite(v) {
				p.Counts[k] = v
			}
		}
	}
	out := struct {
		plain
		PValue    *float64 `json:"pValue,omitempty"`
		Alpha     *float64 `json:"alpha,omitempty"`
		MinEffect *float64 `json:"minEffect,omitempty"`
	}{plain: p, PValue: finiteOmit(j.PValue), Alpha: finiteOmit(j.Alpha)}
	if j.MinEffect != 0 {
		out.MinEffect = finiteOmit(j.MinEffect)
	}
	return json.Marshal(out)
}
