// Package pagerdutytest is a local PagerDuty Events API v2 receiver
// (POST /v2/enqueue) that enforces the documented event format and limits
// and answers as PagerDuty does: 202 {"status":"success"}; 400 "invalid
// event" for a malformed event, a wrong routing key, a summary over 1 024
// characters or a body over 512 KB; 429 and 5xx when scripted.
package pagerdutytest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rewind-sre/rewind/notify/internal/waiter"
)

// Limits enforced.
const (
	MaxBody     = 512 << 10
	MaxSummary  = 1024
	MaxDedupKey = 255
)

// Answer is one scripted reply to a valid event.
type Answer struct {
	Status     int
	RetryAfter time.Duration
}

// Event is an accepted event, decoded.
type Event struct {
	RoutingKey  string `json:"routing_key"`
	EventAction string `json:"event_action"`
	DedupKey    string `json:"dedup_key"`
	Payload     *struct {
		Summary       string         `json:"summary"`
		Source        string         `json:"source"`
		Severity      string         `json:"severity"`
		Timestamp     string         `json:"timestamp"`
		Component     string         `json:"component"`
		Group         string         `json:"group"`
		Class         string         `json:"class"`
		CustomDetails map[string]any `json:"custom_details"`
	} `json:"payload"`
	Links []struct {
		Href string `json:"href"`
		Text string `json:"text"`
	} `json:"links"`
	Size int `json:"-"` // bytes of the request body
}

// Receiver is a running Events API v2 receiver.
type Receiver struct {
	URL        string // .../v2/enqueue
	Addr       string // host:port
	RoutingKey string // the 32-character integration key it accepts: a secret

	mu       sync.Mutex
	script   []Answer
	always   *Answer
	events   []Event
	accepted waiter.Counter
	requests waiter.Counter
}

// New starts a receiver, closed by t.Cleanup.
func New(t testing.TB) *Receiver {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	r := &Receiver{RoutingKey: hex.EncodeToString(b)}
	mux := http.NewServeMux()
	mux.HandleFunc("/v2/enqueue", r.serve)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	r.Addr, r.URL = srv.Listener.Addr().String(), srv.URL+"/v2/enqueue"
	return r
}

// Script makes the next valid events get these answers, in order.
func (r *Receiver) Script(a ...Answer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.script = append(r.script, a...)
}

// Always answers every valid event with a.
func (r *Receiver) Always(a Answer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.always = &a
}

// Events returns the accepted events.
func (r *Receiver) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// Accepted counts accepted events; Requests counts every request.
func (r *Receiver) Accepted() *waiter.Counter { return &r.accepted }
func (r *Receiver) Requests() *waiter.Counter { return &r.requests }

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	defer r.requests.Add(1)
	if req.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, MaxBody+1))
	if err != nil {
		invalid(w, "unreadable body")
		return
	}
	if len(body) > MaxBody {
		invalid(w, "Payload too large: over 512 KB")
		return
	}
	ev, err := r.validate(body)
	if err != nil {
		invalid(w, err.Error())
		return
	}
	r.mu.Lock()
	a := Answer{Status: http.StatusAccepted}
	switch {
	case len(r.script) > 0:
		a, r.script = r.script[0], r.script[1:]
	case r.always != nil:
		a = *r.always
	}
	if a.Status == http.StatusAccepted {
		r.events = append(r.events, ev)
	}
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case a.Status == http.StatusAccepted:
		w.WriteHeader(a.Status)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "success", "message": "Event processed", "dedup_key": ev.DedupKey})
		r.accepted.Add(1)
	case a.Status == http.StatusTooManyRequests:
		if a.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((a.RetryAfter+time.Second-1)/time.Second)))
		}
		w.WriteHeader(a.Status)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "throttle event", "message": "Requests for this service are arriving too quickly. Please retry later."})
	case a.Status == http.StatusBadRequest:
		invalid(w, "scripted")
	default:
		w.WriteHeader(a.Status)
		_, _ = io.WriteString(w, http.StatusText(a.Status))
	}
}

func invalid(w http.ResponseWriter, why string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "invalid event", "message": "Event object is invalid", "errors": []string{why}})
}

// validate checks an event as the Events API v2 does.
func (r *Receiver) validate(body []byte) (Event, error) {
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return ev, fmt.Errorf("invalid JSON: %v", err)
	}
	ev.Size = len(body)
	switch {
	case ev.RoutingKey == "":
		return ev, fmt.Errorf("'routing_key' is missing")
	case ev.RoutingKey != r.RoutingKey:
		return ev, fmt.Errorf("'routing_key' is invalid")
	case ev.EventAction != "trigger" && ev.EventAction != "acknowledge" && ev.EventAction != "resolve":
		return ev, fmt.Errorf("'event_action' must be trigger, acknowledge or resolve")
	case ev.DedupKey == "" && ev.EventAction != "trigger":
		return ev, fmt.Errorf("'dedup_key' is required for %s", ev.EventAction)
	case ev.DedupKey == "":
		// PagerDuty would make one up; Rewind must always send its own.
		return ev, fmt.Errorf("'dedup_key' is missing")
	case utf8.RuneCountInString(ev.DedupKey) > MaxDedupKey:
		return ev, fmt.Errorf("'dedup_key' is longer than %d characters", MaxDedupKey)
	}
	for _, l := range ev.Links {
		if l.Href == "" {
			return ev, fmt.Errorf("a link needs 'href'")
		}
	}
	if ev.EventAction != "trigger" {
		return ev, nil
	}
	p := ev.Payload
	switch {
	case p == nil:
		return ev, fmt.Errorf("'payload' is missing")
	case p.Summary == "":
		return ev, fmt.Errorf("'payload.summary' is missing")
	case utf8.RuneCountInString(p.Summary) > MaxSummary:
		return ev, fmt.Errorf("'payload.summary' is longer than %d characters", MaxSummary)
	case p.Source == "":
		return ev, fmt.Errorf("'payload.source' is missing")
	case p.Severity != "critical" && p.Severity != "error" && p.Severity != "warning" && p.Severity != "info":
		return ev, fmt.Errorf("'payload.severity' must be critical, error, warning or info")
	}
	if p.Timestamp != "" {
		if _, err := time.Parse(time.RFC3339Nano, p.Timestamp); err != nil {
			return ev, fmt.Errorf("'payload.timestamp' is not ISO 8601")
		}
	}
	return ev, nil
}
