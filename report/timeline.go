package report

import (
	"fmt"
	"sort"
	"strings"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/plan"
)

// The post-mortem's timeline: the decision's history, the journal, and the
// canary's first traffic, in time order.

type event struct {
	at   time.Time
	what string
}

func (d *draft) timeline(b *strings.Builder) {
	var evs []event
	add := func(at time.Time, format string, args ...any) {
		if !at.IsZero() {
			evs = append(evs, event{at, fmt.Sprintf(format, args...)})
		}
	}
	if im := d.im; !im.CanaryFirstSeen.IsZero() {
		if im.FirstSeenBefore {
			add(im.CanaryFirstSeen, "Canary taking traffic (already at the start of the %s looked at)", dur(FirstSeenLookback))
		} else {
			add(im.CanaryFirstSeen, "Canary first seen (first canary traffic)")
		}
	}
	if dec := d.rb.Decision; dec != nil {
		for _, f := range rewind.FindingsOf(dec, d.im.Thresholds) {
			if f.ActiveAt.Equal(d.first) {
				add(f.ActiveAt, "First violating sample: %s", f.Trigger)
				break
			}
		}
		for _, t := range dec.Triggers {
			if t.State != rewind.StateFiring {
				continue
			}
			for _, h := range t.History {
				if h.To == rewind.StatePending || h.To == rewind.StateFiring {
					add(h.At, "%s %s (%s)", h.Trigger, h.To, values(h.Canary, h.Baseline))
				}
			}
		}
		add(dec.At, "**Automated rollback decided**: %s", strings.Join(dec.Firing, ", "))
	} else {
		add(d.rb.Started, "**Manual rollback requested** by %s: %s", d.rb.Requester, d.rb.Reason)
	}
	if len(d.journal) > 0 {
		for _, e := range d.journal {
			add(e.At, "%s", journalText(e))
		}
	} else {
		for _, s := range d.rb.Steps {
			if s.State == rewind.StepPending {
				continue
			}
			if !s.Started.Equal(s.Ended) || s.State == rewind.StepRunning {
				add(s.Started, "%s started", s.Name)
			}
			if s.State != rewind.StepRunning {
				add(s.Ended, "%s", stepEnd(s.Name, string(s.State), s.Duration(), s.Detail, s.Error))
			}
		}
		switch d.rb.State {
		case rewind.RollbackSucceeded:
			add(d.rb.Ended, "**Rollback succeeded** (%s after it started)", dur(d.rb.Ended.Sub(d.rb.Started)))
		case rewind.RollbackFailed:
			add(d.rb.Ended, "**Rollback failed**: %s", d.rb.Error)
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at.Before(evs[j].at) })
	if len(evs) > 0 && evs[0].at.UTC().Format("2006-01-02") != evs[len(evs)-1].at.UTC().Format("2006-01-02") {
		d.layout = "2006-01-02 15:04:05"
	}
	b.WriteString("## Timeline\n| Time | Event |\n|------|-------|\n")
	for _, e := range evs {
		fmt.Fprintf(b, "| %s | %s |\n", d.label(e.at), cell(e.what))
	}
	b.WriteString("\n")
}

func journalText(e plan.JournalEntry) string {
	if e.Step == "" {
		switch {
		case e.Seq == 1:
			return "Rollback started (" + e.Detail + ")"
		case e.Detail == "resumed":
			return "Rollback resumed after a restart"
		case e.State == string(rewind.RollbackSucceeded):
			return fmt.Sprintf("**Rollback succeeded** (%s after it started)", dur(e.Duration))
		case e.State == string(rewind.RollbackFailed):
			return "**Rollback failed**: " + e.Error
		}
		return "Rollback " + e.State + ": " + firstOf(e.Error, e.Detail)
	}
	if e.State == string(rewind.StepRunning) {
		if e.Attempt > 1 {
			return fmt.Sprintf("%s started (attempt %d)", e.Step, e.Attempt)
		}
		return string(e.Step) + " started"
	}
	return stepEnd(e.Step, e.State, e.Duration, e.Detail, e.Error)
}

func stepEnd(name rewind.StepName, state string, took time.Duration, detail, errText string) string {
	s := fmt.Sprintf("%s %s", name, state)
	if took > 0 {
		s += " (" + dur(took) + ")"
	}
	if t := firstOf(errText, detail); t != "" {
		s += ": " + t
	}
	switch {
	case name == rewind.StepVerify && state == string(rewind.StepDone):
		s = "**System verified healthy** — " + s
	case name == rewind.StepVerify && state == string(rewind.StepEscalated):
		s = "**Verification failed** — " + s
	case name == rewind.StepCheckBaseline && state == string(rewind.StepEscalated):
		s = "**Baseline unhealthy** — " + s
	}
	return s
}
