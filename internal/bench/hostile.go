package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// HostileModes are the answers of a broken or hostile Prometheus-compatible
// endpoint that Rewind must survive without a rollback, a crash or its
// memory growing: every query answered with +Inf, NaN, a gigabyte of one
// string, a gigabyte of samples, or nothing at all (until the client gives
// up).
var HostileModes = []string{"+Inf", "NaN", "1GiB-string", "1GiB-of-samples", "silent"}

// HostileResult is what one mode did to `rewind serve`.
type HostileResult struct {
	Mode      string
	Cycles    int
	Rollbacks float64 // rewind_rollbacks_total
	Panics    float64 // rewind_panics_total
	Exited    bool    // the process ended by itself
	RSS, Peak int64
	Blind     float64
	Degraded  float64
}

// Hostile runs `rewind serve` with opt.Systems systems of the built-in
// policy against an endpoint answering in mode, for opt.Cycles cycles.
func Hostile(ctx context.Context, opt Options, mode string) (*HostileResult, error) {
	if err := os.MkdirAll(opt.Dir, 0o750); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: hostileHandler(mode, opt.Systems), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	pol, _, err := writePolicy(opt, "http://"+ln.Addr().String())
	if err != nil {
		return nil, err
	}
	rw, err := startRewind(ctx, opt.Rewind, opt.Dir, pol)
	if err != nil {
		return nil, err
	}
	defer rw.stop()
	res := &HostileResult{Mode: mode, Cycles: opt.Cycles}
	deadline := time.Now().Add(time.Duration(opt.Cycles) * opt.Interval)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-rw.Exited():
			res.Exited = true
			return res, nil
		case <-t.C:
		}
		now, _ := rss(rw.cmd.Process.Pid)
		res.RSS = max(res.RSS, now)
	}
	_, res.Peak = rss(rw.cmd.Process.Pid)
	m, err := scrape(rw.url + "/metrics")
	if err != nil {
		return nil, err
	}
	res.Rollbacks = sum(m, "rewind_rollbacks_total", nil)
	res.Panics = sum(m, "rewind_panics_total", nil)
	res.Blind = sum(m, "rewind_system_blind", nil)
	res.Degraded = sum(m, "rewind_trigger_state", map[string]string{"state": "degraded"})
	return res, nil
}

func hostileHandler(mode string, n int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm() // so that a client hanging up ends r.Context()
		w.Header().Set("Content-Type", "application/json")
		switch mode {
		case "+Inf", "NaN":
			// Every member of every grouped query, with the value.
			var b strings.Builder
			b.WriteString(`{"status":"success","data":{"resultType":"vector","result":[`)
			for i := range n {
				for _, side := range []string{"canary", "baseline"} {
					if i > 0 || side == "baseline" {
						b.WriteByte(',')
					}
					fmt.Fprintf(&b, `{"metric":{"system":"s%d","version":"%s"},"value":[%d,"%s"]}`, i, side, time.Now().Unix(), mode)
				}
			}
			b.WriteString(`]}}`)
			_, _ = io.WriteString(w, b.String())
		case "1GiB-string":
			_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"system":"`)
			chunk := strings.Repeat("x", 1<<20)
			for range 1 << 10 {
				if _, err := io.WriteString(w, chunk); err != nil {
					return
				}
			}
		case "1GiB-of-samples":
			_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[`)
			for i := 0; i < 12<<20; i++ {
				if _, err := fmt.Fprintf(w, `{"metric":{"system":"s%d","version":"canary","pod":"p%d"},"value":[1,"1"]},`, i%n, i); err != nil {
					return
				}
			}
		case "silent":
			<-r.Context().Done()
		}
	}
}

// HostileHeader and Row print hostile results as a Markdown table.
const HostileHeader = "| Prometheus answers | cycles | rollbacks | panics | process | Rewind RSS max (peak) | blind | degraded triggers |\n|---|---:|---:|---:|---|---:|---:|---:|"

func (r *HostileResult) Row() string {
	alive := "running"
	if r.Exited {
		alive = "EXITED"
	}
	return fmt.Sprintf("| %s | %d | %g | %g | %s | %.0f MiB (%.0f MiB) | %g | %g |", r.Mode, r.Cycles, r.Rollbacks, r.Panics, alive,
		float64(r.RSS)/(1<<20), float64(r.Peak)/(1<<20), r.Blind, r.Degraded)
}

// HostileDir is where a mode's files go.
func HostileDir(dir, mode string) string {
	return filepath.Join(dir, "hostile-"+strings.Trim(mode, "+"))
}
