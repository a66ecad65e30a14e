package notify_test

import (
	"context"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/internal/testenv"
	"github.com/rewind-sre/rewind/notify"
	"github.com/rewind-sre/rewind/notify/notifytest"
	"github.com/rewind-sre/rewind/notify/webhook"
)

// blockingReceiver holds its first delivery until released.
type blockingReceiver struct {
	hookReceiver
	first   sync.Once
	arrived chan struct{}
	release chan struct{}
}

func (b *blockingReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.first.Do(func() {
		close(b.arrived)
		<-b.release
	})
	b.hookReceiver.ServeHTTP(w, r)
}

// TestLeaderChangeDeliversOnce: the leader loses its lease while a notice
// is at the receiver; the new leader, on the same store through its own
// handle, waits for the old one's claim, and the notice is delivered once.
// The new leader then delivers what comes next.
func TestLeaderChangeDeliversOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rewind.db")
	rcv := &blockingReceiver{hookReceiver: hookReceiver{now: time.Now}, arrived: make(chan struct{}), release: make(chan struct{})}
	addr := serve(t, rcv)
	newOutbox := func(owner string) *notify.Outbox {
		n, err := webhook.New(webhook.Config{Name: "review", URL: "http://" + addr + "/rewind"})
		if err != nil {
			t.Fatal(err)
		}
		_, log := notifytest.NewLogs()
		return &notify.Outbox{Store: openStore(t, path), Notifiers: map[string]rewind.Notifier{"review": n}, Owner: owner,
			PollInterval: 20 * time.Millisecond, Log: log}
	}
	run := func(o *notify.Outbox) (stop func()) {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); _ = o.Run(ctx) }()
		return func() { cancel(); <-done }
	}

	a := newOutbox("replica-a")
	stopA := run(a)
	first := notifytest.Event(rewind.EventRollbackDecided)
	if err := a.Publish(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	<-rcv.arrived // the delivery is at the receiver

	// Leadership moves: a's loop stops (its attempt goes on), b starts.
	stoppedA := make(chan struct{})
	go func() { stopA(); close(stoppedA) }()
	b := newOutbox("replica-b")
	stopB := run(b)
	defer stopB()
	heads, err := b.Store.Heads(t.Context())
	if err != nil || len(heads) != 1 || heads[0].ClaimedBy != "replica-a" {
		t.Fatalf("the new leader sees %+v, %v; want the notice claimed by replica-a", heads, err)
	}
	close(rcv.release)
	<-stoppedA // a recorded its attempt before its Run returned

	second := notifytest.Event(rewind.EventRollbackCompleted)
	if err := b.Publish(t.Context(), second); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the new leader to deliver the next notice", func() (bool, string) {
		return len(rcv.Keys()) >= 2, ""
	})
	stopB()
	if got, want := rcv.Keys(), []string{first.Key(), second.Key()}; !slices.Equal(got, want) {
		t.Fatalf("the receiver got %v, want each once: %v", got, want)
	}
	settled, err := b.Store.Notices(t.Context(), notify.Filter{State: notify.Delivered})
	if err != nil || len(settled) != 2 || settled[0].Attempts != 1 || settled[1].Attempts != 1 {
		t.Fatalf("delivered notices %+v, %v", settled, err)
	}
}
