package demo

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/controller"
)

// printer shows the demo live, one plain line per thing that happens, with
// the time since the start; a status line every statusEvery.
type printer struct {
	w                io.Writer
	color            bool // a terminal: states and events in color
	start            time.Time
	mu               sync.Mutex
	lastStatus       time.Time
	routedB, routedC uint64
	decided          bool
	systems          func() []controller.SystemStatus // set once Rewind runs
}

const statusEvery = 5 * time.Second

func (p *printer) printf(format string, args ...any) {
	if p.w == nil {
		return
	}
	line := fmt.Sprintf(format, args...)
	if p.color {
		line = paint(line)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%7s  %s\n", fmt.Sprintf("t+%.0fs", time.Since(p.start).Seconds()), line)
}

// paint colors the words that matter on a terminal: states, the fault,
// the decision and the outcome.
var painter = strings.NewReplacer(
	"→ firing", "→ \x1b[1;31mfiring\x1b[0m",
	"→ pending", "→ \x1b[33mpending\x1b[0m",
	"→ ok", "→ \x1b[32mok\x1b[0m",
	"→ insufficient-data", "→ \x1b[36minsufficient-data\x1b[0m",
	"→ degraded", "→ \x1b[35mdegraded\x1b[0m",
	"FAULT:", "\x1b[1;31mFAULT:\x1b[0m",
	"DECISION:", "\x1b[1;31mDECISION:\x1b[0m",
	"ROLLED BACK AND VERIFIED", "\x1b[1;32mROLLED BACK AND VERIFIED\x1b[0m",
	"NOTICE", "\x1b[1;34mNOTICE\x1b[0m",
	"BLIND:", "\x1b[1;35mBLIND:\x1b[0m",
)

func paint(s string) string { return painter.Replace(s) }

// cycle prints each transition at once, and a status line now and then:
// the traffic split, request rates and every trigger not ok, with the time
// left on its hold.
func (p *printer) cycle(c rewind.Event, prod *production) {
	for _, t := range c.Transitions {
		p.printf("%-26s %s → %s%s", t.Trigger, t.From, t.To, values(t.Canary, t.Baseline, t.Reason))
	}
	if d := c.Decision; d != nil && len(d.Firing) > 0 {
		p.mu.Lock()
		first := !p.decided
		p.decided = true
		p.mu.Unlock()
		if first {
			p.printf("DECISION: roll back — %s", strings.Join(d.Firing, ", "))
		} else {
			p.printf("firing too (the rollback is already under way): %s", strings.Join(d.Firing, ", "))
		}
	}
	p.mu.Lock()
	due := time.Since(p.lastStatus) >= statusEvery
	if due {
		p.lastStatus = time.Now()
	}
	p.mu.Unlock()
	if !due {
		return
	}
	b, cn := prod.router.Weights()
	rb, rc := prod.router.Routed()
	p.mu.Lock()
	secs := statusEvery.Seconds()
	rateB, rateC := float64(rb-p.routedB)/secs, float64(rc-p.routedC)/secs
	p.routedB, p.routedC = rb, rc
	systems := p.systems
	p.mu.Unlock()
	var notOK []string
	if systems != nil {
		for _, s := range systems() {
			for _, t := range s.Triggers {
				switch t.State {
				case rewind.StateOK:
				case rewind.StatePending:
					held := c.At.Sub(t.ActiveAt).Round(time.Second)
					notOK = append(notOK, fmt.Sprintf("%s pending %s/%s", t.Name, held, t.For))
				default:
					notOK = append(notOK, fmt.Sprintf("%s %s", t.Name, t.State))
				}
			}
		}
	}
	state := "every trigger ok"
	if len(notOK) > 0 {
		state = strings.Join(notOK, "; ")
	}
	p.printf("status: traffic %d/%d baseline/canary, %.0f/%.0f req/s; %s", b, cn, rateB, rateC, state)
}

func values(c, b *float64, reason string) string {
	s := ""
	if c != nil {
		s += fmt.Sprintf("  canary=%.4g", *c)
	}
	if b != nil {
		s += fmt.Sprintf("  baseline=%.4g", *b)
	}
	if reason != "" && len(reason) < 160 {
		s += "  (" + reason + ")"
	}
	return s
}

// step prints each rollback step as it starts and ends.
func (p *printer) step(prod *production, rb *rewind.Rollback, s rewind.StepRecord) {
	if s.State == rewind.StepRunning {
		p.printf("rollback %s: %-14s running…", rb.ID, s.Name)
		return
	}
	if s.Name == rewind.StepDrain && s.State == rewind.StepDone {
		prod.markDrained()
	}
	detail := s.Detail
	if s.Error != "" {
		detail = s.Error
	}
	p.printf("rollback %s: %-14s %-9s %6s  %s", rb.ID, s.Name, s.State, s.Duration().Round(time.Millisecond), detail)
}

func (p *printer) outcome(rb *rewind.Rollback, postMortem string) {
	if rb == nil {
		return
	}
	if rb.State == rewind.RollbackSucceeded {
		p.printf("ROLLED BACK AND VERIFIED in %s (decision → verified)", rb.Ended.Sub(rb.Started).Round(time.Millisecond))
	} else {
		p.printf("ROLLBACK %s: %s", strings.ToUpper(string(rb.State)), rb.Error)
	}
	if rb.Evidence != "" {
		p.printf("evidence bundle: %s", rb.Evidence)
	}
	if postMortem != "" {
		p.printf("post-mortem draft: %s", postMortem)
	}
}
