// Package mailpit runs the real SMTP server of the email tests: mailpit
// (github.com/axllent/mailpit), built from the module pinned in tools/mailpit
// by .ci/build-mailpit, on loopback ports, with STARTTLS (a fresh
// self-signed certificate), SMTP authentication and chaos (SMTP error
// replies) as asked. Messages are read back through its HTTP API.
package mailpit

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rewind-sre/rewind/internal/child"
)

// Version is the mailpit version pinned in tools/mailpit/go.mod.
const Version = "v1.33.1"

// Bounds of the helper's waits.
const (
	readyTimeout = 30 * time.Second
	readyPoll    = 20 * time.Millisecond
	attempts     = 3
)

// Options say how the server behaves.
type Options struct {
	TLS  bool // offer and require STARTTLS, with a certificate for 127.0.0.1
	Auth bool // require SMTP authentication (Username, Password)
	// Chaos makes every delivery fail with an SMTP reply, in mailpit's
	// --chaos-triggers form, e.g. "Recipient:550:100" (stage:code:percent).
	Chaos string
}

// Server is a running mailpit.
type Server struct {
	SMTP     string      // host:port
	API      string      // base URL of the HTTP API
	TLS      *tls.Config // trusts the server's certificate (Options.TLS)
	Username string      // Options.Auth
	Password string

	proc   *child.Process
	output *lockedBuffer
}

// Binary returns the mailpit binary: $REWIND_MAILPIT, the cache of
// .ci/build-mailpit, or mailpit in PATH. Without one it skips the test, or
// fails it when the CI environment variable is set.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("REWIND_MAILPIT"); p != "" {
		return p
	}
	cache := os.Getenv("REWIND_CACHE")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache", "rewind")
		}
	}
	if p := filepath.Join(cache, "mailpit-"+Version, "bin", "mailpit"); isExec(p) {
		return p
	}
	if p, err := exec.LookPath("mailpit"); err == nil {
		return p
	}
	reason := "mailpit not found: run .ci/build-mailpit (or set REWIND_MAILPIT)"
	if os.Getenv("CI") != "" {
		t.Fatalf("%s; CI must not skip this test", reason)
	}
	t.Skip(reason)
	return ""
}

func isExec(p string) bool {
	info, err := os.Stat(p)
	return err == nil && !info.IsDir() && info.Mode()&0o111 != 0
}

// Start runs mailpit on free loopback ports, stopped by t.Cleanup.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	s := &Server{}
	args := []string{"--disable-version-check", "--smtp-disable-rdns", "--database", filepath.Join(dir, "mailpit.db")}
	if o.TLS {
		cert, key, pool := certificate(t, dir)
		s.TLS = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
		args = append(args, "--smtp-tls-cert", cert, "--smtp-tls-key", key, "--smtp-require-starttls")
	}
	if o.Auth {
		s.Username, s.Password = "rewind", "pw-"+randomHex(t, 12)
		file := filepath.Join(dir, "smtp-auth")
		if err := os.WriteFile(file, []byte(s.Username+":"+s.Password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--smtp-auth-file", file)
	} else {
		// Any or no credentials; offered without TLS too, so that a client
		// can be seen to refuse authenticating in plain text.
		args = append(args, "--smtp-auth-accept-any")
		if !o.TLS {
			args = append(args, "--smtp-auth-allow-insecure")
		}
	}
	if o.Chaos != "" {
		args = append(args, "--enable-chaos", "--chaos-triggers", o.Chaos)
	}
	for try := 1; ; try++ {
		smtp, api := freeAddr(t), freeAddr(t)
		err := s.start(bin, append(args, "--smtp", smtp, "--listen", api))
		if err == nil {
			s.SMTP, s.API = smtp, "http://"+api
			t.Cleanup(s.stop)
			if err = s.ready(); err == nil {
				return s
			}
		}
		s.stop()
		if try == attempts || !strings.Contains(s.output.String(), "address already in use") {
			t.Fatalf("starting mailpit: %v\n%s", err, s.output.String())
		}
	}
}

func (s *Server) start(bin string, args []string) error {
	s.output = &lockedBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = s.output, s.output
	var err error
	s.proc, err = child.Start("mailpit", cmd)
	return err
}

// ready waits until the API answers /readyz and the SMTP port accepts.
func (s *Server) ready() error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	return s.proc.WaitReady(ctx, readyPoll, func() bool {
		if !child.HTTPOK(s.API + "/readyz") {
			return false
		}
		c, err := net.Dial("tcp", s.SMTP)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

func (s *Server) stop() { s.proc.Stop(5 * time.Second) }

// Output is what mailpit logged.
func (s *Server) Output() string { return s.output.String() }

// Address is one address of a message summary.
type Address struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

// Summary is a message as the API lists it.
type Summary struct {
	ID      string    `json:"ID"`
	From    Address   `json:"From"`
	To      []Address `json:"To"`
	Subject string    `json:"Subject"`
}

// Messages lists the stored messages, newest first.
func (s *Server) Messages(ctx context.Context) ([]Summary, error) {
	var out struct {
		Messages []Summary `json:"messages"`
	}
	b, err := s.get(ctx, "/api/v1/messages")
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("mailpit messages: %w", err)
	}
	return out.Messages, nil
}

// Raw returns a message's source as received.
func (s *Server) Raw(ctx context.Context, id string) ([]byte, error) {
	return s.get(ctx, "/api/v1/message/"+id+"/raw")
}

func (s *Server) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.API+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("mailpit GET %s: %d %s", path, resp.StatusCode, b)
	}
	return b, nil
}

// certificate writes a self-signed certificate for 127.0.0.1 and localhost.
func certificate(t testing.TB, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mailpit test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", b)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
