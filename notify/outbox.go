package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

// Defaults of an Outbox's zero fields.
const (
	DefaultMaxAge         = 6 * time.Hour
	DefaultAttemptTimeout = 30 * time.Second
	DefaultEnqueueTimeout = 2 * time.Second
	DefaultPollInterval   = 10 * time.Second
)

// recordTimeout bounds writing an attempt's outcome, also during shutdown.
const recordTimeout = 10 * time.Second

// Outbox records notices (Publish) and delivers them (Run). Its fields are
// configuration, set before first use and not changed after; an Outbox is
// safe for concurrent use. Run it in the process that acts (the leader); a
// claim on each notice keeps a second process on the same store (a new
// leader while the old one finishes its attempt) from sending it too.
type Outbox struct {
	Store Store // required
	// Notifiers by name, as the policy names them.
	Notifiers map[string]rewind.Notifier
	// Router picks the notifiers of an event; nil sends every event to
	// every notifier in Notifiers.
	Router  Router
	Clock   Clock   // default RealClock
	Backoff Backoff // zero fields: DefaultBackoff
	// MaxAge is how long a notice is retried; after it, it is given up with
	// an error log line and ResultExpired. Default DefaultMaxAge.
	MaxAge time.Duration
	// AttemptTimeout bounds one Notify call (default DefaultAttemptTimeout).
	AttemptTimeout time.Duration
	// EnqueueTimeout bounds Publish's write (default DefaultEnqueueTimeout).
	EnqueueTimeout time.Duration
	// PollInterval is how often Run looks at the store when nothing woke it,
	// for notices that other processes enqueued (default DefaultPollInterval).
	PollInterval time.Duration
	Log          *slog.Logger // default slog.Default()
	// OnResult is called with the notifier's name and the result once per
	// attempt, by Run's goroutine after the outcome is recorded, and once
	// per notice Publish could not record (ResultDropped): the numbers of
	// rewind_notifications_total{notifier,result}; see Counters.
	OnResult func(notifier string, r Result)
	// OnAttempt is called when an attempt starts, before the notifier is
	// called (for an in-flight gauge, and for tests that drive a fake clock).
	OnAttempt func(notifier string)
	// Rand returns the jitter in [0, 1); default math/rand/v2.
	Rand func() float64
	// Owner names this process in the claims it writes on a notice before
	// sending it (Store.Claim), e.g. the replica's pod name; default a
	// random name per Outbox. Two processes must not share one.
	Owner string

	initOnce sync.Once
	wake     chan struct{}
	running  sync.Mutex
	routing  atomic.Pointer[routing] // set by SetRouting; nil: the fields
	owner    string
}

// routing is what a policy decides of an outbox: its notifiers and router.
type routing struct {
	notifiers map[string]rewind.Notifier
	router    Router
}

// SetRouting replaces the notifiers and the router together, as a policy
// reload does: notices published from now on are routed by router, and
// every attempt from now on uses notifiers (an attempt under way ends with
// the notifier it started with). Notices already recorded for a notifier
// that is no longer configured fail at their next attempt.
func (o *Outbox) SetRouting(notifiers map[string]rewind.Notifier, router Router) {
	o.routing.Store(&routing{notifiers: notifiers, router: router})
}

func (o *Outbox) current() routing {
	if r := o.routing.Load(); r != nil {
		return *r
	}
	return routing{notifiers: o.Notifiers, router: o.Router}
}

func (o *Outbox) init() {
	o.initOnce.Do(func() {
		o.wake = make(chan struct{}, 1)
		o.owner = o.Owner
		if o.owner == "" {
			o.owner = fmt.Sprintf("outbox-%016x", rand.Uint64())
		}
	})
}

// claimMargin is how long a claim outlives the attempt's own bound, for
// recording its outcome.
const claimMargin = recordTimeout + 5*time.Second

// Publish records e for every notifier its route names (at most once per
// notifier and event key) and wakes the dispatcher. It only writes to the
// store, bounded by EnqueueTimeout even when ctx is cancelled, and it never
// sends: callers on a rollback's path log its error and go on.
func (o *Outbox) Publish(ctx context.Context, e rewind.Event) error {
	o.init()
	names := o.route(e)
	if len(names) == 0 {
		return nil
	}
	now := o.now()
	if e.At.IsZero() {
		e.At = now
	}
	ns := make([]Notice, 0, len(names))
	for _, name := range names {
		ns = append(ns, Notice{
			Notifier: name, Key: name + "|" + e.Key(), Event: e,
			State: Pending, Created: now, NextAttempt: now,
		})
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), or(o.EnqueueTimeout, DefaultEnqueueTimeout))
	defer cancel()
	added, err := o.Store.Enqueue(wctx, ns)
	if err != nil {
		for _, name := range names {
			o.observe(name, ResultDropped)
		}
		err = fmt.Errorf("recording %s in the outbox: %w", e.Key(), err)
		o.log().Error("notification dropped: the outbox could not record it", "event", e.Key(), "notifiers", names, "error", err)
		return err
	}
	o.log().Debug("notification enqueued", "event", e.Key(), "notifiers", names, "new", added)
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return nil
}

func (o *Outbox) route(e rewind.Event) []string {
	r := o.current()
	if r.router != nil {
		return r.router.Route(e)
	}
	names := make([]string, 0, len(r.notifiers))
	for name := range r.notifiers {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Run delivers pending notices until ctx is done, then waits for the
// attempts under way (each bounded by AttemptTimeout) to be recorded and
// returns nil. Each attempt is claimed in the store first (Owner), so that
// another process running the same store (the next leader) neither sends a
// notice this one is sending nor overtakes it. Notices of different notifiers are
// attempted concurrently, those of one notifier one at a time, oldest first.
func (o *Outbox) Run(ctx context.Context) error {
	if o.Store == nil {
		return errors.New("notify: Outbox has no Store")
	}
	if !o.running.TryLock() {
		return errors.New("notify: Outbox is already running")
	}
	defer o.running.Unlock()
	o.init()
	var (
		done     = make(chan attempted)
		inflight = map[string]bool{}
		poll     = or(o.PollInterval, DefaultPollInterval)
	)
	for {
		wait := poll
		heads, err := o.Store.Heads(ctx)
		if err != nil && ctx.Err() == nil {
			o.log().Warn("reading the outbox failed; trying again", "error", err, "in", poll)
		}
		now := o.now()
		for _, n := range heads {
			switch {
			case inflight[n.Notifier]:
			case n.Claimed(o.owner, now):
				// Another process (the previous leader) is attempting it:
				// its outcome, or the claim's expiry, comes first.
				wait = min(wait, n.ClaimedUntil.Sub(now))
			case !n.NextAttempt.After(now):
				inflight[n.Notifier] = true
				if o.OnAttempt != nil {
					o.OnAttempt(n.Notifier)
				}
				go func() {
					r, ok := o.attempt(ctx, n)
					done <- attempted{n.Notifier, r, ok}
				}()
			default:
				wait = min(wait, n.NextAttempt.Sub(now))
			}
		}
		timer, stop := o.clock().NewTimer(wait)
		select {
		case <-ctx.Done():
			stop()
			for len(inflight) > 0 {
				a := <-done
				delete(inflight, a.notifier)
				if a.recorded {
					o.observe(a.notifier, a.result)
				}
			}
			return nil
		case a := <-done:
			stop()
			delete(inflight, a.notifier)
			if a.recorded {
				// Observed here, after the timer is stopped and before the
				// next is armed: a fake clock sees the loop idle only when
				// it is.
				o.observe(a.notifier, a.result)
			}
			continue
		case <-o.wake:
		case <-timer:
		}
		stop()
	}
}

// attempted is what an attempt's goroutine hands back to the loop.
type attempted struct {
	notifier string
	result   Result
	recorded bool // false: cut short by shutdown, no outcome
}

// attempt claims n, tries it once and records the outcome. A notice another
// process claimed first is not attempted: it stays as it is.
func (o *Outbox) attempt(ctx context.Context, n Notice) (Result, bool) {
	log := o.log().With("notifier", n.Notifier, "event", n.Event.Key(), "attempt", n.Attempts+1)
	now := o.now()
	until := now.Add(or(o.AttemptTimeout, DefaultAttemptTimeout) + claimMargin)
	if err := o.Store.Claim(ctx, n.ID, o.owner, now, until); err != nil {
		if errors.Is(err, rewind.ErrNoticeClaimed) {
			log.Info("notification claimed by another process or settled; not sent from here", "claimedBy", n.ClaimedBy)
		} else if ctx.Err() == nil {
			log.Warn("claiming a notification failed; trying again", "error", err)
		}
		return "", false
	}
	if n.ClaimedBy != "" && n.ClaimedBy != o.owner {
		log.Warn("notification taken over from a process whose claim expired: if it was sent before that process stopped, it is sent again (same delivery id)",
			"previousClaim", n.ClaimedBy)
	}
	notifier := o.current().notifiers[n.Notifier]
	var (
		retry bool
		err   error
	)
	if notifier == nil {
		err = fmt.Errorf("no notifier named %q is configured", n.Notifier)
	} else {
		// An attempt under way when ctx ends (shutdown, or leadership lost)
		// is finished and recorded, bounded by AttemptTimeout, rather than
		// cut short: a receiver may already have accepted a cut request,
		// and the next process would send it again.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), or(o.AttemptTimeout, DefaultAttemptTimeout))
		retry, err = call(actx, notifier, n.Event)
		cancel()
	}
	at := o.now()
	out, result := Outcome{At: at}, ResultDelivered
	switch {
	case err == nil:
		out.State = Delivered
		log.Info("notification delivered", "age", at.Sub(n.Created))
	case !retry:
		out.State, out.Error, result = Failed, err.Error(), ResultFailed
		log.Error("notification rejected; not retried", "error", err)
	case at.Sub(n.Created) >= or(o.MaxAge, DefaultMaxAge):
		out.State, out.Error, result = Expired, err.Error(), ResultExpired
		log.Error("notification given up", "age", at.Sub(n.Created), "maxAge", or(o.MaxAge, DefaultMaxAge), "error", err)
	default:
		out.State, out.Error, result = Pending, err.Error(), ResultRetried
		out.NextAttempt = o.next(n, at, err)
		log.Warn("notification failed; will retry", "error", err, "next", out.NextAttempt)
	}
	out.Owner = o.owner
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err := o.Store.Record(rctx, n.ID, out); err != nil {
		log.Error("recording the outcome of a notification failed", "state", out.State, "error", err)
	}
	return result, true
}

// next is when a failed notice is tried again: after the backoff, never
// before the receiver's Retry-After, and at MaxAge at the latest unless the
// receiver asked for later.
func (o *Outbox) next(n Notice, at time.Time, err error) time.Time {
	delay := o.Backoff.Delay(n.Attempts+1, o.rand())
	var ra *rewind.RetryAfterError
	if errors.As(err, &ra) && ra.After > delay {
		return at.Add(ra.After)
	}
	return minTime(at.Add(delay), n.Created.Add(or(o.MaxAge, DefaultMaxAge)))
}

// call runs one Notify, turning a panic into a retryable error.
func call(ctx context.Context, n rewind.Notifier, e rewind.Event) (retry bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			retry, err = true, fmt.Errorf("notifier panicked: %v", p)
		}
	}()
	return n.Notify(ctx, e)
}

func (o *Outbox) observe(notifier string, r Result) {
	if o.OnResult != nil {
		o.OnResult(notifier, r)
	}
}

func (o *Outbox) now() time.Time { return o.clock().Now() }

func (o *Outbox) clock() Clock {
	if o.Clock != nil {
		return o.Clock
	}
	return RealClock{}
}

func (o *Outbox) log() *slog.Logger {
	if o.Log != nil {
		return o.Log
	}
	return slog.Default()
}

func (o *Outbox) rand() float64 {
	if o.Rand != nil {
		return o.Rand()
	}
	return rand.Float64()
}

func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
