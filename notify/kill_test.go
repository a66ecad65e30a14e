package notify_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/notify"
	"github.com/rewind-sre/rewind/notify/webhook"
	"github.com/rewind-sre/rewind/store/sqlite"
)

// The kill -9 test publishes notices in a child process (this test binary,
// running TestOutboxHelperProcess) whose receiver is down or hangs; the
// parent kills it with SIGKILL, then a new Outbox on the same store file
// delivers every notice, once each and in order.
const (
	outboxHelperDirEnv  = "REWIND_OUTBOX_HELPER_DIR"
	outboxHelperAddrEnv = "REWIND_OUTBOX_HELPER_ADDR"
)

// TestOutboxHelperProcess is the child of TestKillWithPendingNotices; run
// alone it does nothing.
func TestOutboxHelperProcess(t *testing.T) {
	dir := os.Getenv(outboxHelperDirEnv)
	if dir == "" {
		return
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "rewind.db"))
	if err != nil {
		t.Fatal(err)
	}
	hook, err := webhook.New(webhook.Config{Name: "review", URL: "http://" + os.Getenv(outboxHelperAddrEnv) + "/rewind"})
	if err != nil {
		t.Fatal(err)
	}
	var once atomic.Bool
	o := &notify.Outbox{
		Store: st, Notifiers: map[string]rewind.Notifier{"review": hook},
		Backoff: notify.Backoff{Initial: time.Hour}, // no second attempt in the child
		OnResult: func(_ string, r notify.Result) {
			if r == notify.ResultRetried && once.CompareAndSwap(false, true) {
				fmt.Println("PENDING")
			}
		},
	}
	for _, e := range events()[:3] {
		if err := o.Publish(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Println("PUBLISHED")
	_ = o.Run(context.Background()) // until the parent's SIGKILL
	fmt.Fprintln(os.Stderr, "the helper was not killed")
	os.Exit(3)
}

func TestKillWithPendingNotices(t *testing.T) {
	for _, tc := range []struct {
		name string
		hang bool // the receiver takes the first request and never answers
	}{{"receiver-down", false}, {"mid-attempt", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			killWithPending(t, tc.hang)
		})
	}
}

func killWithPending(t *testing.T, hang bool) {
	dir := t.TempDir()
	rcv := &hookReceiver{now: time.Now}
	var stalling atomic.Bool
	got := make(chan struct{}, 1)
	addr := freeAddr(t) // down: nothing listens
	if hang {
		stalling.Store(true)
		addr = serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if stalling.Load() {
				got <- struct{}{}
				<-r.Context().Done() // the child dies with the request open
				return
			}
			rcv.ServeHTTP(w, r)
		}))
	}

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestOutboxHelperProcess$")
	cmd.Env = append(os.Environ(), outboxHelperDirEnv+"="+dir, outboxHelperAddrEnv+"="+addr)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	want := "PENDING"
	if hang {
		want = "PUBLISHED"
	}
	reached := false
	for sc := bufio.NewScanner(stdout); sc.Scan(); {
		if sc.Text() == want {
			reached = true
			break
		}
	}
	if reached && hang {
		select {
		case <-got: // the attempt is under way in the child
		case <-ctx.Done():
			t.Fatal("the child never reached the receiver")
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	werr := cmd.Wait()
	if !reached {
		t.Fatalf("the child ended (%v) before %s:\n%s", werr, want, stderr.String())
	}

	st := openStore(t, filepath.Join(dir, "rewind.db"))
	pending, err := st.Notices(ctx, notify.Filter{State: notify.Pending})
	if err != nil || len(pending) != 3 {
		t.Fatalf("after the kill: %d pending notices (%v), want 3", len(pending), err)
	}
	if !hang {
		// The receiver is back, elsewhere: the store holds the notifier's
		// name, not its URL.
		addr = serve(t, rcv)
	}
	stalling.Store(false)
	hook, _ := webhook.New(webhook.Config{Name: "review", URL: "http://" + addr + "/rewind"})
	h := newOutbox(t, st, map[string]rewind.Notifier{"review": hook}, time.Now(), nil)
	h.run(t)
	h.drive(t, func() bool { return rcv.accepted.Value() == 3 })
	if got, want := rcv.Keys(), keys(events()[:3]); !slices.Equal(got, want) {
		t.Errorf("delivered\n %v\nwant (once each, in order)\n %v", got, want)
	}
	ns, _ := st.Notices(ctx, notify.Filter{})
	for _, n := range ns {
		if n.State != notify.Delivered {
			t.Errorf("notice %s: %s", n.Key, n.State)
		}
	}
	if wantAttempts := map[bool]int{false: 2, true: 1}[hang]; ns[0].Attempts != wantAttempts {
		// down: the failed attempt before the kill was recorded; mid-attempt:
		// the attempt cut by the kill never was.
		t.Errorf("first notice: %d attempts recorded, want %d", ns[0].Attempts, wantAttempts)
	}
}
