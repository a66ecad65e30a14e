// Package child runs the helper processes of the bench and of tests
// (Prometheus, rewind serve, mailpit): a child dies with this process
// (Linux), its exit is seen once, it is waited for until it is ready, and
// it is stopped gently (SIGTERM), then killed after a grace period.
package child

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"syscall"
	"time"
)

// Process is a started child process.
type Process struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

// Start starts cmd, named name in errors, as a child that dies with this
// process.
func Start(name string, cmd *exec.Cmd) (*Process, error) {
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{name: name, cmd: cmd, exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	return p, nil
}

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is how the process exited, once Exited is closed.
func (p *Process) Err() error { return p.err }

// Stop sends SIGTERM and waits for the exit; after grace it kills the
// process. A nil or exited process is left alone.
func (p *Process) Stop(grace time.Duration) {
	if p == nil {
		return
	}
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// WaitReady calls ready every poll until it reports true, the process exits
// or ctx ends.
func (p *Process) WaitReady(ctx context.Context, poll time.Duration, ready func() bool) error {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if ready() {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited: %v", p.name, p.err)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w", p.name, ctx.Err())
		case <-t.C:
		}
	}
}

// HTTPOK reports whether a GET of url answers 200 OK.
func HTTPOK(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
