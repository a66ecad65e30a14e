package demo

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// sink is the demo's notification receiver: a local webhook endpoint that
// prints each notice as it arrives.
type sink struct {
	url string
	mu  sync.Mutex
	got []string
}

func startSink(ctx context.Context, p *printer) (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{url: "http://" + ln.Addr().String() + "/notify"}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		var e struct {
			Kind, Severity, System, Reason string
		}
		if err := json.Unmarshal(body, &e); err != nil {
			http.Error(w, "not a Rewind event", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.got = append(s.got, e.Kind)
		s.mu.Unlock()
		p.printf("NOTICE → webhook sink: %s [%s] %s", e.Kind, e.Severity, e.Reason)
		w.WriteHeader(http.StatusNoContent)
	})}
	go srv.Serve(ln)
	go func() { <-ctx.Done(); srv.Close() }()
	return s, nil
}

func (s *sink) kinds() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}
