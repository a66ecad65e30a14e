package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// lookBinary returns the path of an executable from a Debian package,
// searched in PATH and then in /usr/bin. When it is missing the test is
// skipped with the reason, or fails when the CI environment variable is set.
func lookBinary(t testing.TB, name, debianPackage string) string {
	t.Helper()
	if path, err := exec.LookPath(name); err == nil {
		return path
	}
	fallback := filepath.Join("/usr/bin", name)
	if info, err := os.Stat(fallback); err == nil && !info.IsDir() && info.Mode()&0o111 != 0 {
		return fallback
	}
	reason := fmt.Sprintf("%s not found in PATH or /usr/bin (install the Debian package %q)", name, debianPackage)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s; CI must not skip this test", reason)
	}
	t.Skip(reason)
	return ""
}

// freeLoopbackAddr returns 127.0.0.1:PORT with a port that was free a moment
// ago. Another process may take it before the caller binds it; callers retry.
func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free loopback port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatalf("releasing port %d: %v", port, err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// outputBuffer collects a child process's output for the test log, keeping
// at most maxOutput bytes.
type outputBuffer struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	truncated bool
}

const maxOutput = 1 << 20

func (b *outputBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := maxOutput - b.buf.Len()
	if len(p) > room {
		b.buf.Write(p[:max(room, 0)])
		b.truncated = true
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *outputBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.truncated {
		return b.buf.String() + "\n[output truncated]"
	}
	return b.buf.String()
}
