package testenv

import (
	"bufio"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Chromium is a headless Debian chromium with its DevTools endpoint on a
// loopback port, for browser tests driven with chromedp
// (chromedp.NewRemoteAllocator(ctx, c.WebSocketURL)). Each Chromium has a
// fresh profile; it is stopped by t.Cleanup.
type Chromium struct {
	WebSocketURL string // ws://127.0.0.1:PORT/devtools/browser/ID
	cmd          *exec.Cmd
	output       *outputBuffer
	exited       chan struct{}
}

// chromiumFlags run Chromium headless as root (no sandbox) on a machine
// without GPU or network: without the background-networking flags it keeps
// trying to reach Google's hosts.
var chromiumFlags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
	"--disable-default-apps", "--disable-extensions", "--disable-quic", "--no-first-run",
	"--no-default-browser-check", "--mute-audio", "--hide-scrollbars",
	"--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
}

var devtoolsRE = regexp.MustCompile(`DevTools listening on (ws://\S+)`)

// StartChromium starts Chromium (Debian package chromium) with a fresh
// user data directory and a window of width × height, and returns once its
// DevTools endpoint is up. Without chromium the test is skipped, or fails
// when CI is set.
func StartChromium(t testing.TB, width, height int) *Chromium {
	t.Helper()
	bin := lookBinary(t, "chromium", "chromium")
	args := append([]string{}, chromiumFlags...)
	args = append(args, "--user-data-dir="+t.TempDir(), "--window-size="+strconv.Itoa(width)+","+strconv.Itoa(height), "about:blank")
	c := &Chromium{cmd: exec.Command(bin, args...), output: &outputBuffer{}, exited: make(chan struct{})}
	// Its own process group: Stop ends the renderers and helpers too.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stdout = c.output
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	found := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stderr)
		sent := false
		for {
			line, err := r.ReadString('\n')
			_, _ = c.output.Write([]byte(line))
			if m := devtoolsRE.FindStringSubmatch(line); m != nil && !sent {
				found <- m[1]
				sent = true
			}
			if err != nil {
				_, _ = io.Copy(c.output, r)
				break
			}
		}
		_ = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			t.Logf("chromium output:\n%s", c.output)
		}
	})
	select {
	case c.WebSocketURL = <-found:
		return c
	case <-c.exited:
		t.Fatalf("chromium exited before its DevTools endpoint was up:\n%s", c.output)
	case <-time.After(readyTimeout):
		t.Fatalf("chromium's DevTools endpoint not up within %s:\n%s", readyTimeout, c.output)
	}
	return nil
}

// Stop kills Chromium's process group and waits for it to exit.
func (c *Chromium) Stop() {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-c.exited:
	case <-time.After(stopTimeout):
	}
}
