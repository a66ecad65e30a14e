package plan_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/store/sqlite"
)

// fakeExec is an idempotent executor with one bit of target state
// (applied) that counts its calls. The plan runner's tests configure it to
// fail, escalate, block or wait.
type fakeExec struct {
	name rewind.StepName

	// configuration, set before use
	err      error             // Do fails with it
	result   rewind.StepResult // Do's result when it applies
	blocks   bool              // Do blocks until its context ends
	entered  chan<- string     // if set, Do sends its name here when called
	release  <-chan struct{}   // if set, Do waits for it (or its context) before acting
	planErr  error             // Plan fails with it
	panicMsg string            // Do panics with it

	mu      sync.Mutex
	plans   int
	dos     int
	applied bool
}

func (f *fakeExec) Plan(ctx context.Context, rb *rewind.Rollback) ([]rewind.Change, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plans++
	if f.planErr != nil {
		return nil, f.planErr
	}
	if f.applied {
		return nil, nil
	}
	return []rewind.Change{{Target: "fake " + string(f.name), Action: "apply", Detail: "for " + rb.System}}, nil
}

func (f *fakeExec) Do(ctx context.Context, rb *rewind.Rollback) (rewind.StepResult, error) {
	f.mu.Lock()
	f.dos++
	f.mu.Unlock()
	if f.entered != nil {
		f.entered <- string(f.name)
	}
	if err := ctx.Err(); err != nil {
		return rewind.StepResult{}, err
	}
	if f.panicMsg != "" {
		panic(f.panicMsg)
	}
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			return rewind.StepResult{}, ctx.Err()
		}
	}
	if f.blocks {
		<-ctx.Done()
		return rewind.StepResult{}, ctx.Err()
	}
	if f.err != nil {
		return rewind.StepResult{}, f.err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.applied {
		return rewind.StepResult{Skipped: true, Detail: "already applied"}, nil
	}
	f.applied = true
	res := f.result
	if res.Detail == "" {
		res.Detail = string(f.name) + " applied"
	}
	if res.Facts == nil {
		res.Facts = map[string]string{"step": string(f.name)}
	}
	return res, nil
}

func (f *fakeExec) calls() (plans, dos int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.plans, f.dos
}

func (f *fakeExec) state() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprintf("applied=%v", f.applied)
}

type fakes map[rewind.StepName]*fakeExec

func newFakes() fakes {
	fs := fakes{}
	for _, n := range rewind.PlanSteps {
		fs[n] = &fakeExec{name: n}
	}
	return fs
}

func (fs fakes) executors() map[rewind.StepName]rewind.Executor {
	out := map[rewind.StepName]rewind.Executor{}
	for n, f := range fs {
		out[n] = f
	}
	return out
}

func (fs fakes) dos(n rewind.StepName) int {
	_, d := fs[n].calls()
	return d
}

// memFence is an in-memory rewind.Fence shared by runners.
type memFence struct {
	mu        sync.Mutex
	holders   map[string]string
	acquires  int
	completes int
}

func (m *memFence) Acquire(ctx context.Context, system, id string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.acquires++
	if h := m.holders[system]; h != "" && h != id {
		return h, rewind.ErrRollbackInProgress
	}
	if m.holders == nil {
		m.holders = map[string]string{}
	}
	m.holders[system] = id
	return id, nil
}

func (m *memFence) Complete(ctx context.Context, system, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.completes++
	if m.holders[system] == id {
		delete(m.holders, system)
	}
	return nil
}

func (m *memFence) holder(system string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.holders[system]
}

// stepClock is a clock that advances one second on every reading, so that
// every recorded duration is positive and exact.
func stepClock() func() time.Time {
	var n atomic.Int64
	base := time.Date(2026, 1, 1, 0, 31, 30, 0, time.UTC)
	return func() time.Time { return base.Add(time.Duration(n.Add(1)) * time.Second) }
}

func openStore(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "rewind.db")
	}
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// progressLog records Progress calls as "step:state".
type progressLog struct {
	mu  sync.Mutex
	got []string
}

func (p *progressLog) record(rb *rewind.Rollback, s rewind.StepRecord) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, string(s.Name)+":"+string(s.State))
}

func (p *progressLog) calls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.got...)
}

func newRunner(t *testing.T, fs fakes) (*plan.Runner, *sqlite.Store, *memFence) {
	t.Helper()
	st := openStore(t, "")
	fence := &memFence{}
	return &plan.Runner{Store: st, Fence: fence, Executors: fs.executors(), Now: stepClock()}, st, fence
}

// journal reads a rollback's journal as "step:state" lines ("" step: "*").
func journal(t *testing.T, st plan.Store, id string) ([]plan.JournalEntry, []string) {
	t.Helper()
	j, err := st.Journal(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range j {
		step := string(e.Step)
		if step == "" {
			step = "*"
		}
		lines = append(lines, step+":"+e.State)
	}
	return j, lines
}

var errBoom = errors.New("boom")
