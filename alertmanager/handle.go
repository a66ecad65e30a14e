package alertmanager

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/controller"
)

// Result is what became of one alert.
type Result string

const (
	ResultRollback  Result = "rollback"   // a rollback of the system started
	ResultDuplicate Result = "duplicate"  // this alert (fingerprint, startsAt) already started one
	ResultBusy      Result = "busy"       // a rollback of the system is in flight already
	ResultIgnored   Result = "ignored"    // a firing alert Rewind does not act on; Reason says why
	ResultNoted     Result = "noted"      // a resolved alert: logged; a rollback is not undone
	ResultNotLeader Result = "not-leader" // this replica does not act: 503, Alertmanager retries
	ResultFailed    Result = "failed"     // could not be handled: 500, Alertmanager retries
)

// code is the HTTP status a result asks for; the worst of a payload's wins.
func (r Result) code() int {
	switch r {
	case ResultFailed:
		return http.StatusInternalServerError
	case ResultNotLeader:
		return http.StatusServiceUnavailable
	}
	return http.StatusOK
}

// Outcome is what became of one alert, as answered and logged.
type Outcome struct {
	Alert       string `json:"alertname"`
	Fingerprint string `json:"fingerprint"`
	Status      string `json:"status"`
	System      string `json:"system,omitempty"`
	Trigger     string `json:"trigger,omitempty"`
	Result      Result `json:"result"`
	Reason      string `json:"reason,omitempty"`
	Rollback    string `json:"rollback,omitempty"`
}

// handle decides what one alert of a valid payload asks for and does it.
func (rc *Receiver) handle(ctx context.Context, a Alert, via string) Outcome {
	o := Outcome{Alert: a.Name(), Fingerprint: a.Fingerprint, Status: a.Status, System: a.Labels[LabelSystem]}
	if a.Status == StatusResolved {
		o.Result, o.Reason = ResultNoted, "resolved: nothing to do (a rollback is not undone)"
		return o
	}
	trigger, why := rc.route(a)
	o.Trigger = trigger
	if why != "" {
		o.Result, o.Reason = ResultIgnored, why
		return o
	}
	key := a.Fingerprint + "@" + a.StartsAt.UTC().Format(time.RFC3339Nano)
	if id, ok := rc.seen.reserve(key, rc.opt.Now()); !ok {
		o.Result, o.Rollback, o.Reason = ResultDuplicate, id, "this alert was delivered before"
		return o
	}
	id, err := rc.opt.Controller.RollbackOnAlert(ctx, controller.Alert{
		Name: a.Name(), System: o.System, Trigger: trigger, Labels: a.Labels, Annotations: a.Annotations,
		StartsAt: a.StartsAt, GeneratorURL: a.GeneratorURL, Fingerprint: a.Fingerprint, Via: via,
	})
	o.Rollback = id
	switch {
	case err == nil:
		o.Result = ResultRollback
	case errors.Is(err, controller.ErrAlreadyRolledBack):
		o.Result, o.Reason = ResultDuplicate, err.Error()
	case errors.Is(err, controller.ErrBusy):
		o.Result, o.Reason = ResultBusy, err.Error()
	case errors.Is(err, controller.ErrNotActing):
		o.Result, o.Reason = ResultNotLeader, err.Error()
	case errors.Is(err, controller.ErrUnknownSystem), errors.Is(err, controller.ErrPaused), errors.Is(err, controller.ErrNotifyOnly):
		o.Result, o.Reason = ResultIgnored, err.Error()
	default:
		o.Result, o.Reason = ResultFailed, err.Error()
	}
	switch o.Result {
	case ResultRollback, ResultDuplicate, ResultBusy:
		rc.seen.settle(key, id)
	default:
		rc.seen.release(key)
	}
	return o
}

// route returns the trigger a firing alert stands for, or why Rewind does
// not act on it.
func (rc *Receiver) route(a Alert) (trigger, why string) {
	system := a.Labels[LabelSystem]
	trigger = a.Labels[LabelTrigger]
	if trigger == "" {
		trigger = a.Name()
	}
	if system == "" {
		return trigger, "no " + LabelSystem + " label: not an alert for Rewind"
	}
	if trigger == "" {
		return trigger, "neither " + LabelTrigger + " nor alertname: no trigger to name"
	}
	action, err := rc.opt.Controller.TriggerAction(system, trigger)
	switch want := a.Labels[LabelAction]; {
	case errors.Is(err, controller.ErrUnknownSystem):
		return trigger, err.Error()
	case want == string(rewind.ActionRollback):
		return trigger, ""
	case want != "":
		return trigger, fmt.Sprintf("%s=%q: Rewind acts only on %q", LabelAction, want, rewind.ActionRollback)
	case errors.Is(err, controller.ErrUnknownTrigger):
		return trigger, fmt.Sprintf("%s; set %s to one of its rollback triggers, or %s=%q", err, LabelTrigger, LabelAction, rewind.ActionRollback)
	case err != nil:
		return trigger, err.Error()
	case action != rewind.ActionRollback:
		return trigger, fmt.Sprintf("trigger %q of system %q has action %q, not %q", trigger, system, action, rewind.ActionRollback)
	}
	return trigger, ""
}
