package pagerduty_test

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/notify/notifytest"
	"github.com/rewind-sre/rewind/notify/pagerduty"
	"github.com/rewind-sre/rewind/notify/pagerduty/pagerdutytest"
	"github.com/rewind-sre/rewind/policy"
)

// newNotifier reads the routing key from an environment variable, as a
// Kubernetes secret mounted as env would give it.
func newNotifier(t *testing.T, url, key string, log *slog.Logger) *pagerduty.Notifier {
	env := "REWIND_TEST_PD_KEY"
	t.Setenv(env, key)
	n, err := pagerduty.New(pagerduty.Config{Name: "pager", RoutingKey: policy.Secret{Env: env}, URL: url, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var answers = map[notifytest.Outcome]pagerdutytest.Answer{
	notifytest.Accept:          {Status: 202},
	notifytest.BadRequest:      {Status: 400},
	notifytest.NotFound:        {Status: 404},
	notifytest.TooManyRequests: {Status: 429, RetryAfter: notifytest.RetryAfter},
	notifytest.InternalError:   {Status: 500},
	notifytest.Unavailable:     {Status: 503},
}

func TestSuite(t *testing.T) {
	keys := map[string]string{}
	notifytest.Run(t, notifytest.Harness{
		Receiver: func(t *testing.T, o notifytest.Outcome) notifytest.Receiver {
			r := pagerdutytest.New(t)
			r.Always(answers[o])
			keys[r.Addr] = r.RoutingKey
			return notifytest.Receiver{Addr: r.Addr, Accepted: r.Accepted().Value}
		},
		New: func(t *testing.T, addr string, log *slog.Logger) (rewind.Notifier, []string) {
			key, ok := keys[addr]
			if !ok {
				key = "0123456789abcdef0123456789abcdef"
			}
			return newNotifier(t, "http://"+addr+"/v2/enqueue", key, log), []string{key}
		},
		RetryAfter: true,
	})
}

// The decision triggers an alert keyed by the rollback id with the values in
// custom_details; an escalation joins it; the verified recovery resolves it.
func TestTriggerThenResolve(t *testing.T) {
	r := pagerdutytest.New(t)
	n := newNotifier(t, r.URL, r.RoutingKey, slog.New(slog.DiscardHandler))
	for _, k := range []rewind.EventKind{rewind.EventRollbackDecided, rewind.EventBaselineUnhealthy, rewind.EventRollbackCompleted} {
		if _, err := n.Notify(t.Context(), notifytest.Event(k)); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}
	evs := r.Events()
	if len(evs) != 3 {
		t.Fatalf("%d events", len(evs))
	}
	id := notifytest.Rollback().ID
	for i, want := range []string{"trigger", "trigger", "resolve"} {
		if evs[i].EventAction != want || evs[i].DedupKey != id {
			t.Errorf("event %d: %s %s, want %s %s", i, evs[i].EventAction, evs[i].DedupKey, want, id)
		}
	}
	p := evs[0].Payload
	if p.Severity != "critical" || p.Source != "checkout" || p.Class != "rollback-decided" ||
		!strings.HasPrefix(p.Summary, "[CRITICAL] Rollback decided: checkout") {
		t.Errorf("payload: %+v", p)
	}
	details, _ := json.Marshal(p.CustomDetails)
	for _, want := range []string{`"trigger":"error-rate-high"`, `"canary":0.025`, `"baseline":0.008`, `"threshold":"error ratio ≥ 1.5× baseline, α = 0.01"`, `"duration":"26s","name":"undo","state":"done"`, `"Evidence":"/var/lib/rewind/evidence/`} {
		if !strings.Contains(string(details), want) {
			t.Errorf("custom_details lack %s:\n%s", want, details)
		}
	}
	if len(evs[0].Links) != 2 || evs[0].Links[0].Text != "Dashboard" {
		t.Errorf("links: %+v (want the two URLs; the evidence path is in custom_details)", evs[0].Links)
	}
}

func TestSeverityMapping(t *testing.T) {
	for sev, want := range map[rewind.Severity]string{
		rewind.SeverityCritical: "critical", rewind.SeverityError: "error",
		rewind.SeverityWarning: "warning", rewind.SeverityInfo: "info", "bogus": "critical",
	} {
		e := notifytest.Event(rewind.EventRollbackDecided)
		e.Severity = sev
		if got := pagerduty.Build(e, "k").Payload.Severity; got != want {
			t.Errorf("%s → %s, want %s", sev, got, want)
		}
	}
}

// Summaries are cut to 1 024 characters, payloads to 512 KB, and the
// receiver, which enforces both, accepts the result.
func TestLimits(t *testing.T) {
	e := notifytest.Event(rewind.EventRollbackFailed)
	e.Reason = strings.Repeat("r", 5000)
	for i := range e.Decision.Triggers[:2] {
		for range 6000 {
			e.Decision.Triggers[i].History = append(e.Decision.Triggers[i].History, e.Decision.Triggers[i].History[0])
		}
	}
	ev := pagerduty.Build(e, "k")
	if n := utf8.RuneCountInString(ev.Payload.Summary); n != pagerduty.MaxSummary || !strings.HasSuffix(ev.Payload.Summary, "…") {
		t.Errorf("summary of %d characters", n)
	}
	raw, _ := json.Marshal(ev)
	if len(raw) <= pagerduty.MaxPayload {
		t.Fatalf("the test event is only %d bytes", len(raw))
	}
	body, err := pagerduty.Encode(ev)
	if err != nil || len(body) > pagerduty.MaxPayload || !strings.Contains(string(body), `"omitted"`) {
		t.Fatalf("Encode: %d bytes, %v", len(body), err)
	}

	r := pagerdutytest.New(t)
	n := newNotifier(t, r.URL, r.RoutingKey, slog.New(slog.DiscardHandler))
	if _, err := n.Notify(t.Context(), e); err != nil {
		t.Fatalf("the receiver refused the cut event: %v", err)
	}
	got := r.Events()[0]
	if got.Size > pagerdutytest.MaxBody || got.Payload.CustomDetails["findings"] == nil {
		t.Errorf("accepted %d bytes; findings kept: %v", got.Size, got.Payload.CustomDetails["findings"] != nil)
	}
}

// The receiver rejects what PagerDuty rejects.
func TestReceiverEnforcesFormat(t *testing.T) {
	r := pagerdutytest.New(t)
	good := pagerduty.Build(notifytest.Event(rewind.EventRollbackDecided), r.RoutingKey)
	for name, mutate := range map[string]func(*pagerduty.Event){
		"no routing_key":   func(e *pagerduty.Event) { e.RoutingKey = "" },
		"wrong key":        func(e *pagerduty.Event) { e.RoutingKey = "x" },
		"no event_action":  func(e *pagerduty.Event) { e.EventAction = "" },
		"no dedup_key":     func(e *pagerduty.Event) { e.DedupKey = "" },
		"summary of 1025":  func(e *pagerduty.Event) { e.Payload.Summary = strings.Repeat("s", 1025) },
		"no source":        func(e *pagerduty.Event) { e.Payload.Source = "" },
		"bad severity":     func(e *pagerduty.Event) { e.Payload.Severity = "high" },
		"payload > 512 KB": func(e *pagerduty.Event) { e.Payload.CustomDetails.Reason = strings.Repeat("x", 600<<10) },
	} {
		ev := good
		p := *good.Payload
		ev.Payload = &p
		mutate(&ev)
		body, _ := json.Marshal(ev)
		resp, err := postRaw(t, r.URL, body)
		if err != nil {
			t.Fatal(err)
		}
		if resp != 400 {
			t.Errorf("%s: answered %d, want 400", name, resp)
		}
	}
}
