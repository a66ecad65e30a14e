package notifytest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/notify"
	"github.com/rewind-sre/rewind/store/sqlite"
)

// Outcome is how a receiver answers every delivery: an HTTP status, or the
// SMTP reply of the same meaning.
type Outcome int

const (
	Accept          Outcome = iota // 2xx (Slack 200 "ok", PagerDuty 202); SMTP 250
	BadRequest                     // 400 (Slack invalid_payload); SMTP 554
	NotFound                       // 404 (Slack no_service); SMTP 550
	TooManyRequests                // 429 with Retry-After: RetryAfter; SMTP 452
	InternalError                  // 500; SMTP 451
	Unavailable                    // 503; SMTP 421
)

var outcomeNames = [...]string{"accept", "bad-request", "not-found", "too-many-requests", "internal-error", "unavailable"}

func (o Outcome) String() string { return outcomeNames[o] }

// Outcomes lists every Outcome.
var Outcomes = []Outcome{Accept, BadRequest, NotFound, TooManyRequests, InternalError, Unavailable}

// RetryAfter is the delay a TooManyRequests receiver asks for.
const RetryAfter = 7 * time.Second

// Receiver is a running receiver on loopback.
type Receiver struct {
	Addr     string     // host:port
	Accepted func() int // well-formed deliveries answered with success so far
}

// Harness adapts a notifier to the suite.
type Harness struct {
	// Receiver starts a receiver that answers every delivery with o. It
	// answers Accept only to a delivery in the channel's documented format
	// and limits, and rejects any other as the real service does.
	Receiver func(t *testing.T, o Outcome) Receiver
	// New returns the notifier under test, delivering to addr and logging
	// to log, with its secrets in files or environment variables, and the
	// secret values, which must never show.
	New func(t *testing.T, addr string, log *slog.Logger) (n rewind.Notifier, secrets []string)
	// RetryAfter: the channel carries a Retry-After delay (HTTP), which the
	// notifier must return as a *rewind.RetryAfterError.
	RetryAfter bool
}

// attemptTimeout bounds one Notify of the suite.
const attemptTimeout = 20 * time.Second

// stallTimeout is the deadline of the attempt against a silent receiver.
const stallTimeout = 300 * time.Millisecond

// Run is the suite every notifier passes: the retry classification of every
// answer (success, 400, 404, 429 with Retry-After, 500, 503, connection
// refused, timeout), every event kind accepted in the documented format,
// and no secret in a log line, an error or a stored record.
func Run(t *testing.T, h Harness) {
	want := map[Outcome]bool{Accept: false, BadRequest: false, NotFound: false, TooManyRequests: true, InternalError: true, Unavailable: true}
	for _, o := range Outcomes {
		t.Run("answer="+o.String(), func(t *testing.T) {
			rcv := h.Receiver(t, o)
			logs, log := NewLogs()
			n, secrets := h.New(t, rcv.Addr, log)
			ctx, cancel := context.WithTimeout(t.Context(), attemptTimeout)
			defer cancel()
			retry, err := n.Notify(ctx, Event(rewind.EventRollbackDecided))
			switch {
			case o == Accept && err != nil:
				t.Fatalf("Notify: %v (retry %v), want success", err, retry)
			case o == Accept && rcv.Accepted() != 1:
				t.Errorf("the receiver accepted %d deliveries, want 1", rcv.Accepted())
			case o != Accept && err == nil:
				t.Fatalf("Notify succeeded, want an error")
			case retry != want[o]:
				t.Errorf("retry = %v, want %v (error: %v)", retry, want[o], err)
			}
			if o == TooManyRequests && h.RetryAfter {
				var ra *rewind.RetryAfterError
				if !errors.As(err, &ra) || ra.After < RetryAfter {
					t.Errorf("error %v: want a *rewind.RetryAfterError of at least %s", err, RetryAfter)
				}
			}
			if err != nil {
				NoSecret(t, "the error", err.Error(), secrets)
			}
			NoSecret(t, "the log", logs.String(), secrets)
		})
	}
	t.Run("connection-refused", func(t *testing.T) {
		logs, log := NewLogs()
		n, secrets := h.New(t, refusedAddr(t), log)
		ctx, cancel := context.WithTimeout(t.Context(), attemptTimeout)
		defer cancel()
		retry, err := n.Notify(ctx, Event(rewind.EventRollbackDecided))
		if err == nil || !retry {
			t.Errorf("Notify = %v, %v; want retry and an error", retry, err)
		}
		if err != nil {
			NoSecret(t, "the error", err.Error(), secrets)
		}
		NoSecret(t, "the log", logs.String(), secrets)
	})
	t.Run("timeout", func(t *testing.T) {
		logs, log := NewLogs()
		n, secrets := h.New(t, silentAddr(t), log)
		ctx, cancel := context.WithTimeout(t.Context(), stallTimeout)
		defer cancel()
		start := time.Now()
		retry, err := n.Notify(ctx, Event(rewind.EventRollbackDecided))
		if took := time.Since(start); took > attemptTimeout {
			t.Errorf("Notify took %s with a %s deadline", took, stallTimeout)
		}
		if err == nil || !retry {
			t.Errorf("Notify = %v, %v; want retry and an error", retry, err)
		}
		if err != nil {
			NoSecret(t, "the error", err.Error(), secrets)
		}
		NoSecret(t, "the log", logs.String(), secrets)
	})
	t.Run("every-kind", func(t *testing.T) {
		rcv := h.Receiver(t, Accept)
		_, log := NewLogs()
		n, _ := h.New(t, rcv.Addr, log)
		for i, k := range rewind.EventKinds {
			e := Event(k)
			if k == rewind.EventAnalyzerBlind || k == rewind.EventPolicyRefused {
				e.RollbackID, e.Rollback, e.Decision, e.Findings = "", nil, nil, nil
			}
			ctx, cancel := context.WithTimeout(t.Context(), attemptTimeout)
			retry, err := n.Notify(ctx, e)
			cancel()
			if err != nil {
				t.Errorf("%s: %v (retry %v)", k, err, retry)
			} else if rcv.Accepted() != i+1 {
				t.Errorf("%s: the receiver accepted %d deliveries, want %d", k, rcv.Accepted(), i+1)
			}
		}
	})
	t.Run("no-secret-stored", func(t *testing.T) {
		for _, o := range []Outcome{BadRequest, TooManyRequests, InternalError} {
			noSecretStored(t, h, h.Receiver(t, o).Addr, o.String())
		}
		noSecretStored(t, h, refusedAddr(t), "connection-refused")
	})
}

// noSecretStored runs one attempt through an Outbox on a real store and
// looks for the secrets in its files, its records and its log.
func noSecretStored(t *testing.T, h Harness, addr, name string) {
	t.Helper()
	dir := t.TempDir()
	logs, log := NewLogs()
	n, secrets := h.New(t, addr, log)
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "rewind.db"))
	if err != nil {
		t.Fatal(err)
	}
	counts := &notify.Counters{}
	clock := NewClock(T0, counts.Observe)
	o := &notify.Outbox{
		Store: st, Notifiers: map[string]rewind.Notifier{"under-test": n}, Clock: clock, Log: log,
		OnAttempt: clock.OnAttempt, OnResult: clock.OnResult, AttemptTimeout: attemptTimeout,
	}
	// Published before Run, so that the fake clock never moves while a
	// wake-up is pending.
	if err := o.Publish(t.Context(), Event(rewind.EventRollbackDecided)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { _ = o.Run(ctx) })
	dctx, dcancel := context.WithTimeout(ctx, attemptTimeout)
	err = clock.Drive(dctx, func() bool {
		return counts.Get("under-test", notify.ResultRetried)+counts.Get("under-test", notify.ResultFailed) > 0
	})
	dcancel()
	cancel()
	wg.Wait()
	if err != nil {
		t.Fatalf("%s: no attempt recorded: %v", name, err)
	}
	ns, err := st.Notices(t.Context(), notify.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if n.LastError == "" {
			t.Errorf("%s: notice %d has no error recorded", name, n.ID)
		}
		NoSecret(t, name+": the stored error", n.LastError, secrets)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	NoSecretInFiles(t, dir, secrets)
	NoSecret(t, name+": the log", logs.String(), secrets)
}

// refusedAddr is a loopback address where nothing listens.
func refusedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// silentAddr accepts connections and never answers, until the test ends.
func silentAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}
