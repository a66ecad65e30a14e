package exec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/plan/plantest"
)

// TestMain lets the test binary act as the external program: with
// REWIND_EXEC_HELPER set it runs as that helper instead of the tests.
func TestMain(m *testing.M) {
	if mode := os.Getenv("REWIND_EXEC_HELPER"); mode != "" {
		os.Exit(helper(mode))
	}
	os.Exit(m.Run())
}

// helper is an idempotent "deployer": it undoes once per rollback id,
// recording the effect in a state file, and says "skipped" afterwards.
func helper(mode string) int {
	state := os.Getenv("REWIND_EXEC_STATE")
	switch mode {
	case "undo":
		marker := state + "." + os.Getenv("REWIND_ROLLBACK_ID")
		if _, err := os.Stat(marker); err == nil {
			fmt.Println("already undone for", os.Getenv("REWIND_ROLLBACK_ID"))
			return ExitSkipped
		}
		f, _ := os.OpenFile(state, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		fmt.Fprintf(f, "undo %s %s %s\n", os.Getenv("REWIND_SYSTEM"), os.Getenv("REWIND_STEP"), os.Getenv("REWIND_REASON"))
		f.Close()
		os.WriteFile(marker, nil, 0o644)
		fmt.Println("undone")
		return 0
	case "fail":
		fmt.Println("deployer: no such application")
		return 1
	case "hang":
		time.Sleep(time.Hour) // the external program hangs; the executor must kill it
	}
	return 2
}

func executor(t *testing.T, mode string) (*Executor, string) {
	state := filepath.Join(t.TempDir(), "state")
	t.Setenv("REWIND_EXEC_HELPER", mode)
	t.Setenv("REWIND_EXEC_STATE", state)
	return &Executor{Step: rewind.StepUndo, Command: []string{os.Args[0], "-test.run=^$", "arg with spaces; $(no shell)"}, Timeout: 10 * time.Second, EvidenceDir: t.TempDir()}, state
}

func TestExec(t *testing.T) {
	ex, state := executor(t, "undo")
	rb := &rewind.Rollback{ID: "rb-1", System: "dwcp-manager", Reason: "customer-escalation"}
	res, err := ex.Do(context.Background(), rb)
	if err != nil || res.Skipped || !strings.Contains(res.Detail, "undone") {
		t.Fatalf("%+v %v", res, err)
	}
	got, _ := os.ReadFile(state)
	if string(got) != "undo dwcp-manager undo customer-escalation\n" {
		t.Fatalf("environment not passed: %q", got)
	}
	if out, _ := os.ReadFile(res.Facts["output"]); !strings.Contains(string(out), "undone") {
		t.Fatalf("output not kept in the evidence: %q", out)
	}
	res, err = ex.Do(context.Background(), rb)
	if err != nil || !res.Skipped {
		t.Fatalf("second run: %+v %v", res, err)
	}
}

func TestExecFailureAndTimeout(t *testing.T) {
	ex, _ := executor(t, "fail")
	if _, err := ex.Do(context.Background(), &rewind.Rollback{ID: "x"}); err == nil || !strings.Contains(err.Error(), "no such application") {
		t.Fatalf("want the program's error, got %v", err)
	}
	ex, _ = executor(t, "hang")
	ex.Timeout = 300 * time.Millisecond
	start := time.Now()
	_, err := ex.Do(context.Background(), &rewind.Rollback{ID: "x"})
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("hung program: %v after %s", err, time.Since(start))
	}
}

func TestExecSuite(t *testing.T) {
	plantest.ExecutorSuite(t, func(t *testing.T) (rewind.Executor, *rewind.Rollback, func() string) {
		ex, state := executor(t, "undo")
		return ex, &rewind.Rollback{ID: "rb-suite", System: "s"}, func() string {
			b, _ := os.ReadFile(state)
			return string(b)
		}
	})
}
