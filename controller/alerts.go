package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/policy"
)

// Errors of the alert hooks, besides ErrUnknownSystem, ErrBusy and ErrNotActing.
var (
	// ErrUnknownTrigger: the system has no trigger of that name.
	ErrUnknownTrigger = errors.New("no such trigger")
	// ErrPaused: automatic rollback of the system is paused.
	ErrPaused = errors.New("automatic rollback of this system is paused")
	// ErrNotifyOnly: the system's policy mode is notify-only.
	ErrNotifyOnly = errors.New("the policy of this system is notify-only")
	// ErrAlreadyRolledBack: a stored rollback of the system already carries
	// this alert (the same fingerprint and start).
	ErrAlreadyRolledBack = errors.New("this alert already rolled the system back")
)

// AlertSide is the Reading.Side of the evidence an alert leaves in a Decision.
const AlertSide = "alert"

// alertLookback bounds how many of a system's latest rollbacks are searched
// for one that already carries an alert.
const alertLookback = 50

// Alert is an external alert (from Alertmanager) that stands for a rollback
// trigger of a system: it rolls the system back at once, without a hold.
type Alert struct {
	Name         string // alertname
	System       string
	Trigger      string // the trigger it stands for: a policy trigger, or a name of its own
	Labels       map[string]string
	Annotations  map[string]string
	StartsAt     time.Time
	GeneratorURL string
	Fingerprint  string
	Via          string // who delivered it, for the evidence, e.g. "Alertmanager receiver rewind"
}

// TriggerAction is the action of a system's trigger: ErrUnknownSystem or
// ErrUnknownTrigger when the policy has no such system or trigger.
func (c *Controller) TriggerAction(system, trigger string) (rewind.Action, error) {
	s, err := c.get(system)
	if err != nil {
		return "", err
	}
	for _, t := range s.cfg.Triggers {
		if t.Name == trigger {
			return t.Action, nil
		}
	}
	return "", fmt.Errorf("%w: %q in system %q", ErrUnknownTrigger, trigger, system)
}

// RollbackOnAlert starts an immediate rollback of a.System whose Decision
// carries the alert as evidence, and returns its id at once; the plan runs
// in the background. It refuses, changing nothing, when the system is
// unknown, notify-only or paused, when this replica does not act, when one
// is in flight (ErrBusy with its id) and when a stored rollback already
// carries the same alert (ErrAlreadyRolledBack with its id). Any other
// error means the journal could not be read: nothing was started.
func (c *Controller) RollbackOnAlert(ctx context.Context, a Alert) (string, error) {
	if !c.acting.Load() {
		return "", ErrNotActing
	}
	s, err := c.get(a.System)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	paused, mode, hash := s.paused, s.cfg.Rollback.Mode, c.pol.Hash
	severity := ""
	for _, t := range s.cfg.Triggers {
		if t.Name == a.Trigger {
			severity = t.Severity
		}
	}
	c.mu.Unlock()
	switch {
	case mode != policy.ModeAutomatic:
		return "", fmt.Errorf("%w: %s", ErrNotifyOnly, a.System)
	case paused:
		return "", fmt.Errorf("%w: %s", ErrPaused, a.System)
	}
	if id, err := c.rolledBackOn(ctx, a); err != nil || id != "" {
		return id, err
	}
	if v := a.Labels["severity"]; v != "" {
		severity = v
	}
	return c.start(ctx, s, a.reason(), "rewind", a.decision(c.opt.Now(), hash, severity))
}

// rolledBackOn returns the id of a stored rollback of a.System that carries
// a, with ErrAlreadyRolledBack; "" and nil when there is none.
func (c *Controller) rolledBackOn(ctx context.Context, a Alert) (string, error) {
	rbs, err := c.opt.Store.List(ctx, plan.ListOptions{System: a.System, Limit: alertLookback})
	if err != nil {
		return "", fmt.Errorf("reading the rollbacks of %s: %w", a.System, err)
	}
	for _, rb := range rbs {
		if CarriesAlert(rb.Decision, a) {
			return rb.ID, fmt.Errorf("%w: rollback %s", ErrAlreadyRolledBack, rb.ID)
		}
	}
	return "", nil
}

// CarriesAlert reports whether d is the decision of alert a: its evidence
// holds a's label set with a's start. Alertmanager's fingerprint is a hash
// of the label set, so this is "the same fingerprint and startsAt".
func CarriesAlert(d *rewind.Decision, a Alert) bool {
	if d == nil {
		return false
	}
	sel := AlertSelector(a.Labels)
	for _, t := range d.Triggers {
		for _, r := range t.Observation.Readings {
			if r.Side == AlertSide && r.Query == sel && r.At.Equal(a.StartsAt) {
				return true
			}
		}
	}
	return false
}

// AlertSelector is the PromQL selector of an alert's series in the
// Prometheus that fired it: ALERTS{alertstate="firing", <labels>}, with the
// labels sorted and escaped.
func AlertSelector(labels map[string]string) string {
	var b strings.Builder
	b.WriteString(`ALERTS{alertstate="firing"`)
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if k == "alertstate" {
			continue
		}
		fmt.Fprintf(&b, ",%s=%s", k, strconv.Quote(labels[k]))
	}
	b.WriteString("}")
	return b.String()
}

// reason is the rollback's reason: it names the alert.
func (a Alert) reason() string {
	r := "alert " + a.Name
	if a.Trigger != a.Name {
		r += " (" + a.Trigger + ")"
	}
	if s := a.Annotations["summary"]; s != "" {
		r += ": " + s
	}
	return r
}

// detail describes the alert for the evidence and the notices.
func (a Alert) detail() string {
	parts := []string{fmt.Sprintf("alert %s firing since %s", a.Name, a.StartsAt.UTC().Format(time.RFC3339))}
	if a.Fingerprint != "" {
		parts[0] += " (fingerprint " + a.Fingerprint + ")"
	}
	if a.Via != "" {
		parts = append(parts, "via "+a.Via)
	}
	for _, k := range slices.Sorted(maps.Keys(a.Annotations)) {
		parts = append(parts, k+": "+a.Annotations[k])
	}
	if a.GeneratorURL != "" {
		parts = append(parts, "source: "+a.GeneratorURL)
	}
	return strings.Join(parts, "; ")
}

// decision is the Decision of an alert decided at `at`: one firing trigger
// whose observation holds the alert (labels as its ALERTS selector,
// annotations, start, source).
func (a Alert) decision(at time.Time, policyHash, severity string) *rewind.Decision {
	detail := a.detail()
	return &rewind.Decision{
		System: a.System, At: at, Firing: []string{a.Trigger}, PolicyHash: policyHash,
		Triggers: []rewind.TriggerEvidence{{
			Trigger: a.Trigger, Severity: severity, Action: rewind.ActionRollback, State: rewind.StateFiring,
			ActiveAt: a.StartsAt, For: "0s",
			Observation: rewind.Observation{
				Trigger: a.Trigger, At: at, Outcome: rewind.OutcomeTrue, Reason: detail,
				Readings: []rewind.Reading{{Side: AlertSide, Query: AlertSelector(a.Labels), At: a.StartsAt, Value: rewind.Float(1), Series: 1}},
			},
			History: []rewind.Transition{{At: a.StartsAt, System: a.System, Trigger: a.Trigger,
				From: rewind.StateOK, To: rewind.StateFiring, Reason: detail}},
		}},
	}
}
