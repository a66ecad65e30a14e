package plan_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/plan/plantest"
)

// The kill -9 test runs a rollback in a child process (this test binary,
// running TestHelperProcess) whose executors keep their effects in files.
// At one step the child announces "reached" on stdout and blocks; the
// parent kills it with SIGKILL and resumes the rollback from the same store
// file in-process.
const (
	helperDirEnv   = "REWIND_PLAN_HELPER_DIR"   // the child's store and effect files
	helperStepEnv  = "REWIND_PLAN_HELPER_STEP"  // the step where it stops
	helperPhaseEnv = "REWIND_PLAN_HELPER_PHASE" // before-effect | after-effect
	system         = "checkout"
)

// fileExec is an idempotent executor whose target is a file: its size is
// the number of times the step's change took effect. Do on a target that
// already has the change is Skipped. Every call is counted in a second file.
type fileExec struct {
	dir   string
	step  rewind.StepName
	stop  string // "", "before-effect" or "after-effect": announce and block there
	stdio *os.File
}

func (f *fileExec) effects() string  { return filepath.Join(f.dir, "effects-"+string(f.step)) }
func (f *fileExec) attempts() string { return filepath.Join(f.dir, "attempts-"+string(f.step)) }

func (f *fileExec) Plan(ctx context.Context, rb *rewind.Rollback) ([]rewind.Change, error) {
	if count(f.effects()) > 0 {
		return nil, nil
	}
	return []rewind.Change{{Target: f.effects(), Action: "append", Detail: rb.ID}}, nil
}

func (f *fileExec) Do(ctx context.Context, rb *rewind.Rollback) (rewind.StepResult, error) {
	if err := ctx.Err(); err != nil {
		return rewind.StepResult{}, err
	}
	if err := appendByte(f.attempts()); err != nil {
		return rewind.StepResult{}, err
	}
	if f.stop == "before-effect" {
		return rewind.StepResult{}, f.announceAndBlock(ctx)
	}
	res := rewind.StepResult{Skipped: true, Detail: "already applied"}
	if count(f.effects()) == 0 {
		if err := appendByte(f.effects()); err != nil {
			return rewind.StepResult{}, err
		}
		res = rewind.StepResult{Detail: "applied", Facts: map[string]string{"effects": "1"}}
	}
	if f.stop == "after-effect" {
		return rewind.StepResult{}, f.announceAndBlock(ctx)
	}
	return res, nil
}

func (f *fileExec) announceAndBlock(ctx context.Context) error {
	fmt.Fprintf(f.stdio, "REACHED %s\n", f.step)
	<-ctx.Done() // until the parent's SIGKILL (or the step's timeout)
	return ctx.Err()
}

func (f *fileExec) state() string { return fmt.Sprintf("effects=%d", count(f.effects())) }

func appendByte(path string) error {
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = fh.Write([]byte{'x'})
	return errors.Join(err, fh.Close())
}

func count(path string) int {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return int(fi.Size())
}

func fileExecutors(dir string, stopStep rewind.StepName, phase string) map[rewind.StepName]rewind.Executor {
	out := map[rewind.StepName]rewind.Executor{}
	for _, n := range rewind.PlanSteps {
		f := &fileExec{dir: dir, step: n, stdio: os.Stdout}
		if n == stopStep {
			f.stop = phase
		}
		out[n] = f
	}
	return out
}

// fileFence is a rewind.Fence kept in a file (holder id), with a log of
// its calls. Only one process uses it at a time in these tests.
type fileFence struct{ dir string }

func (f fileFence) path() string { return filepath.Join(f.dir, "fence") }

func (f fileFence) log(line string) error {
	fh, err := os.OpenFile(filepath.Join(f.dir, "fence.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(fh, line)
	return errors.Join(err, fh.Close())
}

func (f fileFence) Acquire(ctx context.Context, system, id string) (string, error) {
	b, err := os.ReadFile(f.path())
	if err == nil && len(b) > 0 && string(b) != id {
		return string(b), rewind.ErrRollbackInProgress
	}
	if err := os.WriteFile(f.path(), []byte(id), 0o644); err != nil {
		return "", err
	}
	return id, f.log("acquire " + id)
}

func (f fileFence) Complete(ctx context.Context, system, id string) error {
	if b, _ := os.ReadFile(f.path()); string(b) == id {
		if err := os.Remove(f.path()); err != nil {
			return err
		}
	}
	return f.log("complete " + id)
}

// TestHelperProcess is the child of TestKillAndResume; run alone it does
// nothing.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		return
	}
	ctx := context.Background()
	st := openStore(t, filepath.Join(dir, "rewind.db"))
	r := &plan.Runner{
		Store:     st,
		Fence:     fileFence{dir},
		Executors: fileExecutors(dir, rewind.StepName(os.Getenv(helperStepEnv)), os.Getenv(helperPhaseEnv)),
		Timeouts:  map[rewind.StepName]time.Duration{}, // the defaults, all far longer than the test
	}
	rb, err := r.Start(ctx, system, "kill test", "test", nil)
	fmt.Fprintf(os.Stderr, "the helper was not killed: %+v, %v\n", rb, err)
	os.Exit(3)
}

func TestKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 12 child processes")
	}
	for _, step := range rewind.PlanSteps {
		for _, phase := range []string{"before-effect", "after-effect"} {
			t.Run(string(step)+"/"+phase, func(t *testing.T) {
				t.Parallel()
				killAndResume(t, step, phase)
			})
		}
	}
}

func killAndResume(t *testing.T, step rewind.StepName, phase string) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperDirEnv+"="+dir, helperStepEnv+"="+string(step), helperPhaseEnv+"="+phase)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reached := false
	for sc := bufio.NewScanner(stdout); sc.Scan(); {
		if sc.Text() == "REACHED "+string(step) {
			reached = true
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	werr := cmd.Wait()
	if !reached {
		t.Fatalf("the child ended (%v) without reaching %s:\n%s", werr, step, stderr.String())
	}

	st := openStore(t, filepath.Join(dir, "rewind.db"))
	before, err := st.Unfinished(ctx)
	if err != nil || len(before) != 1 || before[0].Step(step).State != rewind.StepRunning {
		t.Fatalf("after the kill: %+v, %v; want one rollback running %s", before, err, step)
	}
	r := &plan.Runner{Store: st, Fence: fileFence{dir}, Executors: fileExecutors(dir, "", "")}
	resumed, err := r.Resume(ctx)
	if err != nil || len(resumed) != 1 {
		t.Fatalf("Resume: %v, %v", resumed, err)
	}
	rb := resumed[0]
	if rb.ID != before[0].ID || rb.State != rewind.RollbackSucceeded {
		t.Fatalf("resumed %s: %s %q", rb.ID, rb.State, rb.Error)
	}

	for _, n := range rewind.PlanSteps {
		wantAttempts := 1
		if n == step {
			wantAttempts = 2
		}
		if got := count(filepath.Join(dir, "effects-"+string(n))); got != 1 {
			t.Errorf("%s took effect %d times, want exactly once", n, got)
		}
		if got := count(filepath.Join(dir, "attempts-"+string(n))); got != wantAttempts {
			t.Errorf("%s attempted %d times, want %d", n, got, wantAttempts)
		}
		if s := rb.Step(n); s.Attempts != wantAttempts {
			t.Errorf("%s recorded with %d attempts, want %d", n, s.Attempts, wantAttempts)
		}
	}
	wantState := rewind.StepDone
	if phase == "after-effect" {
		wantState = rewind.StepSkipped // the resumed Do finds the change made
	}
	if s := rb.Step(step); s.State != wantState {
		t.Errorf("%s after resume: %s, want %s", step, s.State, wantState)
	}

	_, lines := journal(t, st, rb.ID)
	i := slices.Index(lines, string(step)+":running")
	if i < 0 || !slices.Equal(lines[i:i+3], []string{string(step) + ":running", "*:running", string(step) + ":running"}) {
		t.Errorf("journal around the kill: %v", lines)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "fence.log"))
	if want := fmt.Sprintf("acquire %[1]s\nacquire %[1]s\ncomplete %[1]s\n", rb.ID); string(log) != want {
		t.Errorf("fence log:\n%s\nwant:\n%s", log, want)
	}
	if again, err := r.Resume(ctx); err != nil || len(again) != 0 {
		t.Errorf("a second Resume: %v, %v; want nothing to do", again, err)
	}
	if strings.Contains(stderr.String(), "was not killed") {
		t.Error(stderr.String())
	}
}

func TestFileExecutorPassesSuite(t *testing.T) {
	plantest.ExecutorSuite(t, func(t *testing.T) (rewind.Executor, *rewind.Rollback, func() string) {
		f := &fileExec{dir: t.TempDir(), step: rewind.StepUndo, stdio: os.Stdout}
		return f, &rewind.Rollback{ID: "rb-suite", System: system}, f.state
	})
}
