// Package exec is the generic executor for platforms without Kubernetes:
// it runs a program with an argument vector — never through a shell — with
// the rollback in its environment, bounded by a timeout, and keeps its
// output in the evidence bundle.
package exec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

// ExitSkipped is the exit code by which a program says there was nothing to
// do (the step is recorded skipped). Any other non-zero code fails the step.
const ExitSkipped = 3

// Executor runs Command for one step.
type Executor struct {
	Step        rewind.StepName
	Command     []string
	Timeout     time.Duration
	EvidenceDir string // parent of the bundles; output goes to <dir>/<id>/exec-<step>.log
}

var _ rewind.Executor = (*Executor)(nil)

// Env is the environment the program gets on top of Rewind's own: which
// rollback, system and step it runs for, and why. Programs use
// REWIND_ROLLBACK_ID to make a repeated call (after a restart) a no-op.
func (e *Executor) Env(rb *rewind.Rollback) []string {
	return []string{
		"REWIND_ROLLBACK_ID=" + rb.ID,
		"REWIND_SYSTEM=" + rb.System,
		"REWIND_STEP=" + string(e.Step),
		"REWIND_REASON=" + rb.Reason,
	}
}

func (e *Executor) Plan(_ context.Context, rb *rewind.Rollback) ([]rewind.Change, error) {
	if len(e.Command) == 0 {
		return nil, errors.New("exec: no command")
	}
	return []rewind.Change{{Target: e.Command[0], Action: "exec",
		Detail: fmt.Sprintf("%q with %s, at most %s", e.Command, strings.Join(e.Env(rb), " "), e.Timeout)}}, nil
}

func (e *Executor) Do(ctx context.Context, rb *rewind.Rollback) (rewind.StepResult, error) {
	if len(e.Command) == 0 {
		return rewind.StepResult{}, errors.New("exec: no command")
	}
	if e.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.Timeout)
		defer cancel()
	}
	cmd := osexec.CommandContext(ctx, e.Command[0], e.Command[1:]...)
	cmd.Env = append(os.Environ(), e.Env(rb)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) } // the whole process group
	cmd.WaitDelay = 2 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	res := rewind.StepResult{Facts: map[string]string{"command": fmt.Sprintf("%q", e.Command), "seconds": fmt.Sprintf("%.3f", took.Seconds())}}
	if path, werr := e.keep(rb, out.Bytes()); werr == nil && path != "" {
		res.Facts["output"] = path
	}
	var exit *osexec.ExitError
	switch {
	case ctx.Err() != nil:
		return res, fmt.Errorf("%s: %w after %s (output: %s)", e.Command[0], ctx.Err(), took.Round(time.Millisecond), tail(out.Bytes()))
	case errors.As(err, &exit) && exit.ExitCode() == ExitSkipped:
		res.Skipped, res.Detail = true, fmt.Sprintf("%s: nothing to do: %s", e.Command[0], tail(out.Bytes()))
		return res, nil
	case err != nil:
		return res, fmt.Errorf("%s: %w: %s", e.Command[0], err, tail(out.Bytes()))
	}
	res.Detail = fmt.Sprintf("%s done in %s: %s", e.Command[0], took.Round(time.Millisecond), tail(out.Bytes()))
	return res, nil
}

// keep writes the program's output into the rollback's evidence bundle.
func (e *Executor) keep(rb *rewind.Rollback, out []byte) (string, error) {
	if e.EvidenceDir == "" {
		return "", nil
	}
	dir := filepath.Join(e.EvidenceDir, rb.ID)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "exec-"+string(e.Step)+".log")
	return path, os.WriteFile(path, out, 0o640)
}

// tail is the last line of output, for the journal.
func tail(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := lines[len(lines)-1]
	if len(last) > 200 {
		last = last[:200] + "…"
	}
	return last
}
