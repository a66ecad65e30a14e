package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// server is a test server process on a loopback port that answers
// /-/ready when it is up: Prometheus and Alertmanager.
type server struct {
	URL  string // base URL, e.g. http://127.0.0.1:40123
	Addr string // host:port

	name     string
	cmd      *exec.Cmd
	output   *outputBuffer
	exited   chan struct{} // closed when the process has exited
	waitErr  error         // valid after exited is closed
	stopOnce sync.Once
}

// launchServer starts the process and waits until it is ready. On failure
// the process is stopped and the error carries its output; a lost race for
// the port is errAddrInUse.
func launchServer(name, bin, dir, addr string, args ...string) (*server, error) {
	s := &server{URL: "http://" + addr, Addr: addr, name: name, output: &outputBuffer{}, exited: make(chan struct{})}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = s.output, s.output
	killWithParent(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(); err != nil {
		s.Stop()
		if strings.Contains(s.output.String(), "address already in use") {
			return nil, fmt.Errorf("%w: %s", errAddrInUse, addr)
		}
		return nil, fmt.Errorf("%w\noutput:\n%s", err, s.output)
	}
	return s, nil
}

// waitReady polls /-/ready until it answers 200, the process exits or
// readyTimeout passes.
func (s *server) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	ticker := time.NewTicker(readyPoll)
	defer ticker.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/-/ready", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("%s exited before it was ready: %v", s.name, s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready on %s within %s", s.name, s.Addr, readyTimeout)
		case <-ticker.C:
		}
	}
}

// Stop kills the server and waits for it to exit. It is safe to call more
// than once; t.Cleanup calls it too.
func (s *server) Stop() {
	s.stopOnce.Do(func() {
		select {
		case <-s.exited:
			return
		default:
		}
		_ = s.cmd.Process.Kill()
		select {
		case <-s.exited:
		case <-time.After(stopTimeout):
		}
	})
}

// Output returns what the server has logged so far.
func (s *server) Output() string { return s.output.String() }

// startServer starts a server process on a free loopback port, retrying
// on another port when it loses the race for one; args gives the command
// line for an address. The server is stopped by t.Cleanup, and its output
// logged when the test failed.
func startServer(t testing.TB, name, bin, dir string, args func(addr string) []string) *server {
	t.Helper()
	for attempt := 1; ; attempt++ {
		addr := freeLoopbackAddr(t)
		s, err := launchServer(name, bin, dir, addr, args(addr)...)
		if err == nil {
			t.Cleanup(func() {
				s.Stop()
				if t.Failed() {
					t.Logf("%s %s output:\n%s", name, s.Addr, s.output)
				}
			})
			return s
		}
		if errors.Is(err, errAddrInUse) && attempt < startAttempts {
			t.Logf("%s lost the race for %s, retrying on another port", name, addr)
			continue
		}
		t.Fatalf("starting %s: %v", name, err)
	}
}
