// Package bench measures Rewind at scale on this machine: N systems of the
// built-in policy, an exporter serving their metrics, the real Prometheus
// (Debian's binary) scraping it, and `rewind serve` evaluating them for K
// cycles. It measures, in one run: Prometheus's CPU per cycle with Rewind
// and with the hand-written grouped queries of the same data (the floor),
// the queries Rewind sends per cycle, its cycle duration, its memory,
// blind systems and degraded triggers, and how long Prometheus takes to
// answer /-/ready throughout. cmd/rewind-bench is its command line.
package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/rewind-sre/rewind/policy"
)

// Options of a run.
type Options struct {
	Systems    int
	Cycles     int           // K: cycles measured, for the floor and for Rewind
	Interval   time.Duration // the policy's evaluation interval
	Scrape     time.Duration // Prometheus's scrape interval
	Rewind     string        // the rewind binary
	Prometheus string        // the prometheus binary
	Dir        string        // working directory (kept)
	Log        io.Writer     // progress
}

// Result is what one run measured. CPU is Prometheus's, in seconds per
// cycle, net of the scraping it does anyway (measured idle in the same run).
type Result struct {
	Systems            int
	Series             int
	QueriesPerCycle    float64
	PerSystemQueries   int // what one query per system and side would cost
	CPUPerCycle        float64
	FloorCPUPerCycle   float64
	IdleCPUPerInterval float64
	CycleMean          time.Duration
	CycleMaxBound      float64 // seconds: the histogram bucket that holds the longest cycle
	Overruns           float64
	RSS, PeakRSS       int64 // Rewind's, bytes: the largest sampled, and the kernel's high-water mark
	Blind              float64
	DegradedMax        float64 // triggers degraded at the worst sample
	QueryErrors        float64 // trigger evaluations degraded over the measured cycles
	ReadyMax           time.Duration
	ReadyP99           time.Duration
	NotReady           int // /-/ready probes that failed or took over 2 s
}

// Run measures one size. The child processes are stopped when it returns.
func Run(ctx context.Context, opt Options) (*Result, error) {
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(opt.Log, "%s bench %d systems: %s\n", time.Now().Format(time.TimeOnly), opt.Systems, fmt.Sprintf(format, args...))
	}
	if err := os.MkdirAll(opt.Dir, 0o750); err != nil {
		return nil, err
	}
	exp := &exporter{n: opt.Systems, perShard: 250, start: time.Now()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: exp, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	prom, err := startPrometheus(ctx, opt.Prometheus, opt.Dir, ln.Addr().String(), exp.shards(), opt.Scrape)
	if err != nil {
		return nil, err
	}
	defer prom.stop()
	logf("prometheus %s scraping %d shards every %s", prom.url, exp.shards(), opt.Scrape)
	ready := &readyProbe{url: prom.url + "/-/ready"}
	rctx, stopReady := context.WithCancel(ctx)
	defer stopReady()
	go ready.run(rctx)

	res := &Result{Systems: opt.Systems, Series: opt.Systems * 44}
	// Two scrapes of every shard, so that the policy's rates have data.
	if err := sleep(ctx, 2*opt.Scrape+5*time.Second); err != nil {
		return nil, err
	}
	logf("idle for 2 intervals")
	if res.IdleCPUPerInterval, err = idle(ctx, prom.url, opt); err != nil {
		return nil, err
	}
	logf("floor: %d hand-written grouped queries per interval, %d cycles", len(floorQueries(opt.Interval)), opt.Cycles)
	if res.FloorCPUPerCycle, err = floor(ctx, prom.url, opt); err != nil {
		return nil, err
	}
	res.FloorCPUPerCycle -= res.IdleCPUPerInterval
	if err := measureRewind(ctx, opt, prom.url, ready, res, logf); err != nil {
		return nil, err
	}
	logf("done")
	return res, nil
}

// idle is Prometheus's CPU per interval while it only scrapes.
func idle(ctx context.Context, prom string, opt Options) (float64, error) {
	cpu0, err := promCPU(prom)
	if err != nil {
		return 0, err
	}
	if err := sleep(ctx, 2*opt.Interval); err != nil {
		return 0, err
	}
	cpu1, err := promCPU(prom)
	return (cpu1 - cpu0) / 2, err
}

// measureRewind starts rewind serve on the generated policy, lets every
// batch run once, then measures K cycles into res.
func measureRewind(ctx context.Context, opt Options, prom string, ready *readyProbe, res *Result, logf func(string, ...any)) error {
	pol, perSystem, err := writePolicy(opt, prom)
	if err != nil {
		return err
	}
	res.PerSystemQueries = perSystem * opt.Systems
	logf("rewind serve on %s", pol)
	rw, err := startRewind(ctx, opt.Rewind, opt.Dir, pol)
	if err != nil {
		return err
	}
	defer rw.stop()
	// Let the first cycle of every batch run (they are spread over an interval).
	if err := sleep(ctx, opt.Interval+5*time.Second); err != nil {
		return err
	}
	ready.reset()
	before, err := scrape(rw.url + "/metrics")
	if err != nil {
		return fmt.Errorf("rewind /metrics: %w", err)
	}
	cpu0, _ := promCPU(prom)
	logf("measuring %d cycles", opt.Cycles)
	if err := sample(ctx, opt, rw, res); err != nil {
		return err
	}
	cpu1, _ := promCPU(prom)
	after, err := scrape(rw.url + "/metrics")
	if err != nil {
		return err
	}
	_, res.PeakRSS = rss(rw.cmd.Process.Pid)
	k := float64(opt.Cycles)
	delta := func(name string) float64 { return sum(after, name, nil) - sum(before, name, nil) }
	res.CPUPerCycle = (cpu1-cpu0)/k - res.IdleCPUPerInterval
	res.QueriesPerCycle = delta("rewind_prometheus_queries_total") / k
	res.QueryErrors = delta("rewind_query_errors_total")
	res.Overruns = delta("rewind_cycle_overruns_total")
	res.Blind = max(res.Blind, sum(after, "rewind_system_blind", nil))
	res.DegradedMax = max(res.DegradedMax, sum(after, "rewind_trigger_state", map[string]string{"state": "degraded"}))
	n, total, bound := histogramDelta(before, after, "rewind_cycle_duration_seconds")
	if n > 0 {
		res.CycleMean = time.Duration(total / float64(n) * float64(time.Second))
	}
	res.CycleMaxBound = bound
	res.ReadyMax, res.ReadyP99, res.NotReady = ready.stats()
	return nil
}

// sample follows Rewind for K cycles: its RSS every second, its blind
// systems and degraded triggers once a cycle (its /metrics is large at
// 10 000 systems).
func sample(ctx context.Context, opt Options, rw *process, res *Result) error {
	deadline := time.Now().Add(time.Duration(opt.Cycles) * opt.Interval)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for n := 0; time.Now().Before(deadline); n++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-rw.Exited():
			return fmt.Errorf("rewind serve exited: %v", rw.Err())
		case <-tick.C:
		}
		now, _ := rss(rw.cmd.Process.Pid)
		res.RSS = max(res.RSS, now)
		if n%int(max(opt.Interval/time.Second, 1)) == 0 {
			if m, err := scrape(rw.url + "/metrics"); err == nil {
				res.Blind = max(res.Blind, sum(m, "rewind_system_blind", nil))
				res.DegradedMax = max(res.DegradedMax, sum(m, "rewind_trigger_state", map[string]string{"state": "degraded"}))
			}
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// promCPU reads Prometheus's own process_cpu_seconds_total.
func promCPU(base string) (float64, error) {
	m, err := scrape(base + "/metrics")
	if err != nil {
		return 0, err
	}
	return sum(m, "process_cpu_seconds_total", nil), nil
}

// floor sends the hand-written grouped queries once per interval for K
// cycles and returns Prometheus's CPU per cycle (scraping included).
func floor(ctx context.Context, base string, opt Options) (float64, error) {
	cpu0, err := promCPU(base)
	if err != nil {
		return 0, err
	}
	c := http.Client{Timeout: opt.Interval}
	for i := range opt.Cycles {
		began := time.Now()
		var wg sync.WaitGroup
		qs := floorQueries(opt.Interval)
		errs := make(chan error, len(qs))
		for _, q := range qs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := c.PostForm(base+"/api/v1/query", url.Values{"query": {q}, "time": {fmt.Sprint(time.Now().Unix())}})
				if err != nil {
					errs <- err
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("floor query %s: HTTP %d", q, resp.StatusCode)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			return 0, err
		}
		if i < opt.Cycles-1 {
			if err := sleep(ctx, opt.Interval-time.Since(began)); err != nil {
				return 0, err
			}
		}
	}
	if err := sleep(ctx, 2*time.Second); err != nil { // the last answers' accounting
		return 0, err
	}
	cpu1, err := promCPU(base)
	if err != nil {
		return 0, err
	}
	// The window is K-1 intervals and the last cycle: count it as K intervals
	// of scraping, the idle share subtracted by the caller.
	return (cpu1 - cpu0) / float64(opt.Cycles), nil
}

// writePolicy writes the built-in policy copied for every system, with
// selectors system="sI",version="canary|baseline", reading prom.
func writePolicy(opt Options, prom string) (string, int, error) {
	def := string(policy.Default())
	head, sys, ok := strings.Cut(def, "systems:\n")
	if !ok {
		return "", 0, fmt.Errorf("the built-in policy has no systems")
	}
	sys = strings.Replace(sys, "url: http://prometheus:9090", "url: "+prom, 1)
	sys = strings.Replace(sys, "interval: 30s", "interval: "+policy.Duration(opt.Interval).String(), 1)
	// No cluster here: the rollback steps are commands that do nothing, and
	// the canaries are healthy.
	sys = strings.Replace(sys, "      mode: automatic\n", "      mode: notify-only\n      exec: { drain: { command: [/bin/true] }, undo: { command: [/bin/true] } }\n", 1)
	sys = strings.Replace(sys, "      kubernetes: { namespace: dwcp, deployment: dwcp-canary, scaleToZero: true }\n", "", 1)
	sys = strings.Replace(sys, "      istio: { virtualService: dwcp-service, baselineHost: dwcp-baseline }\n", "", 1)
	var b strings.Builder
	b.WriteString(head + "systems:\n")
	for i := range opt.Systems {
		s := strings.Replace(sys, "name: dwcp-manager", fmt.Sprintf("name: s%d", i), 1)
		s = strings.Replace(s, `selector: 'version="canary"'`, fmt.Sprintf(`selector: 'system="s%d",version="canary"'`, i), 1)
		s = strings.Replace(s, `selector: 'version="baseline"'`, fmt.Sprintf(`selector: 'system="s%d",version="baseline"'`, i), 1)
		b.WriteString(s)
	}
	file := filepath.Join(opt.Dir, "policy.yaml")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		return "", 0, err
	}
	p, err := policy.Parse("default.yaml", policy.Default())
	if err != nil {
		return "", 0, err
	}
	return file, len(p.Systems[0].Queries()), nil
}

// histogramDelta is the count, sum and the smallest bucket bound holding
// every observation of a histogram between two scrapes.
func histogramDelta(before, after map[string]*dto.MetricFamily, name string) (uint64, float64, float64) {
	h := func(m map[string]*dto.MetricFamily) *dto.Histogram {
		if f := m[name]; f != nil && len(f.Metric) > 0 {
			return f.Metric[0].Histogram
		}
		return nil
	}
	a, b := h(before), h(after)
	if b == nil {
		return 0, 0, 0
	}
	if a == nil {
		a = &dto.Histogram{}
	}
	n := b.GetSampleCount() - a.GetSampleCount()
	bound := math.Inf(1)
	for i, bb := range b.Bucket {
		var prev uint64
		if i < len(a.Bucket) {
			prev = a.Bucket[i].GetCumulativeCount()
		}
		if bb.GetCumulativeCount()-prev == n {
			bound = bb.GetUpperBound()
			break
		}
	}
	return n, b.GetSampleSum() - a.GetSampleSum(), bound
}

// readyProbe asks Prometheus's /-/ready every second and keeps how long
// it took.
type readyProbe struct {
	url     string
	mu      sync.Mutex
	samples []time.Duration
	failed  int
}

func (r *readyProbe) run(ctx context.Context) {
	c := http.Client{Timeout: 10 * time.Second}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		began := time.Now()
		resp, err := c.Get(r.url)
		took := time.Since(began)
		if err == nil {
			resp.Body.Close()
		}
		r.mu.Lock()
		r.samples = append(r.samples, took)
		if err != nil || resp.StatusCode != http.StatusOK || took > 2*time.Second {
			r.failed++
		}
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *readyProbe) reset() {
	r.mu.Lock()
	r.samples, r.failed = nil, 0
	r.mu.Unlock()
}

func (r *readyProbe) stats() (maxD, p99 time.Duration, failed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := slices.Clone(r.samples)
	if len(s) == 0 {
		return 0, 0, r.failed
	}
	slices.Sort(s)
	return s[len(s)-1], s[min(len(s)-1, len(s)*99/100)], r.failed
}

// Header and Row print results as a Markdown table.
const Header = "| systems | series | queries/cycle (per-system would be) | Prometheus CPU/cycle | grouped floor CPU/cycle | ratio | cycle mean / max | overruns | Rewind RSS max (peak) | blind | degraded (max / evaluations) | /-/ready max (p99) |\n" +
	"|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"

func (r *Result) Row() string {
	ratio := "—"
	if r.FloorCPUPerCycle > 0 {
		ratio = fmt.Sprintf("%.2f×", r.CPUPerCycle/r.FloorCPUPerCycle)
	}
	maxCycle := fmt.Sprintf("≤ %gs", r.CycleMaxBound)
	if math.IsInf(r.CycleMaxBound, 1) {
		maxCycle = "> 60s"
	}
	return fmt.Sprintf("| %d | %d | %.1f (%d) | %.3f s | %.3f s | %s | %s / %s | %g | %.0f MiB (%.0f MiB) | %g | %g / %g | %s (%s) |",
		r.Systems, r.Series, r.QueriesPerCycle, r.PerSystemQueries, r.CPUPerCycle, r.FloorCPUPerCycle, ratio,
		r.CycleMean.Round(time.Millisecond), maxCycle, r.Overruns, float64(r.RSS)/(1<<20), float64(r.PeakRSS)/(1<<20),
		r.Blind, r.DegradedMax, r.QueryErrors, r.ReadyMax.Round(time.Millisecond), r.ReadyP99.Round(time.Millisecond))
}
