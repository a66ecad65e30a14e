package ui

import (
	"html/template"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/controller"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/report"
)

// trigView is one trigger's state as the pages show it.
type trigView struct {
	Name      string
	State     rewind.TriggerState
	Action    rewind.Action
	Canary    string
	Baseline  string
	Hold      string // "pending 6s of 8s", "firing for 12s", "since 14:20:01"
	HoldNow   int64  // seconds held, for the progress bar of a pending trigger
	HoldMax   int64  // the hold time in seconds; 0: no progress bar
	Reason    string // the evidence in words: the judge's counts and test, or what is missing
	Threshold string // what the values are held against
}

// sysView is one system's state as the pages show it.
type sysView struct {
	Name      string
	Mode      string
	Interval  string
	Paused    bool
	Blind     bool
	InFlight  string
	LastEval  string
	Worst     rewind.TriggerState
	Triggers  []trigView
	Attention []string // what needs people, in words; empty when all is well
}

// summary counts the systems by what needs attention.
type summary struct {
	Systems, Firing, Pending, Blind, Paused, InFlight, Degraded int
}

// stateRank orders trigger states from fine to alarming.
func stateRank(s rewind.TriggerState) int {
	switch s {
	case rewind.StateFiring:
		return 4
	case rewind.StatePending:
		return 3
	case rewind.StateDegraded:
		return 2
	case rewind.StateInsufficientData:
		return 1
	}
	return 0
}

// viewSystem turns a controller status into its view; sys (may be nil)
// says how values read, thresholds what they are held against.
func viewSystem(st controller.SystemStatus, sys *policy.System, thresholds map[string]string) sysView {
	v := sysView{Name: st.Name, Mode: st.Mode, Interval: st.Interval, Paused: st.Paused, Blind: st.Blind,
		InFlight: st.InFlight, LastEval: stamp(st.LastCycle), Worst: rewind.StateOK}
	if st.Blind {
		v.Attention = append(v.Attention, "blind: its queries fail, no rollback can be decided")
	}
	if st.InFlight != "" {
		v.Attention = append(v.Attention, "rollback "+st.InFlight+" in flight")
	}
	for _, t := range st.Triggers {
		var pt *policy.Trigger
		if sys != nil {
			pt = findTrigger(sys, t.Name)
		}
		tv := viewTrigger(t, st.LastCycle, unitOf(pt))
		tv.Threshold = thresholds[t.Name]
		if stateRank(t.State) > stateRank(v.Worst) {
			v.Worst = t.State
		}
		switch t.State {
		case rewind.StateFiring, rewind.StatePending:
			v.Attention = append(v.Attention, t.Name+" "+tv.Hold)
		case rewind.StateDegraded:
			v.Attention = append(v.Attention, t.Name+" degraded: its query fails")
		}
		v.Triggers = append(v.Triggers, tv)
	}
	return v
}

func viewTrigger(t controller.TriggerStatus, last time.Time, u unit) trigView {
	tv := trigView{Name: t.Name, State: t.State, Action: t.Action, Canary: u.value(t.Canary), Baseline: u.value(t.Baseline), Reason: t.Reason}
	if t.Judge != nil && t.Judge.Detail != "" && tv.Reason == "" {
		tv.Reason = t.Judge.Detail
	}
	hold, _ := time.ParseDuration(t.For)
	switch t.State {
	case rewind.StatePending:
		held := max(last.Sub(t.ActiveAt), 0)
		tv.Hold = "pending " + dur(held) + " of " + dur(hold)
		tv.HoldNow, tv.HoldMax = int64(held.Round(time.Second)/time.Second), max(int64(hold/time.Second), 1)
	case rewind.StateFiring:
		tv.Hold = "firing for " + dur(max(last.Sub(t.Since), 0))
		if !t.ActiveAt.IsZero() {
			tv.Hold += " (held " + dur(max(last.Sub(t.ActiveAt), 0)) + ", hold " + dur(hold) + ")"
		}
	case rewind.StateInsufficientData, rewind.StateDegraded:
		tv.Hold = "since " + stamp(t.Since)
	}
	return tv
}

// equal reports whether two views show the same: then a rendered fragment
// is reused as it is.
func (v *sysView) equal(o *sysView) bool {
	return v.Name == o.Name && v.Mode == o.Mode && v.Interval == o.Interval && v.Paused == o.Paused && v.Blind == o.Blind &&
		v.InFlight == o.InFlight && v.LastEval == o.LastEval && v.Worst == o.Worst &&
		slices.Equal(v.Triggers, o.Triggers) && slices.Equal(v.Attention, o.Attention)
}

// thresholdsOf is report.Thresholds of a system, kept per policy system
// (a reload brings new ones): the overview asks every second.
type thresholdsCache struct {
	mu sync.Mutex
	m  map[*policy.System]map[string]string
}

func (c *thresholdsCache) of(sys *policy.System) map[string]string {
	if sys == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[*policy.System]map[string]string{}
	}
	th, ok := c.m[sys]
	if !ok {
		if len(c.m) > 4*maxCachedSystems { // reloads left old systems behind
			clear(c.m)
		}
		th = report.Thresholds(sys)
		c.m[sys] = th
	}
	return th
}

// maxCachedSystems sizes the thresholds cache before it is cleared.
const maxCachedSystems = 10000

func findTrigger(sys *policy.System, name string) *policy.Trigger {
	for _, t := range sys.Triggers {
		if t.Name == name {
			return t
		}
	}
	return nil
}

func (s *summary) add(v sysView) {
	s.Systems++
	if v.Paused {
		s.Paused++
	}
	if v.Blind {
		s.Blind++
	}
	if v.InFlight != "" {
		s.InFlight++
	}
	for _, t := range v.Triggers {
		switch t.State {
		case rewind.StateFiring:
			s.Firing++
		case rewind.StatePending:
			s.Pending++
		case rewind.StateDegraded:
			s.Degraded++
		}
	}
}

// attentionItem is one line of the overview's "needs attention" list.
type attentionItem struct {
	Name  string
	Worst rewind.TriggerState
	What  string
}

type overviewData struct {
	Summary   template.HTML
	Attention template.HTML
	Rows      []template.HTML
	Version   uint64
	Structure uint64
}

func (u *UI) overview(w http.ResponseWriter, r *http.Request) {
	snap := u.live.refresh()
	d := overviewData{Summary: snap.frag("summary"), Attention: snap.frag("attention"), Version: snap.ver, Structure: snap.structure}
	for _, id := range snap.rows {
		d.Rows = append(d.Rows, snap.frag(id))
	}
	u.render(w, r, http.StatusOK, "overview", u.newPage(r, "Systems", "./", "systems", d))
}

func attentionOf(views []sysView) []attentionItem {
	var out []attentionItem
	for _, v := range views {
		if len(v.Attention) > 0 {
			out = append(out, attentionItem{Name: v.Name, Worst: v.Worst, What: strings.Join(v.Attention, "; ")})
		}
	}
	return out
}
