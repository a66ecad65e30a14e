package wire

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/notify"
	"github.com/rewind-sre/rewind/notify/channels"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/report"
	"github.com/rewind-sre/rewind/store/sqlite"
)

// Outbox builds the durable notification outbox of a policy on the store:
// the policy's notifiers, routed per system. reg, when not nil, gets
// rewind_notifications_total{notifier,result}.
func Outbox(pol *policy.Policy, st *sqlite.Store, log *slog.Logger, reg prometheus.Registerer) (*notify.Outbox, error) {
	ns, err := channels.FromPolicy(pol, channels.Options{Log: log})
	if err != nil {
		return nil, err
	}
	o := &notify.Outbox{Store: st, Notifiers: ns, Router: notify.PolicyRouter(pol), Log: log}
	if reg != nil {
		total := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rewind_notifications_total",
			Help: "Notification attempts by notifier and result (delivered, retried, failed, expired, dropped)."}, []string{"notifier", "result"})
		reg.MustRegister(total)
		o.OnResult = func(n string, r notify.Result) { total.WithLabelValues(n, string(r)).Inc() }
	}
	return o, nil
}

// Links are the places a notice points to for a rollback.
func Links(rb *rewind.Rollback) rewind.Links {
	l := rewind.Links{Evidence: rb.Evidence}
	if rb.Evidence != "" {
		l.PostMortem = rb.Evidence + "/POSTMORTEM.md"
	}
	return l
}

// Fanout calls every progress callback in order.
func Fanout(fs ...func(*rewind.Rollback, rewind.StepRecord)) func(*rewind.Rollback, rewind.StepRecord) {
	return func(rb *rewind.Rollback, s rewind.StepRecord) {
		for _, f := range fs {
			if f != nil {
				f(rb, s)
			}
		}
	}
}

// PostMortem writes the post-mortem draft of a finished rollback into its
// evidence bundle; it logs instead of failing (the rollback is over).
func PostMortem(st plan.Store, src rewind.Source, sys *policy.System, rb *rewind.Rollback, log *slog.Logger) string {
	if rb == nil || rb.Evidence == "" {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	path, err := report.WriteDraft(ctx, st, src, sys, rb.ID)
	if err != nil {
		log.Error("post-mortem draft not written", "rollback", rb.ID, "err", err)
		return ""
	}
	return path
}
