package watch

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/observe"
	"github.com/rewind-sre/rewind/policy"
)

// Reference is one window of the service's own past that a new revision is
// held against once the previous revision no longer serves.
type Reference struct {
	// Name is "before" for the window that ends when the rollout started,
	// else the season ("1d", "1w").
	Name string
	// Season is how far back the window is centred; 0 for "before".
	Season time.Duration
	// Window is the reference's length.
	Window time.Duration
}

// RefBefore names the window before the rollout.
const RefBefore = "before"

// References are the windows of h: the one before the rollout first, then
// one per season.
func References(h policy.History) []Reference {
	out := []Reference{{Name: RefBefore, Window: h.Window}}
	for _, s := range h.Seasons {
		out = append(out, Reference{Name: model.Duration(s).String(), Season: s, Window: h.Window})
	}
	return out
}

// Describe says which minutes the reference covers for an evaluation at
// `at` of a rollout that started at start.
func (r Reference) Describe(start, at time.Time) string {
	from, to := r.Span(start, at)
	return fmt.Sprintf("%s (%s … %s)", r.Name, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
}

// Span is the reference's window for an evaluation at `at` of a rollout
// that started at start: [start-Window, start] for "before", else the Window
// centred on at-Season.
func (r Reference) Span(start, at time.Time) (from, to time.Time) {
	if r.Season == 0 {
		return start.Add(-r.Window), start
	}
	end := at.Add(-r.Season + r.Window/2)
	return end.Add(-r.Window), end
}

// Rewrite moves the PromQL q to the reference: every range (of a range
// selector or a subquery) becomes the reference's window, and every
// selector is moved so that the window ends where the reference ends — with
// `@ start` for the window before the rollout (a fixed window), with
// `offset Season-Window/2` for a season (a window that moves with the
// evaluation, centred on the same instant a season earlier). Offsets the
// query already had are kept. Instant selectors outside a range are moved
// likewise. The result is printed by the Prometheus parser.
func (r Reference) Rewrite(q string, start time.Time) (string, error) {
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(q)
	if err != nil {
		return "", err
	}
	r.move(expr, start)
	return expr.String(), nil
}

func (r Reference) move(n parser.Node, start time.Time) {
	switch e := n.(type) {
	case *parser.SubqueryExpr:
		e.Range, e.RangeExpr = r.Window, nil
		e.OriginalOffsetExpr = nil
		r.shift(&e.OriginalOffset, &e.Timestamp, &e.StartOrEnd, start)
		return // the subquery's inside is evaluated relative to it
	case *parser.MatrixSelector:
		e.Range, e.RangeExpr = r.Window, nil
		if vs, ok := e.VectorSelector.(*parser.VectorSelector); ok {
			vs.OriginalOffsetExpr = nil
			r.shift(&vs.OriginalOffset, &vs.Timestamp, &vs.StartOrEnd, start)
		}
		return
	case *parser.VectorSelector:
		e.OriginalOffsetExpr = nil
		r.shift(&e.OriginalOffset, &e.Timestamp, &e.StartOrEnd, start)
		return
	}
	for _, c := range parser.Children(n) {
		r.move(c, start)
	}
}

func (r Reference) shift(offset *time.Duration, ts **int64, startOrEnd *parser.ItemType, start time.Time) {
	if r.Season == 0 {
		ms := start.UnixMilli()
		*ts, *startOrEnd = &ms, 0
		return
	}
	*offset += r.Season - r.Window/2
}

// historySystem is a rollout's system in the history phase: the canary is
// the new revision now, each two-sided trigger is repeated once per
// reference with its baseline queries moved there, and the observations
// are combined back into one per trigger of the template.
type historySystem struct {
	sys        *policy.System
	refs       []Reference
	index      [][]int // per template trigger: its triggers in sys, aligned with refs (one for one-sided)
	names      []string
	triggers   []*policy.Trigger // per template trigger, as judged here
	start      time.Time
	minSeasons int
}

// newHistory instantiates tmpl with canarySel now against baselineSel in
// the references of a rollout that started at start.
//
// For a peer (canarySel == baselineSel, the peer's service), a judge trigger
// against a fixed proportion (above) becomes a comparison with the peer's
// own history (see peerJudge): an incident lifts two services' error rates
// alike, but not always both across an absolute threshold at once.
func newHistory(tmpl *policy.System, name, deployment, canarySel, baselineSel string, start time.Time, peer bool) (*historySystem, error) {
	base, err := tmpl.Instantiate(name, deployment, canarySel, baselineSel)
	if err != nil {
		return nil, err
	}
	h := &historySystem{refs: References(tmpl.Watch.History), start: start, minSeasons: tmpl.Watch.History.MinSeasons}
	sys := *base
	sys.Triggers = nil
	for _, t := range base.Triggers {
		if peer && t.Form == policy.FormJudge && t.Judge.Above != nil {
			t = peerJudge(t)
		}
		h.names = append(h.names, t.Name)
		h.triggers = append(h.triggers, t)
		if !twoSided(t) {
			h.index = append(h.index, []int{len(sys.Triggers)})
			sys.Triggers = append(sys.Triggers, t)
			continue
		}
		var idx []int
		for _, r := range h.refs {
			c, err := atReference(t, r, start)
			if err != nil {
				return nil, fmt.Errorf("trigger %s at reference %s: %w", t.Name, r.Name, err)
			}
			idx = append(idx, len(sys.Triggers))
			sys.Triggers = append(sys.Triggers, c)
		}
		h.index = append(h.index, idx)
	}
	h.sys = &sys
	return h, nil
}

// PeerMinEffect is the factor by which a peer's proportion must exceed its
// own history, for a trigger against a fixed proportion, to count as the
// same degradation: the seed's error-rate factor.
const PeerMinEffect = 1.5

// peerJudge turns a judge trigger against a fixed proportion into a
// comparison of the same counts with their history: worse by PeerMinEffect.
func peerJudge(t *policy.Trigger) *policy.Trigger {
	c := *t
	j := *t.Judge
	j.Above, j.Baseline, j.MinEffect = nil, j.Canary, PeerMinEffect
	c.Judge = &j
	return &c
}

// twoSided reports whether t compares the canary with a baseline.
func twoSided(t *policy.Trigger) bool {
	switch t.Form {
	case policy.FormJudge:
		return t.Judge.Above == nil
	case policy.FormQuery, policy.FormExplicit:
		return t.Baseline != ""
	}
	return false
}

// atReference copies t with its baseline queries moved to r.
func atReference(t *policy.Trigger, r Reference, start time.Time) (*policy.Trigger, error) {
	c := *t
	c.Name = t.Name + "@" + r.Name
	var err error
	move := func(q string) string {
		if q == "" || err != nil {
			return q
		}
		var out string
		out, err = r.Rewrite(q, start)
		return out
	}
	if t.Judge != nil {
		j := *t.Judge
		j.Baseline.Bad, j.Baseline.Total, j.Baseline.Buckets = move(j.Baseline.Bad), move(j.Baseline.Total), move(j.Baseline.Buckets)
		c.Judge = &j
	} else {
		c.Baseline = move(t.Baseline)
	}
	return &c, err
}

// observe evaluates every reference and combines them per template trigger.
func (h *historySystem) observe(ctx context.Context, src rewind.Source, at time.Time, concurrency int) []rewind.Observation {
	raw := observe.Cycle(ctx, src, h.sys, at, concurrency)
	out := make([]rewind.Observation, len(h.index))
	for i, idx := range h.index {
		obs := make([]rewind.Observation, len(idx))
		for k, j := range idx {
			obs[k] = raw[j]
		}
		out[i] = h.combine(h.names[i], obs, at)
	}
	return out
}

// combine turns one trigger's observations against each reference into one:
// a failed query is degraded; without the reference before the rollout, or
// with fewer than minSeasons seasonal references with data, insufficient
// data; not worse than some reference with data, false; worse than every
// reference with data, true (with the weakest of the judgements).
func (h *historySystem) combine(name string, obs []rewind.Observation, at time.Time) rewind.Observation {
	if len(obs) == 1 {
		o := obs[0]
		o.Trigger = name
		o.Reason = strings.TrimSpace("new revision: " + o.Reason)
		return o
	}
	readings := []rewind.Reading{}
	for k, o := range obs {
		for _, r := range o.Readings {
			switch {
			case strings.HasPrefix(r.Side, "baseline"):
				r.Side = strings.Replace(r.Side, "baseline", "history "+h.refs[k].Name, 1)
			case k > 0:
				continue // the canary's readings are the same against every reference
			}
			readings = append(readings, r)
		}
	}
	pick := func(o rewind.Observation, outcome rewind.Outcome, reason string) rewind.Observation {
		o.Trigger, o.Outcome, o.Reason, o.Readings = name, outcome, reason, readings
		return o
	}
	for k, o := range obs {
		if o.Outcome == rewind.OutcomeError {
			return pick(o, rewind.OutcomeError, "history "+h.refs[k].Name+": "+o.Reason)
		}
	}
	if !decided(obs[0]) {
		return pick(obs[0], rewind.OutcomeNoData, "no judgement against the window before the rollout: "+obs[0].Reason)
	}
	seasons, missing := 0, []string{}
	for k := 1; k < len(obs); k++ {
		if decided(obs[k]) {
			seasons++
		} else {
			missing = append(missing, h.refs[k].Name+": "+obs[k].Reason)
		}
	}
	if seasons < h.minSeasons {
		return pick(obs[0], rewind.OutcomeNoData, fmt.Sprintf("history needs %d seasonal reference(s) with data, has %d (%s)", h.minSeasons, seasons, strings.Join(missing, "; ")))
	}
	weakest, against, unproven := -1, []string{}, -1
	for k, o := range obs {
		if !decided(o) {
			continue
		}
		if o.Outcome == rewind.OutcomeFalse {
			return pick(o, rewind.OutcomeFalse, "not worse than history "+h.refs[k].Describe(h.start, at)+": "+o.Reason)
		}
		if o.Outcome == rewind.OutcomeUnproven && unproven < 0 {
			unproven = k
		}
		against = append(against, h.refs[k].Name+pValue(o))
		if weakest < 0 || o.Judge != nil && obs[weakest].Judge != nil && o.Judge.PValue > obs[weakest].Judge.PValue {
			weakest = k
		}
	}
	if unproven >= 0 { // worse by the estimate against every reference, not proven against all
		return pick(obs[unproven], rewind.OutcomeUnproven, "worse than every history reference with data, not proven against "+h.refs[unproven].Describe(h.start, at)+": "+obs[unproven].Reason)
	}
	return pick(obs[weakest], rewind.OutcomeTrue, "worse than every history reference with data ("+strings.Join(against, ", ")+"): "+obs[weakest].Reason)
}

// decided: the judgement says whether the new revision is worse (proven
// or not) than the reference.
func decided(o rewind.Observation) bool {
	return o.Outcome.Worse() || o.Outcome == rewind.OutcomeFalse
}

func pValue(o rewind.Observation) string {
	if o.Judge == nil {
		return ""
	}
	return fmt.Sprintf(" p=%.2g", o.Judge.PValue)
}
