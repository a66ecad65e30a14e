package ui

import (
	"context"
	"errors"
	"html/template"
	"math"
	"net/http"
	"slices"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/controller"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/policy"
)

// Reasons are the seed's manual rollback reasons; free text is accepted too.
var Reasons = []string{"customer-escalation", "security-vulnerability", "business-decision", "unexpected-behavior", "team-consensus"}

// maxReasonLen bounds a free-text reason.
const maxReasonLen = 500

// chartView is one trigger's chart on the system page.
type chartView struct {
	ID        string
	Trigger   string
	Form      policy.Form
	SVG       template.HTML
	Note      string // why there is no chart, or what is missing from it
	Label     string // what the threshold line is
	Above     bool
	Baseline  bool
	Threshold bool
	Desc      string
}

type chartsData struct {
	System string
	Window string // what the x axis covers, in words
	Charts []chartView
	Note   string
}

// card is one trigger on the system page: its state and its chart.
type card struct {
	T trigView
	C *chartView
}

type systemData struct {
	System    sysView
	Charts    chartsData
	Cards     []card
	Rollbacks []rbRow
	Revisions []Revision
	RevError  string
	GitOps    []string // the GitOps owners, in words
	Reasons   []string
	Confirm   string // the rollback form's confirmation, kept after an error
}

func (u *UI) status(name string) (controller.SystemStatus, bool) {
	for _, st := range u.live.refresh().statuses {
		if st.Name == name {
			return st, true
		}
	}
	return controller.SystemStatus{}, false
}

func (u *UI) system(w http.ResponseWriter, r *http.Request) {
	msg := ""
	switch r.URL.Query().Get("done") {
	case "paused":
		msg = "Automatic rollback is paused: Rewind keeps watching and deciding, and tells people, but does not roll back."
	case "resumed":
		msg = "Automatic rollback is resumed."
	}
	u.systemPage(w, r, http.StatusOK, msg, "")
}

func (u *UI) systemPage(w http.ResponseWriter, r *http.Request, code int, flash, failure string) {
	name := r.PathValue("name")
	st, ok := u.status(name)
	if !ok {
		u.errorPage(w, r, http.StatusNotFound, "../", "There is no system "+name+" in the policy.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), chartTimeout)
	defer cancel()
	sys, _, _ := u.opt.Controller.Lookup(name)
	d := systemData{System: viewSystem(st, sys, u.live.th.of(sys)), Reasons: Reasons}
	rbs, err := u.opt.Rollbacks.List(ctx, plan.ListOptions{System: name, Limit: 10})
	if err != nil {
		u.opt.Log.Error("ui: listing rollbacks", "system", name, "err", err)
	}
	for _, rb := range rbs {
		d.Rollbacks = append(d.Rollbacks, rowOf(rb))
	}
	d.Charts = u.chartsOf(ctx, name, rbs)
	for _, t := range d.System.Triggers {
		c := card{T: t}
		for i := range d.Charts.Charts {
			if d.Charts.Charts[i].Trigger == t.Name {
				c.C = &d.Charts.Charts[i]
			}
		}
		d.Cards = append(d.Cards, c)
	}
	if u.opt.GitOps != nil {
		d.GitOps = u.opt.GitOps(name)
	}
	if u.opt.Revisions != nil {
		revs, err := u.opt.Revisions(ctx, name)
		d.Revisions = revs
		if err != nil {
			d.RevError = err.Error()
		}
	}
	p := u.newPage(r, name, "../", "systems", d)
	p.Flash, p.Error = flash, failure
	u.render(w, r, code, "system", p)
}

// charts is the charts fragment, refreshed by the page every half minute.
func (u *UI) charts(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ctx, cancel := context.WithTimeout(r.Context(), chartTimeout)
	defer cancel()
	if _, _, err := u.opt.Controller.Lookup(name); err != nil {
		http.Error(w, "no such system", http.StatusNotFound)
		return
	}
	rbs, _ := u.opt.Rollbacks.List(ctx, plan.ListOptions{System: name, Limit: 10})
	u.fragment(w, r, "charts", u.chartsOf(ctx, name, rbs))
}

// chartsOf draws every trigger of a system over the last hour (or over the
// history there is, when it is shorter), with its threshold, pending and
// firing periods and the rollbacks.
func (u *UI) chartsOf(ctx context.Context, name string, rbs []*rewind.Rollback) chartsData {
	d := chartsData{System: name}
	sys, src, err := u.opt.Controller.Lookup(name)
	if err != nil {
		d.Note = err.Error()
		return d
	}
	rs, ok := src.(rewind.RangeSource)
	if !ok {
		d.Note = "This system's metrics source cannot answer range queries: no charts."
		return d
	}
	specs := make([]chartSpec, len(sys.Triggers))
	charted := make([]bool, len(sys.Triggers))
	var queries []string
	for i, t := range sys.Triggers {
		specs[i], charted[i] = specOf(t, sys)
		if charted[i] {
			queries = append(queries, specs[i].queries()...)
		}
	}
	step := chartWindow / chartPoints
	end := u.opt.Now().Truncate(step)
	c := &rangeCache{src: rs, start: end.Add(-chartWindow), end: end, step: step, results: map[string]rangeResult{}, concurrency: chartQueries, slots: u.rangeSlots}
	c.fetch(ctx, queries)
	if first := c.firstData(); first > 0 && first > c.points()/4 {
		// Young: chart the history there is, at a finer step.
		from := c.start.Add(time.Duration(first-1) * c.step)
		fine := max(end.Sub(from)/chartPoints, minChartStep).Truncate(time.Second)
		c = &rangeCache{src: rs, start: end.Add(-end.Sub(from).Truncate(fine)), end: end, step: fine, results: map[string]rangeResult{},
			concurrency: chartQueries, slots: u.rangeSlots}
		c.fetch(ctx, queries)
	}
	d.Window = "the last " + dur(c.end.Sub(c.start)) + ", one point every " + dur(c.step)
	if c.end.Sub(c.start) < chartWindow {
		d.Window += " (all the history there is)"
	}
	markers, decided := rollbackMarks(rbs)
	for i, t := range sys.Triggers {
		cv := chartView{ID: "c-" + t.Name, Trigger: t.Name, Form: t.Form}
		if !charted[i] {
			cv.Note = "A health check: there are no metrics to chart; its state is above."
			d.Charts = append(d.Charts, cv)
			continue
		}
		trs := append(u.opt.History.Transitions(name, t.Name), decided[t.Name]...)
		d.Charts = append(d.Charts, u.chart(c, specs[i], t, mergeTransitions(trs), markers, cv))
	}
	return d
}

func (u *UI) chart(c *rangeCache, s chartSpec, t *policy.Trigger, trs []rewind.Transition, markers []marker, cv chartView) chartView {
	n := c.points()
	canary, err := c.read(s.canary, n)
	if err != nil {
		cv.Note = "The canary's query failed: " + err.Error()
		return cv
	}
	baseline, err := c.read(s.baseline, n)
	if err != nil {
		cv.Note = "The baseline's query failed: " + err.Error()
		baseline = nil
	}
	lo, hi := dataRange(canary, baseline)
	th, above := s.thresholdLine(baseline, n, lo, hi)
	p := &plot{id: cv.ID, start: c.start, step: c.step, canary: canary, baseline: baseline, threshold: th, above: above,
		unit: s.unit, periods: periods(trs, c.start, c.end), markers: markers}
	p.title = t.Name + ": canary and baseline"
	p.desc = describe(t.Name, s.unit, canary, baseline, th, s.label, p.periods, c.start, c.end)
	if lastOf(s.unit, canary) == "has no data" && (baseline == nil || lastOf(s.unit, baseline) == "has no data") && cv.Note == "" {
		cv.Note = "No data in this period."
	}
	cv.SVG, cv.Desc, cv.Label, cv.Above = p.svg(), p.desc, s.label, above
	cv.Baseline, cv.Threshold = baseline != nil, th != nil
	return cv
}

// dataRange bounds the search for a condition's boundary: from below the
// data's minimum (or 0) to well above its maximum.
func dataRange(ss ...series) (lo, hi float64) {
	lo, hi = 0, math.Inf(-1)
	for _, s := range ss {
		for _, v := range s {
			if !math.IsNaN(v) {
				lo, hi = math.Min(lo, 2*v), math.Max(hi, v)
			}
		}
	}
	return lo, math.Max(4*hi, 1)
}

func (c *rangeCache) points() int { return int(c.end.Sub(c.start)/c.step) + 1 }

// firstData is the first grid index where any fetched query has a value
// (-1: none has).
func (c *rangeCache) firstData() int {
	first := -1
	for _, r := range c.results {
		for _, s := range r.m {
			for _, p := range s.Points {
				i := int(p.T.Sub(c.start) / c.step)
				if first < 0 || i < first {
					first = i
				}
				break
			}
		}
	}
	return first
}

// rollbackMarks are the rollbacks' decisions and ends, and the state
// transitions their decisions recorded (which outlive a restart).
func rollbackMarks(rbs []*rewind.Rollback) ([]marker, map[string][]rewind.Transition) {
	var ms []marker
	trs := map[string][]rewind.Transition{}
	for _, rb := range rbs {
		what := "manual rollback " + rb.ID + " requested"
		at := rb.Started
		if d := rb.Decision; d != nil {
			what, at = "rollback "+rb.ID+" decided", d.At
			for _, te := range d.Triggers {
				trs[te.Trigger] = append(trs[te.Trigger], te.History...)
			}
		}
		ms = append(ms, marker{At: at, Label: what})
		if !rb.Ended.IsZero() {
			ms = append(ms, marker{At: rb.Ended, Label: "rollback " + rb.ID + " " + string(rb.State)})
		}
	}
	return ms, trs
}

// pause pauses or resumes automatic rollback of a system.
func (u *UI) pause(paused bool) func(http.ResponseWriter, *http.Request, identity) {
	action, done := "resume", "resumed"
	if paused {
		action, done = "pause", "paused"
	}
	return func(w http.ResponseWriter, r *http.Request, who identity) {
		name := r.PathValue("name")
		err := u.opt.Controller.SetPaused(name, paused)
		u.opt.Audit.Warn("automatic rollback "+action, "who", requester(who, r), "via", "ui", "system", name, "err", errText(err))
		if errors.Is(err, controller.ErrUnknownSystem) {
			u.errorPage(w, r, http.StatusNotFound, "../../", "There is no system "+name+" in the policy.")
			return
		}
		if err != nil {
			u.errorPage(w, r, http.StatusInternalServerError, "../../", err.Error())
			return
		}
		u.live.invalidate()
		seeOther(w, "../"+name+"?done="+done)
	}
}

// rollback starts an operator's rollback: a reason (one of the seed's, or
// free text) and the system's name typed out as confirmation.
func (u *UI) rollback(w http.ResponseWriter, r *http.Request, who identity) {
	name := r.PathValue("name")
	reason, text := r.PostFormValue("reason"), clean(r.PostFormValue("reason_text"), maxReasonLen)
	switch {
	case reason == "" || reason == "other":
		reason = text
	case !slices.Contains(Reasons, reason):
		reason = ""
	}
	refuse := func(code int, msg string) {
		u.opt.Audit.Warn("manual rollback refused", "who", requester(who, r), "via", "ui", "system", name, "why", msg)
		u.systemPage(w, r, code, "", msg)
	}
	if r.PostFormValue("confirm") != name {
		refuse(http.StatusBadRequest, "Not rolled back: type the system's name, "+name+", exactly, to confirm.")
		return
	}
	if reason == "" {
		refuse(http.StatusBadRequest, "Not rolled back: choose a reason, or write one.")
		return
	}
	id, err := u.opt.Controller.RequestRollback(context.WithoutCancel(r.Context()), name, reason, requester(who, r))
	u.opt.Audit.Warn("manual rollback requested", "who", requester(who, r), "via", "ui", "system", name, "reason", reason, "rollback", id, "err", errText(err))
	switch {
	case errors.Is(err, controller.ErrUnknownSystem):
		u.errorPage(w, r, http.StatusNotFound, "../../", "There is no system "+name+" in the policy.")
	case errors.Is(err, controller.ErrNotActing):
		u.systemPage(w, r, http.StatusServiceUnavailable, "", "Not rolled back: this replica is not the leader; open the UI of the one that is.")
	case errors.Is(err, controller.ErrBusy):
		u.systemPage(w, r, http.StatusConflict, "", "Not rolled back again: rollback "+id+" of "+name+" is in flight.")
	case err != nil:
		u.systemPage(w, r, http.StatusInternalServerError, "", "The rollback could not start: "+err.Error())
	default:
		u.live.invalidate()
		seeOther(w, "../../rollbacks/"+id)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
