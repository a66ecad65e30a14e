package testenv

// A real S3 server for the evidence tests: MinIO, built from the Go module
// pinned in tools/minio by .ci/build-minio (issue 15).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIOVersion is github.com/minio/minio in tools/minio/go.mod: the cache
// dir of .ci/build-minio is named after it (TestMinIOPin keeps them equal).
const MinIOVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"

// MinIO is a running MinIO server on loopback with one data directory.
// Stop kills it (the bucket is down); Start brings it back on the same
// address with the same data.
type MinIO struct {
	Endpoint  string // host:port of the S3 API (plain HTTP)
	AccessKey string
	SecretKey string

	t    testing.TB
	bin  string
	data string

	mu     sync.Mutex
	cmd    *exec.Cmd
	output *outputBuffer
	exited chan struct{}
}

// MinIOBinary returns the minio binary: $REWIND_MINIO, the cache of
// .ci/build-minio, or minio in PATH. Without one it skips the test, or fails
// it when the CI environment variable is set.
func MinIOBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("REWIND_MINIO"); p != "" {
		return p
	}
	cache := os.Getenv("REWIND_CACHE")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache", "rewind")
		}
	}
	p := filepath.Join(cache, "minio-"+MinIOVersion, "bin", "minio")
	if info, err := os.Stat(p); err == nil && info.Mode()&0o111 != 0 {
		return p
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	reason := "MinIO not built: run .ci/build-minio (REWIND_MINIO names another binary)"
	if os.Getenv("CI") != "" {
		t.Fatalf("%s; CI must not skip this test", reason)
	}
	t.Skip(reason)
	return ""
}

// StartMinIO starts MinIO on a free loopback port with a fresh data
// directory and random root credentials, and waits until it is ready. It is
// stopped by t.Cleanup.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	m := &MinIO{t: t, bin: MinIOBinary(t), data: t.TempDir(), AccessKey: "rewind-test", SecretKey: kubeToken(t)}
	t.Cleanup(func() {
		m.Stop()
		if t.Failed() && m.output != nil {
			t.Logf("minio %s output:\n%s", m.Endpoint, m.output)
		}
	})
	for attempt := 1; ; attempt++ {
		m.Endpoint = freeLoopbackAddr(t)
		err := m.launch()
		if err == nil {
			return m
		}
		if errors.Is(err, errAddrInUse) && attempt < startAttempts {
			continue
		}
		t.Fatalf("starting minio: %v", err)
	}
}

// Start restarts a stopped server on the same address with the same data.
func (m *MinIO) Start() {
	m.t.Helper()
	if err := m.Restart(); err != nil {
		m.t.Fatal(err)
	}
}

// Restart is Start for goroutines other than the test's: it returns the
// error instead of failing the test.
func (m *MinIO) Restart() error {
	if err := m.launch(); err != nil {
		return fmt.Errorf("restarting minio: %w", err)
	}
	return nil
}

func (m *MinIO) launch() error {
	console := freeLoopbackAddr(m.t)
	cmd := exec.Command(m.bin, "server", "--quiet", "--address", m.Endpoint, "--console-address", console, m.data)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1")
	out := &outputBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	killWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	m.mu.Lock()
	m.cmd, m.output, m.exited = cmd, out, exited
	m.mu.Unlock()
	if err := m.waitReady(exited); err != nil {
		m.Stop()
		if strings.Contains(out.String(), "address already in use") {
			return fmt.Errorf("%w: %s", errAddrInUse, m.Endpoint)
		}
		return fmt.Errorf("%w\noutput:\n%s", err, out)
	}
	return nil
}

// waitReady polls /minio/health/ready until it answers 200.
func (m *MinIO) waitReady(exited chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.Endpoint+"/minio/health/ready", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("minio exited before it was ready")
		case <-ctx.Done():
			return fmt.Errorf("minio not ready on %s within 60s", m.Endpoint)
		case <-tick.C:
		}
	}
}

// Stop kills the server (as a crash would: requests are refused at once)
// and waits for it to exit. Safe to call when stopped.
func (m *MinIO) Stop() {
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	_ = cmd.Process.Kill()
	select {
	case <-exited:
	case <-time.After(stopTimeout):
	}
}

// Client is a minio-go client with the root credentials.
func (m *MinIO) Client() *minio.Client {
	m.t.Helper()
	c, err := minio.New(m.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(m.AccessKey, m.SecretKey, "")})
	if err != nil {
		m.t.Fatalf("minio client: %v", err)
	}
	return c
}

// CreateBucket makes a bucket.
func (m *MinIO) CreateBucket(name string) {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Client().MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		m.t.Fatalf("minio: creating bucket %s: %v", name, err)
	}
}

// WriteCredentials writes the access and secret key into files (as a
// mounted Secret holds them) and returns their paths.
func (m *MinIO) WriteCredentials() (accessKeyFile, secretKeyFile string) {
	m.t.Helper()
	dir := m.t.TempDir()
	accessKeyFile, secretKeyFile = filepath.Join(dir, "access-key"), filepath.Join(dir, "secret-key")
	for f, v := range map[string]string{accessKeyFile: m.AccessKey, secretKeyFile: m.SecretKey} {
		if err := os.WriteFile(f, []byte(v+"\n"), 0o600); err != nil {
			m.t.Fatal(err)
		}
	}
	return accessKeyFile, secretKeyFile
}
