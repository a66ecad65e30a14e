// Package slacktest is a local Slack incoming-webhook receiver that enforces
// the documented message format and limits and answers as Slack does: 200
// "ok"; 400 invalid_payload (or no_text) for a message it would reject; 404
// no_service for an unknown webhook path; 429 with Retry-After when rate
// limited; 5xx when down.
package slacktest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rewind-sre/rewind/notify/internal/waiter"
)

// Limits enforced (Block Kit reference).
const (
	MaxBlocks      = 50
	MaxSectionText = 3000
	MaxFieldText   = 2000
	MaxFields      = 10
	MaxHeaderText  = 150
	maxBody        = 1 << 20
)

// Answer is one scripted reply.
type Answer struct {
	Status     int
	Body       string        // Slack's error string, or "ok"
	RetryAfter time.Duration // 429: the Retry-After header, in whole seconds
}

// Common answers with Slack's documented bodies.
var (
	OK             = Answer{Status: 200, Body: "ok"}
	InvalidPayload = Answer{Status: 400, Body: "invalid_payload"}
	NoService      = Answer{Status: 404, Body: "no_service"}
	ServerError    = Answer{Status: 500, Body: "rollup_error"}
	Unavailable    = Answer{Status: 503, Body: "service_unavailable"}
)

// RateLimited is a 429 with Retry-After.
func RateLimited(after time.Duration) Answer {
	return Answer{Status: 429, Body: "rate_limited", RetryAfter: after}
}

// Message is what the receiver accepted, decoded loosely.
type Message struct {
	Text   string            `json:"text"`
	Blocks []json.RawMessage `json:"blocks"`
	Raw    []byte            `json:"-"`
}

// Receiver is a running webhook receiver.
type Receiver struct {
	URL   string // the webhook URL: a secret, as Slack's is
	Token string // the secret part of the path
	Addr  string // host:port

	mu       sync.Mutex
	script   []Answer
	always   *Answer
	messages []Message
	times    []time.Time
	accepted waiter.Counter
	requests waiter.Counter
	now      func() time.Time
}

// New starts a receiver, closed by t.Cleanup, that accepts well-formed
// messages unless scripted otherwise.
func New(t testing.TB) *Receiver {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	r := &Receiver{Token: hex.EncodeToString(b), now: time.Now}
	path := "/services/T0REWIND/B0REWIND/" + r.Token
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != path {
			r.requests.Add(1)
			reply(w, NoService)
			return
		}
		r.serve(w, req)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	r.Addr = srv.Listener.Addr().String()
	r.URL = srv.URL + path
	return r
}

// Script makes the next requests get these answers, in order.
func (r *Receiver) Script(a ...Answer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.script = append(r.script, a...)
}

// Always answers every request with a (when it is well-formed).
func (r *Receiver) Always(a Answer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.always = &a
}

// SetNow sets the clock that stamps requests (e.g. a fake clock's Now).
func (r *Receiver) SetNow(now func() time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.now = now
}

// Messages returns the accepted messages.
func (r *Receiver) Messages() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Message(nil), r.messages...)
}

// Times returns when each request arrived.
func (r *Receiver) Times() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.times...)
}

// Accepted counts accepted messages; Requests counts every request.
func (r *Receiver) Accepted() *waiter.Counter { return &r.accepted }
func (r *Receiver) Requests() *waiter.Counter { return &r.requests }

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	defer r.requests.Add(1)
	r.mu.Lock()
	r.times = append(r.times, r.now())
	r.mu.Unlock()
	body, err := io.ReadAll(io.LimitReader(req.Body, maxBody+1))
	if err != nil || req.Method != http.MethodPost {
		reply(w, InvalidPayload)
		return
	}
	ct, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	m, verr := Validate(body)
	switch {
	case ct != "application/json":
		reply(w, InvalidPayload)
		return
	case verr != nil:
		w.Header().Set("X-Slacktest-Reason", verr.Error())
		if verr == errNoText {
			reply(w, Answer{Status: 400, Body: "no_text"})
		} else {
			reply(w, InvalidPayload)
		}
		return
	}
	r.mu.Lock()
	a := OK
	switch {
	case len(r.script) > 0:
		a, r.script = r.script[0], r.script[1:]
	case r.always != nil:
		a = *r.always
	}
	if a.Status == 200 {
		r.messages = append(r.messages, m)
	}
	r.mu.Unlock()
	reply(w, a)
	if a.Status == 200 {
		r.accepted.Add(1)
	}
}

func reply(w http.ResponseWriter, a Answer) {
	w.Header().Set("Content-Type", "text/html")
	if a.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((a.RetryAfter+time.Second-1)/time.Second)))
	}
	w.WriteHeader(a.Status)
	_, _ = io.WriteString(w, a.Body)
}

var errNoText = fmt.Errorf("no fallback text")

type text struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type block struct {
	Type     string `json:"type"`
	Text     *text  `json:"text"`
	Fields   []text `json:"fields"`
	Elements []text `json:"elements"`
}

// Validate checks a message as Slack does: a fallback text, at most 50
// blocks, known block types, section texts of at most 3 000 characters,
// fields at most 10 of at most 2 000, a plain-text header of at most 150.
func Validate(body []byte) (Message, error) {
	if len(body) > maxBody {
		return Message{}, fmt.Errorf("body larger than %d bytes", maxBody)
	}
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		return m, fmt.Errorf("not JSON: %v", err)
	}
	m.Raw = body
	if m.Text == "" {
		return m, errNoText
	}
	if len(m.Blocks) > MaxBlocks {
		return m, fmt.Errorf("%d blocks, more than %d", len(m.Blocks), MaxBlocks)
	}
	for i, raw := range m.Blocks {
		var b block
		if err := json.Unmarshal(raw, &b); err != nil {
			return m, fmt.Errorf("block %d: %v", i, err)
		}
		if err := checkBlock(b); err != nil {
			return m, fmt.Errorf("block %d (%s): %v", i, b.Type, err)
		}
	}
	return m, nil
}

func checkBlock(b block) error {
	n := utf8.RuneCountInString
	switch b.Type {
	case "header":
		if b.Text == nil || b.Text.Type != "plain_text" || b.Text.Text == "" || n(b.Text.Text) > MaxHeaderText {
			return fmt.Errorf("a header needs a plain_text of 1..%d characters", MaxHeaderText)
		}
	case "section":
		if b.Text == nil && len(b.Fields) == 0 {
			return fmt.Errorf("a section needs text or fields")
		}
		if b.Text != nil && (!textType(b.Text.Type) || b.Text.Text == "" || n(b.Text.Text) > MaxSectionText) {
			return fmt.Errorf("section text of %d characters (1..%d)", n(b.Text.Text), MaxSectionText)
		}
		if len(b.Fields) > MaxFields {
			return fmt.Errorf("%d fields, more than %d", len(b.Fields), MaxFields)
		}
		for _, f := range b.Fields {
			if !textType(f.Type) || f.Text == "" || n(f.Text) > MaxFieldText {
				return fmt.Errorf("field of %d characters (1..%d)", n(f.Text), MaxFieldText)
			}
		}
	case "context":
		if len(b.Elements) == 0 || len(b.Elements) > 10 {
			return fmt.Errorf("a context needs 1..10 elements")
		}
	case "divider":
	default:
		return fmt.Errorf("unknown block type")
	}
	return nil
}

func textType(t string) bool { return t == "mrkdwn" || t == "plain_text" }
