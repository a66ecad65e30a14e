package service

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"time"
)

// latencyCap bounds a drawn latency, in medians.
const latencyCap = 10

// Response headers naming who answered, for the router's and the tests'
// accounting.
const (
	HeaderVersion = "X-Version"
	HeaderRelease = "X-Release"
)

// serveWork answers one request: it spends a latency drawn around the
// median (×3 under FaultLatency) and fails with the current error rate.
// The time is spent waiting, not computing, and a request whose client
// goes away is abandoned: nothing is answered, counted or logged.
func (s *Service) serveWork(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	p := s.cur.Load()
	latency, fail := s.draw(p.beh)
	if err := wait(r.Context(), latency); err != nil {
		return
	}
	status := http.StatusOK
	if fail {
		status = http.StatusInternalServerError
	}
	w.Header().Set(HeaderVersion, s.cfg.Version)
	w.Header().Set(HeaderRelease, p.release)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	if fail {
		fmt.Fprintf(w, "internal error (%s %s)\n", s.cfg.Version, p.release)
	} else {
		fmt.Fprintf(w, "ok (%s %s)\n", s.cfg.Version, p.release)
	}
	took := time.Since(arrived)
	p.m.requests[status].Inc()
	p.m.duration.Observe(took.Seconds())
	s.log.add(Request{At: arrived, Method: r.Method, Path: r.URL.Path, Status: status, Duration: took, Release: p.release, Fault: p.fault})
}

// draw returns a request's latency and whether it fails.
func (s *Service) draw(b behaviour) (time.Duration, bool) {
	s.rndMu.Lock()
	z, u := s.rnd.NormFloat64(), s.rnd.Float64()
	s.rndMu.Unlock()
	median := float64(s.cfg.Median) * b.latency
	d := median * math.Min(math.Exp(s.cfg.Sigma*z), latencyCap)
	return time.Duration(d), u < b.errorRate
}

// workingSet draws the working set in bytes: the behaviour's share of the
// limit, ±1 %.
func (s *Service) workingSet(b behaviour) float64 {
	s.rndMu.Lock()
	u := s.rnd.Float64()
	s.rndMu.Unlock()
	return s.cfg.MemoryLimit * b.memoryShare * (1 + 0.02*(u-0.5))
}

// wait waits d, or until ctx ends.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
