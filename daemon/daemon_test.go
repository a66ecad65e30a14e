package daemon

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/controller"
	"github.com/rewind-sre/rewind/internal/testenv"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/source/embedded"
)

func parse(t *testing.T, rollback string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("p.yaml", []byte(`apiVersion: rewind/v1
kind: Policy
systems:
  - name: web
    interval: 1s
    canary:   { selector: 'version="canary"' }
    baseline: { selector: 'version="baseline"' }
    triggers:
      - { name: down, expr: 'up{ {{selector}} } == 0' }
    rollback:
`+rollback))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newDaemon(t *testing.T, pol *policy.Policy, events ...rewind.Publisher) (*Daemon, error) {
	t.Helper()
	st, err := OpenStore(t.Context(), filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	db, err := embedded.Open(embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return New(Options{Policy: pol, Store: st, Source: func(policy.Prometheus) (rewind.Source, error) { return db, nil },
		EvidenceDir: t.TempDir(), Events: events})
}

// TestNotifyOnlyNeedsNoExecutor: a notify-only system starts without any
// executor (an operator's rollback of it is refused, nothing to change);
// an automatic one without an executor is a policy error with file:line.
func TestNotifyOnlyNeedsNoExecutor(t *testing.T) {
	d, err := newDaemon(t, parse(t, "      mode: notify-only\n"))
	if err != nil {
		t.Fatalf("notify-only without an executor: %v", err)
	}
	if _, _, err := d.Rollback(t.Context(), "web", "x", "test"); !errors.Is(err, controller.ErrNoExecutor) {
		t.Fatalf("a rollback of a system without executor: %v", err)
	}
	_, err = newDaemon(t, parse(t, "      mode: automatic\n"))
	var perrs policy.Errors
	if !errors.As(err, &perrs) || len(perrs) != 1 || perrs[0].Error() != "p.yaml:11: systems[0].rollback: mode automatic needs an executor: configure kubernetes, istio, exec or webhook, or set mode: notify-only" {
		t.Fatalf("automatic without an executor: %v", err)
	}
}

// events records the events it is given.
type events struct {
	mu  sync.Mutex
	got []rewind.Event
}

func (e *events) Publish(_ context.Context, ev rewind.Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, ev)
	return nil
}

func (e *events) kinds() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var k []string
	for _, ev := range e.got {
		k = append(k, string(ev.Kind))
		if ev.Step != nil {
			k[len(k)-1] += ":" + string(ev.Step.Name) + "=" + string(ev.Step.State)
		}
	}
	return strings.Join(k, " ")
}

// TestRollbackPublishesItsSteps: a rollback run by the daemon publishes
// each step and its end to the subscribers, after the policy took effect.
func TestRollbackPublishesItsSteps(t *testing.T) {
	var ev events
	d, err := newDaemon(t, parse(t, "      exec:\n        undo: { command: [\"/bin/true\"] }\n      verify: { for: 0s, timeout: 1s }\n"), &ev)
	if err != nil {
		t.Fatal(err)
	}
	rb, resumed, err := d.Rollback(t.Context(), "web", "team-consensus", "test")
	if err != nil || resumed {
		t.Fatalf("%v %v", err, resumed)
	}
	got := ev.kinds()
	for _, want := range []string{"policy-applied ", "rollback-step:drain=running", "rollback-step:undo=done", "rollback-step:verify=", "rollback-ended"} {
		if !strings.Contains(got, want) {
			t.Errorf("events lack %q: %s", want, got)
		}
	}
	if !strings.HasSuffix(got, "rollback-ended") {
		t.Errorf("the end comes last: %s", got)
	}
	if rb.State == rewind.RollbackRunning {
		t.Errorf("rollback still running")
	}
}

// TestApplySwapsEverything: a new policy's systems, routing and checks
// are in force after Apply; a policy the daemon cannot build changes
// nothing.
func TestApplySwapsEverything(t *testing.T) {
	d, err := newDaemon(t, parse(t, "      mode: notify-only\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Apply(parse(t, "      mode: automatic\n")); err == nil {
		t.Fatal("Apply of an automatic system without executor must fail")
	}
	if d.Policy().Systems[0].Rollback.Mode != policy.ModeNotifyOnly {
		t.Fatal("a refused Apply changed the policy")
	}
	next := parse(t, "      exec:\n        undo: { command: [\"/bin/true\"] }\n")
	if err := d.Apply(next); err != nil {
		t.Fatal(err)
	}
	if d.Policy() != next || d.gen.Load().systems["web"].runner == nil {
		t.Fatal("the new generation is not in force")
	}
}

// TestReloadDuringARollback: a policy applied while a rollback runs keeps
// it in flight (no second one starts), and once it ends the system can be
// rolled back again.
func TestReloadDuringARollback(t *testing.T) {
	slow := "      exec:\n        undo: { command: [\"/bin/sleep\", \"1\"] }\n      verify: { for: 0s, timeout: 1s }\n"
	var ev events
	d, err := newDaemon(t, parse(t, slow), &ev)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan struct{})
	go func() { defer close(ran); _ = d.Run(ctx) }()
	defer func() { cancel(); <-ran }()
	var id string
	testenv.Eventually(t, 10*time.Second, "the controller acting", func() (bool, string) {
		id, err = d.Controller().RequestRollback(t.Context(), "web", "team-consensus", "test")
		return err == nil, fmt.Sprint(err)
	})
	if err := d.Apply(parse(t, slow)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Controller().RequestRollback(t.Context(), "web", "again", "test"); !errors.Is(err, controller.ErrBusy) {
		t.Fatalf("a second rollback during the first: %v", err)
	}
	testenv.Eventually(t, 20*time.Second, "the first rollback to end", func() (bool, string) {
		return strings.Contains(ev.kinds(), "rollback-ended"), ev.kinds()
	})
	testenv.Eventually(t, 5*time.Second, "the system free again", func() (bool, string) {
		s := d.Controller().Systems()[0]
		return s.InFlight == "", "still in flight: " + s.InFlight + " (first was " + id + ")"
	})
	if _, err := d.Controller().RequestRollback(t.Context(), "web", "again", "test"); err != nil {
		t.Fatalf("a rollback after the first ended: %v", err)
	}
}
