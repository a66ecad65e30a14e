package server

import (
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// Limits bound Rewind's own HTTP server. They apply to every connection and
// request before any handler runs, authentication included, so that a
// client that sends slowly, sends too much or opens many connections holds
// neither memory nor goroutines for long.
type Limits struct {
	// ReadHeader bounds the reading of a request's headers, Read that of
	// the whole request, body included (a body trickled a byte at a time is
	// cut there), Write that of the answer, Idle a kept-alive connection
	// between requests.
	ReadHeader, Read, Write, Idle time.Duration
	// MaxHeaderBytes bounds a request's headers, MaxBodyBytes its body
	// (413 beyond), MaxConnections the connections served at once (more
	// wait in the kernel's backlog).
	MaxHeaderBytes int
	MaxBodyBytes   int64
	MaxConnections int
}

// DefaultLimits are the limits of `rewind serve`. Write is generous for a
// large /metrics; a handler that streams (server-sent events) extends its
// own deadline with http.ResponseController.
var DefaultLimits = Limits{
	ReadHeader:     5 * time.Second,
	Read:           15 * time.Second,
	Write:          time.Minute,
	Idle:           2 * time.Minute,
	MaxHeaderBytes: 64 << 10,
	MaxBodyBytes:   1 << 20,
	MaxConnections: 1024,
}

// NewHTTPServer returns the server of h with the limits l.
func NewHTTPServer(h http.Handler, l Limits) *http.Server {
	return &http.Server{
		Handler:           limitBody(h, l.MaxBodyBytes),
		ReadHeaderTimeout: l.ReadHeader,
		ReadTimeout:       l.Read,
		WriteTimeout:      l.Write,
		IdleTimeout:       l.Idle,
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}
}

// Listen listens on the TCP address addr, serving at most
// l.MaxConnections connections at once.
func Listen(addr string, l Limits) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if l.MaxConnections > 0 {
		ln = netutil.LimitListener(ln, l.MaxConnections)
	}
	return ln, nil
}

// limitBody bounds every request's body, whoever handles it.
func limitBody(h http.Handler, max int64) http.Handler {
	if max <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, max)
		h.ServeHTTP(w, r)
	})
}
