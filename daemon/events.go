package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/notify"
	"github.com/rewind-sre/rewind/report"
)

// bus hands every event to every subscriber, in order. A subscriber's
// error or panic is logged and never reaches the publisher: events are
// published from the rollback's path.
type bus struct {
	log  *slog.Logger
	subs []rewind.Publisher
}

var _ rewind.Publisher = (*bus)(nil)

func (b *bus) Publish(ctx context.Context, e rewind.Event) error {
	for _, s := range b.subs {
		b.deliver(ctx, s, e)
	}
	return nil
}

func (b *bus) deliver(ctx context.Context, s rewind.Publisher, e rewind.Event) {
	defer func() {
		if p := recover(); p != nil {
			b.log.Error("event subscriber panicked", "event", e.Kind, "subscriber", fmt.Sprintf("%T", s), "panic", fmt.Sprint(p))
		}
	}()
	if err := s.Publish(ctx, e); err != nil {
		b.log.Error("event subscriber failed", "event", e.Kind, "subscriber", fmt.Sprintf("%T", s), "err", err)
	}
}

// PostMortemPath is where the post-mortem draft of a rollback is written:
// POSTMORTEM.md in its evidence bundle.
func PostMortemPath(rb *rewind.Rollback) string {
	if rb.Evidence == "" {
		return ""
	}
	if strings.Contains(rb.Evidence, "://") {
		return strings.TrimSuffix(rb.Evidence, "/") + "/POSTMORTEM.md"
	}
	return filepath.Join(rb.Evidence, "POSTMORTEM.md")
}

// postMortemTimeout bounds writing a draft (its impact queries).
const postMortemTimeout = 30 * time.Second

// postMortems writes the post-mortem draft of every rollback that ends
// (step 7 of docs/rollback.md) into its evidence bundle; a failure is logged (the
// rollback is over).
type postMortems struct{ d *Daemon }

func (p postMortems) Publish(ctx context.Context, e rewind.Event) error {
	if e.Kind != rewind.EventRollbackEnded || e.Rollback == nil || e.Rollback.Evidence == "" {
		return nil
	}
	b, err := p.d.gen.Load().system(e.System)
	if err != nil {
		return fmt.Errorf("post-mortem of %s: %w", e.RollbackID, err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), postMortemTimeout)
	defer cancel()
	if a := p.d.archive(p.d.evidenceDir(b.sys)); a != nil && strings.Contains(e.Rollback.Evidence, "://") {
		// The bundle is archived: the draft goes into its local copy,
		// then joins the archive.
		if _, err := report.WriteDraftIn(ctx, p.d.opt.Store, b.source, b.sys, e.RollbackID, a.Local(e.RollbackID)); err != nil {
			return fmt.Errorf("post-mortem draft of %s not written: %w", e.RollbackID, err)
		}
		loc, err := a.Sync(ctx, e.RollbackID)
		if err != nil {
			return fmt.Errorf("post-mortem draft of %s not archived (it is in %s): %w", e.RollbackID, a.Local(e.RollbackID), err)
		}
		p.d.log.Info("post-mortem draft written", "rollback", e.RollbackID, "path", strings.TrimSuffix(loc, "/")+"/POSTMORTEM.md")
		return nil
	}
	path, err := report.WriteDraft(ctx, p.d.opt.Store, b.source, b.sys, e.RollbackID)
	if err != nil {
		return fmt.Errorf("post-mortem draft of %s not written: %w", e.RollbackID, err)
	}
	p.d.log.Info("post-mortem draft written", "rollback", e.RollbackID, "path", path)
	return nil
}

// newOutbox is the durable outbox on st; its results are counted in
// rewind_notifications_total{notifier,result}.
func newOutbox(st notify.Store, log *slog.Logger, reg prometheus.Registerer, h *health) *notify.Outbox {
	total := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rewind_notifications_total",
		Help: "Notification attempts by notifier and result (delivered, retried, failed, expired, dropped)."}, []string{"notifier", "result"})
	reg.MustRegister(total)
	o := &notify.Outbox{Store: st, Log: log}
	o.OnResult = func(n string, r notify.Result) {
		total.WithLabelValues(n, string(r)).Inc()
		h.notified(n, r)
	}
	return o
}
