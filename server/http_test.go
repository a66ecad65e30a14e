package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func serveLimited(t *testing.T, h http.Handler, l Limits) string {
	t.Helper()
	ln, err := Listen("127.0.0.1:0", l)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewHTTPServer(h, l)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestTrickledBodyIsCutBeforeItIsRead: a client that sends its body a byte
// at a time loses its connection at the read timeout, whatever the handler
// (authentication included) does with the body.
func TestTrickledBodyIsCutBeforeItIsRead(t *testing.T) {
	var reads atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		reads.Add(int64(len(b)))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	l := DefaultLimits
	l.Read = 500 * time.Millisecond
	addr := serveLimited(t, h, l)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1/rollbacks HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
	start := time.Now()
	closed := make(chan time.Duration, 1)
	go func() {
		_, _ = io.Copy(io.Discard, conn) // until the server closes
		closed <- time.Since(start)
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case d := <-closed:
			if d > 10*l.Read {
				t.Fatalf("connection held %s with a read timeout of %s", d, l.Read)
			}
			if reads.Load() >= 1000 {
				t.Fatal("the whole trickled body was read")
			}
			return
		case <-tick.C:
			if _, err := conn.Write([]byte("x")); err != nil {
				continue // the server closed its side; wait for the reader
			}
			if time.Since(start) > time.Minute {
				t.Fatal("the server never closed the connection")
			}
		}
	}
}

func TestOversizeBodyIs413(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	l := DefaultLimits
	l.MaxBodyBytes = 1000
	addr := serveLimited(t, h, l)
	for _, chunked := range []bool{false, true} {
		body := io.Reader(strings.NewReader(strings.Repeat("x", 5000)))
		if chunked {
			body = io.MultiReader(body) // no length: sent chunked
		}
		resp, err := http.Post("http://"+addr+"/api/v1/rollbacks", "application/json", body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("chunked=%t: status %d, want 413", chunked, resp.StatusCode)
		}
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("y", 100<<10))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("headers over the bound: %d, want 431", resp.StatusCode)
	}
}
