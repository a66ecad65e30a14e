package ui

import (
	"context"
	"slices"
	"sync"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

// Bounds of History: per trigger, the newest historyPerTrigger transitions
// are kept, and a system that has not been evaluated for historyIdle is
// forgotten (it left the policy).
const (
	historyPerTrigger = 128
	historyIdle       = 2 * time.Hour
)

// History keeps the recent state transitions of every trigger, as the
// controller made them, so that the charts can shade the pending and firing
// periods of the last hour. Feed it every evaluation cycle (Record). It is
// memory only: after a restart the periods start at the first cycle, and
// those of a rollback's decision come from its record instead. Its memory is
// bounded per trigger; a flapping trigger keeps its newest transitions.
type History struct {
	mu      sync.Mutex
	systems map[string]*sysHistory
	pruned  time.Time
}

type sysHistory struct {
	seen     time.Time
	triggers map[string][]mark
}

// mark is one transition, compactly: when and into which state.
type mark struct {
	at time.Time
	to rewind.TriggerState
}

// NewHistory returns an empty History.
func NewHistory() *History { return &History{systems: map[string]*sysHistory{}} }

var _ rewind.Publisher = (*History)(nil)

// Publish keeps the transitions of every evaluation cycle
// (rewind.EventEvaluated); subscribe it to the daemon's events.
func (h *History) Publish(_ context.Context, e rewind.Event) error {
	if e.Kind == rewind.EventEvaluated {
		h.Record(e.System, e.At, e.Transitions)
	}
	return nil
}

// Record keeps the transitions of one evaluation cycle of a system at at.
func (h *History) Record(system string, at time.Time, transitions []rewind.Transition) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.systems[system]
	if s == nil {
		s = &sysHistory{triggers: map[string][]mark{}}
		h.systems[system] = s
	}
	s.seen = at
	for _, t := range transitions {
		ms := s.triggers[t.Trigger]
		if len(ms) == historyPerTrigger {
			ms = append(ms[:0], ms[1:]...)
		}
		s.triggers[t.Trigger] = append(ms, mark{at: t.At, to: t.To})
	}
	if at.Sub(h.pruned) > time.Minute {
		h.pruned = at
		for name, s := range h.systems {
			if at.Sub(s.seen) > historyIdle {
				delete(h.systems, name)
			}
		}
	}
}

// Transitions returns the kept transitions of a trigger, oldest first.
func (h *History) Transitions(system, trigger string) []rewind.Transition {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.systems[system]
	if s == nil {
		return nil
	}
	ms := s.triggers[trigger]
	out := make([]rewind.Transition, len(ms))
	for i, m := range ms {
		out[i] = rewind.Transition{At: m.at, System: system, Trigger: trigger, To: m.to}
	}
	return out
}

// period is a span of time a trigger spent in one state.
type period struct {
	From, To time.Time
	State    rewind.TriggerState
}

// periods turns transitions (in time order) into the pending and firing
// spans that overlap [from, to]; the last transition's state lasts until to.
func periods(trs []rewind.Transition, from, to time.Time) []period {
	var out []period
	for i, t := range trs {
		if t.To != rewind.StatePending && t.To != rewind.StateFiring {
			continue
		}
		end := to
		if i+1 < len(trs) {
			end = trs[i+1].At
		}
		start := t.At
		if end.Before(from) || start.After(to) {
			continue
		}
		out = append(out, period{From: later(start, from), To: earlier(end, to), State: t.To})
	}
	return out
}

// mergeTransitions orders transitions by time and drops exact repeats (the
// same transition from the live history and from a rollback's decision record).
func mergeTransitions(trs []rewind.Transition) []rewind.Transition {
	slices.SortStableFunc(trs, func(a, b rewind.Transition) int { return a.At.Compare(b.At) })
	out := trs[:0]
	for i, t := range trs {
		if i > 0 && t.At.Equal(out[len(out)-1].At) && t.To == out[len(out)-1].To {
			continue
		}
		out = append(out, t)
	}
	return out
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
