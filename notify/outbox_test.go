package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/notify"
	"github.com/rewind-sre/rewind/notify/internal/waiter"
	"github.com/rewind-sre/rewind/notify/notifytest"
	"github.com/rewind-sre/rewind/notify/slack"
	"github.com/rewind-sre/rewind/notify/slack/slacktest"
	"github.com/rewind-sre/rewind/notify/webhook"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/store/sqlite"
)

const driveTimeout = 60 * time.Second

func openStore(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// hookReceiver is a webhook receiver that records delivery keys in order.
type hookReceiver struct {
	mu       sync.Mutex
	keys     []string
	times    []time.Time
	now      func() time.Time
	accepted waiter.Counter
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var p webhook.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(w, "bad", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.keys = append(h.keys, p.Key)
	h.times = append(h.times, h.now())
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
	h.accepted.Add(1)
}

func (h *hookReceiver) Keys() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.keys)
}

// serve serves h on a new loopback port until the test ends.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// switchable delegates to a notifier that the test replaces: a receiver
// that comes back up on another port (rebinding the old one could race
// with other processes for it).
type switchable struct {
	n atomic.Pointer[rewind.Notifier]
}

func (s *switchable) set(n rewind.Notifier) { s.n.Store(&n) }

func (s *switchable) Notify(ctx context.Context, e rewind.Event) (bool, error) {
	return (*s.n.Load()).Notify(ctx, e)
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// events are five notices about two rollbacks, in publication order.
func events() []rewind.Event {
	var out []rewind.Event
	for _, id := range []string{"rb-1", "rb-2"} {
		for _, k := range []rewind.EventKind{rewind.EventRollbackDecided, rewind.EventBaselineUnhealthy, rewind.EventRollbackCompleted} {
			if id == "rb-2" && k == rewind.EventBaselineUnhealthy {
				continue
			}
			e := notifytest.Event(k)
			e.RollbackID = id
			out = append(out, e)
		}
	}
	return out
}

func keys(es []rewind.Event) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Key())
	}
	return out
}

type harness struct {
	store  *sqlite.Store
	clock  *notifytest.Clock
	counts *notify.Counters
	logs   *notifytest.Logs
	outbox *notify.Outbox
	stop   func()
}

// newOutbox makes an Outbox on st with a fake clock at start. Publish, then
// run: Run's loop then finds the notices on its first look, and the fake
// clock never moves while a wake-up is pending.
func newOutbox(t *testing.T, st *sqlite.Store, notifiers map[string]rewind.Notifier, start time.Time, tune func(*notify.Outbox)) *harness {
	t.Helper()
	h := &harness{store: st, counts: &notify.Counters{}}
	h.clock = notifytest.NewClock(start, h.counts.Observe)
	logs, logger := notifytest.NewLogs()
	h.logs = logs
	h.outbox = &notify.Outbox{
		Store: st, Notifiers: notifiers, Clock: h.clock, Log: logger,
		OnAttempt: h.clock.OnAttempt, OnResult: h.clock.OnResult, Rand: func() float64 { return 0.5 },
	}
	if tune != nil {
		tune(h.outbox)
	}
	return h
}

// run runs the Outbox until the test ends.
func (h *harness) run(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := h.outbox.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	h.stop = func() { cancel(); <-done }
	t.Cleanup(h.stop)
}

func (h *harness) publish(t *testing.T, es ...rewind.Event) {
	t.Helper()
	for _, e := range es {
		if err := h.outbox.Publish(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
}

func (h *harness) drive(t *testing.T, done func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), driveTimeout)
	defer cancel()
	if err := h.clock.Drive(ctx, done); err != nil {
		t.Fatalf("driving the outbox: %v\ncounters: %+v\nlog:\n%s", err, h.counts.Snapshot(), h.logs.String())
	}
}

// Two receivers are down for a while (one refuses connections, the other
// answers 503 and then 429 with Retry-After), then up: every notice is
// delivered exactly once, in publication order per notifier, and never
// before a Retry-After.
func TestDownThenUp(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "rewind.db"))
	down, err := webhook.New(webhook.Config{Name: "review", URL: "http://" + freeAddr(t) + "/rewind"}) // refused
	if err != nil {
		t.Fatal(err)
	}
	hook := &switchable{}
	hook.set(down)
	chat := slacktest.New(t)
	chat.Script(slacktest.Unavailable, slacktest.Unavailable, slacktest.ServerError, slacktest.RateLimited(30*time.Second))
	sf := filepath.Join(t.TempDir(), "slack-url")
	writeFile(t, sf, chat.URL)
	notifiers := map[string]rewind.Notifier{"review": hook}
	h := newOutbox(t, st, notifiers, notifytest.T0, nil)
	// The notifier's own wait for Retry-After runs on the fake clock too.
	sl, err := slack.New(slack.Config{Name: "chat", WebhookURL: policy.Secret{File: sf}, Interval: time.Nanosecond, Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	notifiers["chat"] = sl
	chat.SetNow(h.clock.Now)
	evs := events()
	h.publish(t, evs...)
	h.run(t)
	// Down: the webhook refuses three attempts at its first notice.
	h.drive(t, func() bool { return h.counts.Get("review", notify.ResultRetried) >= 3 })
	if n := chat.Accepted().Value(); n == len(evs) {
		t.Fatalf("chat got everything while the webhook was down: per-notifier queues are not independent? (%d)", n)
	}
	// Up.
	rcv := &hookReceiver{now: h.clock.Now}
	up, err := webhook.New(webhook.Config{Name: "review", URL: "http://" + serve(t, rcv) + "/rewind"})
	if err != nil {
		t.Fatal(err)
	}
	hook.set(up)
	h.drive(t, func() bool { return rcv.accepted.Value() == len(evs) && chat.Accepted().Value() == len(evs) })

	want := keys(evs)
	if got := rcv.Keys(); !slices.Equal(got, want) {
		t.Errorf("webhook got\n %v\nwant (once each, in order)\n %v", got, want)
	}
	var chatKeys []string
	for _, m := range chat.Messages() {
		chatKeys = append(chatKeys, contextKey(t, m))
	}
	if !slices.Equal(chatKeys, want) {
		t.Errorf("slack got\n %v\nwant\n %v", chatKeys, want)
	}
	// Requests to slack: 4 failures, then 5 messages. The one after the 429
	// came at least 30 s (fake time) later.
	times := chat.Times()
	if len(times) != 4+len(evs) {
		t.Fatalf("slack saw %d requests, want %d", len(times), 4+len(evs))
	}
	if gap := times[4].Sub(times[3]); gap < 30*time.Second {
		t.Errorf("retried %s after a 429 with Retry-After: 30", gap)
	}
	ns, err := st.Notices(t.Context(), notify.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if n.State != notify.Delivered {
			t.Errorf("notice %s: %s", n.Key, n.State)
		}
	}
	if got := h.counts.Get("review", notify.ResultDelivered) + h.counts.Get("chat", notify.ResultDelivered); got != uint64(2*len(evs)) {
		t.Errorf("delivered counter %d, want %d", got, 2*len(evs))
	}
	if !strings.Contains(h.logs.String(), "notification failed; will retry") {
		t.Errorf("no retry log line")
	}
}

// contextKey reads the event key from a Slack message's context block.
func contextKey(t *testing.T, m slacktest.Message) string {
	last := m.Blocks[len(m.Blocks)-1]
	var b struct {
		Elements []struct{ Text string } `json:"elements"`
	}
	if err := json.Unmarshal(last, &b); err != nil || len(b.Elements) == 0 {
		t.Fatalf("no context block: %s", last)
	}
	parts := strings.Split(b.Elements[0].Text, " · ")
	return parts[1]
}

// The same event published twice (a resumed rollback, a second Progress
// call) is one notice per notifier and one delivery.
func TestDedup(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "rewind.db"))
	rcv := &hookReceiver{now: time.Now}
	hook, _ := webhook.New(webhook.Config{Name: "review", URL: "http://" + serve(t, rcv)})
	h := newOutbox(t, st, map[string]rewind.Notifier{"review": hook}, notifytest.T0, nil)
	e := notifytest.Event(rewind.EventRollbackDecided)
	e2 := e
	e2.At = e.At.Add(time.Minute) // same kind and rollback: the same notice
	h.publish(t, e, e, e, e2)
	h.run(t)
	h.drive(t, func() bool { return h.counts.Get("review", notify.ResultDelivered) == 1 })
	ns, _ := st.Notices(t.Context(), notify.Filter{})
	if len(ns) != 1 || len(rcv.Keys()) != 1 {
		t.Errorf("%d notices, %d deliveries; want 1 and 1", len(ns), len(rcv.Keys()))
	}
}

// A rejected notice is not retried and does not hold up the next one.
func TestRejectedDoesNotBlock(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "rewind.db"))
	chat := slacktest.New(t)
	chat.Script(slacktest.InvalidPayload)
	sf := filepath.Join(t.TempDir(), "url")
	writeFile(t, sf, chat.URL)
	sl, _ := slack.New(slack.Config{Name: "chat", WebhookURL: policy.Secret{File: sf}, Interval: time.Nanosecond})
	h := newOutbox(t, st, map[string]rewind.Notifier{"chat": sl}, notifytest.T0, nil)
	h.publish(t, events()[:2]...)
	h.run(t)
	h.drive(t, func() bool { return chat.Accepted().Value() == 1 })
	ns, _ := st.Notices(t.Context(), notify.Filter{})
	if ns[0].State != notify.Failed || ns[0].Attempts != 1 || !strings.Contains(ns[0].LastError, "invalid_payload") || ns[1].State != notify.Delivered {
		t.Errorf("notices: %+v", ns)
	}
	if h.counts.Get("chat", notify.ResultFailed) != 1 {
		t.Errorf("counters: %+v", h.counts.Snapshot())
	}
	if !strings.Contains(h.logs.String(), "notification rejected; not retried") {
		t.Errorf("no error log line for the rejected notice")
	}
}

// A receiver down for longer than MaxAge: exponential backoff, then the
// notice is given up at MaxAge with an error log line and a counter.
func TestGiveUpAfterMaxAge(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "rewind.db"))
	hook, _ := webhook.New(webhook.Config{Name: "review", URL: "http://" + freeAddr(t)})
	h := newOutbox(t, st, map[string]rewind.Notifier{"review": hook}, notifytest.T0, func(o *notify.Outbox) {
		o.MaxAge = time.Hour
		o.Rand = func() float64 { return 0 } // no jitter: exact delays
	})
	var attempts []time.Time
	var mu sync.Mutex
	h.outbox.OnAttempt = func(n string) {
		mu.Lock()
		attempts = append(attempts, h.clock.Now())
		mu.Unlock()
		h.clock.OnAttempt(n)
	}
	h.publish(t, notifytest.Event(rewind.EventRollbackDecided))
	h.run(t)
	h.drive(t, func() bool { return h.counts.Get("review", notify.ResultExpired) == 1 })
	mu.Lock()
	defer mu.Unlock()
	// 2s, 4s, 8s, ... capped at 5m, and the last attempt at MaxAge.
	var want []time.Time
	at, d := notifytest.T0, 2*time.Second
	for at.Before(notifytest.T0.Add(time.Hour)) {
		want = append(want, at)
		at, d = at.Add(d), min(2*d, 5*time.Minute)
	}
	want = append(want, notifytest.T0.Add(time.Hour))
	if !slices.EqualFunc(attempts, want, time.Time.Equal) {
		t.Errorf("attempts at\n %v\nwant\n %v", attempts, want)
	}
	ns, _ := st.Notices(t.Context(), notify.Filter{})
	if ns[0].State != notify.Expired || ns[0].Attempts != len(want) || ns[0].LastError == "" {
		t.Errorf("notice: %+v", ns[0])
	}
	if !strings.Contains(h.logs.String(), `"level":"ERROR","msg":"notification given up"`) {
		t.Errorf("no error log line:\n%s", h.logs.String())
	}
	if got := h.counts.Get("review", notify.ResultRetried); got != uint64(len(want)-1) {
		t.Errorf("retried %d, want %d", got, len(want)-1)
	}
}

// A notice for a notifier that is no longer configured fails at once.
func TestUnknownNotifier(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "rewind.db"))
	h := newOutbox(t, st, map[string]rewind.Notifier{}, notifytest.T0, func(o *notify.Outbox) {
		o.Router = notify.RouterFunc(func(rewind.Event) []string { return []string{"gone"} })
	})
	h.publish(t, notifytest.Event(rewind.EventRollbackDecided))
	h.run(t)
	h.drive(t, func() bool { return h.counts.Get("gone", notify.ResultFailed) == 1 })
	ns, _ := st.Notices(t.Context(), notify.Filter{})
	if ns[0].State != notify.Failed || !strings.Contains(ns[0].LastError, `no notifier named "gone"`) {
		t.Errorf("notice: %+v", ns[0])
	}
}

func TestBackoffDelay(t *testing.T) {
	b := notify.Backoff{}
	for attempts, want := range map[int]time.Duration{1: 2 * time.Second, 2: 4 * time.Second, 5: 32 * time.Second, 9: 5 * time.Minute, 30: 5 * time.Minute} {
		if got := b.Delay(attempts, 0); got != want {
			t.Errorf("Delay(%d, 0) = %s, want %s", attempts, got, want)
		}
		if got := b.Delay(attempts, 0.999999); got < want/2 || got > want {
			t.Errorf("Delay(%d, ~1) = %s, want in [%s, %s]", attempts, got, want/2, want)
		}
	}
}

func TestRunTwice(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "rewind.db"))
	h := newOutbox(t, st, nil, notifytest.T0, nil)
	h.run(t)
	ctx, cancel := context.WithTimeout(t.Context(), driveTimeout)
	defer cancel()
	if err := h.clock.WaitIdle(ctx); err != nil { // the first Run is in its loop
		t.Fatal(err)
	}
	if err := h.outbox.Run(ctx); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("a second Run: %v, want refused", err)
	}
}
