package pagerduty

import (
	"errors"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/notify/internal/httpx"
	"github.com/rewind-sre/rewind/notify/internal/render"
)

// The Events API v2 limits.
const (
	MaxSummary  = 1024
	MaxDedupKey = 255
	MaxPayload  = 512 << 10 // bytes of the whole request body
)

// Event is an Events API v2 alert event.
type Event struct {
	RoutingKey  string   `json:"routing_key"`
	EventAction string   `json:"event_action"` // trigger | resolve
	DedupKey    string   `json:"dedup_key"`
	Payload     *Payload `json:"payload,omitempty"`
	Links       []Link   `json:"links,omitempty"`
	Client      string   `json:"client,omitempty"`
	ClientURL   string   `json:"client_url,omitempty"`
}

// Payload is a trigger's PD-CEF payload.
type Payload struct {
	Summary       string  `json:"summary"`
	Source        string  `json:"source"`
	Severity      string  `json:"severity"`
	Timestamp     string  `json:"timestamp,omitempty"`
	Component     string  `json:"component,omitempty"`
	Group         string  `json:"group,omitempty"`
	Class         string  `json:"class,omitempty"`
	CustomDetails Details `json:"custom_details,omitempty"`
}

// Link is a text link attached to the alert.
type Link struct {
	Href string `json:"href"`
	Text string `json:"text,omitempty"`
}

// Details are the custom_details: the values behind the alert.
type Details struct {
	Event      string            `json:"event"`
	System     string            `json:"system"`
	RollbackID string            `json:"rollback_id,omitempty"`
	Reason     string            `json:"reason,omitempty"`
	Requester  string            `json:"requester,omitempty"`
	Findings   []rewind.Finding  `json:"findings,omitempty"`
	Steps      []Step            `json:"steps,omitempty"`
	Links      map[string]string `json:"links,omitempty"` // also paths, which links cannot hold
	Decision   *rewind.Decision  `json:"decision,omitempty"`
	Omitted    string            `json:"omitted,omitempty"`
}

// Step is one rollback step in custom_details.
type Step struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	Duration string `json:"duration,omitempty"`
	Detail   string `json:"detail,omitempty"`
	Error    string `json:"error,omitempty"`
}

// DedupKey is the alert of e: the rollback id, so that the decision, an
// escalation and the resolve of one rollback are one alert; for an event
// without a rollback, its kind and system.
func DedupKey(e rewind.Event) string {
	if e.RollbackID != "" {
		return httpx.Clip(e.RollbackID, MaxDedupKey)
	}
	return httpx.Clip("rewind/"+string(e.Kind)+"/"+e.System, MaxDedupKey)
}

// Build maps e to an Events API v2 event: resolve for a completed rollback
// (recovery verified), trigger for everything else.
func Build(e rewind.Event, routingKey string) Event {
	ev := Event{RoutingKey: routingKey, DedupKey: DedupKey(e), Client: "Rewind"}
	if e.Kind == rewind.EventRollbackCompleted {
		ev.EventAction = "resolve"
		return ev
	}
	ev.EventAction = "trigger"
	sev := string(e.Severity)
	switch e.Severity {
	case rewind.SeverityCritical, rewind.SeverityError, rewind.SeverityWarning, rewind.SeverityInfo:
	default:
		sev = string(rewind.SeverityCritical)
	}
	d := Details{Event: string(e.Kind), System: e.System, RollbackID: e.RollbackID, Reason: e.Reason, Findings: e.Findings, Decision: e.Decision}
	if rb := e.Rollback; rb != nil {
		d.Requester = rb.Requester
		for _, s := range render.Steps(rb) {
			st := Step{Name: string(s.Name), State: string(s.State), Detail: s.Detail, Error: s.Error}
			if s.Duration() > 0 {
				st.Duration = render.Duration(s.Duration())
			}
			d.Steps = append(d.Steps, st)
		}
	}
	for _, l := range e.Links.List() {
		if d.Links == nil {
			d.Links = map[string]string{}
		}
		d.Links[l.Label] = l.Target
		if l.IsURL() {
			ev.Links = append(ev.Links, Link{Href: l.Target, Text: l.Label})
		}
	}
	if l := e.Links.Rollback; l != "" && (rewind.Link{Target: l}).IsURL() {
		ev.ClientURL = l
	}
	ev.Payload = &Payload{
		Summary: httpx.Clip(render.Summary(e), MaxSummary), Source: e.System, Severity: sev,
		Timestamp: e.At.UTC().Format(time.RFC3339Nano), Component: e.System, Group: "rewind",
		Class: string(e.Kind), CustomDetails: d,
	}
	return ev
}

// ErrTooLarge: not even the event without its details fits in MaxPayload.
var ErrTooLarge = errors.New("the event does not fit in PagerDuty's 512 KB")

// Encode returns the request body, at most MaxPayload bytes: when the event
// is larger it leaves out the decision record, then the steps' and
// findings' texts, saying so in custom_details.omitted.
func Encode(ev Event) ([]byte, error) {
	b, err := encodeJSON(ev)
	if err != nil || len(b) <= MaxPayload || ev.Payload == nil {
		return b, err
	}
	d := &ev.Payload.CustomDetails
	d.Decision, d.Omitted = nil, "the decision record (too large for PagerDuty; see the evidence)"
	if b, err = encodeJSON(ev); err != nil || len(b) <= MaxPayload {
		return b, err
	}
	d.Steps, d.Findings, d.Reason = nil, nil, httpx.Clip(d.Reason, 1024)
	d.Omitted = "the decision, steps and findings (too large for PagerDuty; see the evidence)"
	if b, err = encodeJSON(ev); err != nil || len(b) <= MaxPayload {
		return b, err
	}
	return nil, ErrTooLarge
}
