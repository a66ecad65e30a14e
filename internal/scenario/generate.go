package scenario

import (
	"bufio"
	"bytes"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/rewind-sre/rewind/internal/draw"
)

// Generate returns the history as OpenMetrics text.
func Generate(c Config) ([]byte, error) {
	var b bytes.Buffer
	err := Write(&b, c)
	return b.Bytes(), err
}

// Write writes the history as OpenMetrics text with timestamps, ending in # EOF.
func Write(w io.Writer, c Config) error { return WriteAll(w, []Config{c}) }

// WriteAll writes the histories of several systems into one OpenMetrics
// text, each family's series together (set Config.Labels to tell the
// systems apart).
func WriteAll(w io.Writer, cs []Config) error {
	var insts []*instance
	var series [][]point
	for i := range cs {
		in, s, err := cs[i].simulate()
		if err != nil {
			return err
		}
		insts, series = append(insts, in...), append(series, s...)
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	writeFamilies(bw, insts, series)
	bw.WriteString("# EOF\n")
	return bw.Flush()
}

// simulate draws the history of every instance of c.
func (c *Config) simulate() ([]*instance, [][]point, error) {
	if err := c.validate(); err != nil {
		return nil, nil, err
	}
	rng := rand.New(rand.NewPCG(c.Seed, 0x5eed))
	extra := ""
	for _, k := range slices.Sorted(maps.Keys(c.Labels)) {
		extra += "," + k + "=" + strconv.Quote(c.Labels[k])
	}
	var insts []*instance
	var sides []Side
	add := func(version string, s Side) {
		for i := 0; i < s.Instances; i++ {
			insts = append(insts, &instance{version: version, name: version + "-" + strconv.Itoa(i), extra: extra, buckets: make([]float64, len(Buckets)+1)})
			sides = append(sides, s)
		}
	}
	add("baseline", c.Baseline)
	if !c.NoCanary {
		add("canary", c.Canary)
	}
	steps := int(c.Duration / c.Scrape)
	series := make([][]point, len(insts))
	for k := 0; k <= steps; k++ {
		t := c.Start.Add(time.Duration(k) * c.Scrape)
		if c.Fault.Kind == FaultGap && c.Fault.active(t) {
			continue
		}
		for i, in := range insts {
			s := sides[i]
			if in.version == "canary" {
				if t.Before(c.CanaryFrom) {
					continue
				}
				s = c.faulty(s, t, in)
			}
			if k > 0 && (in.version != "canary" || t.After(c.CanaryFrom)) {
				in.advance(rng, s, c.Scrape.Seconds())
			}
			series[i] = append(series[i], in.snapshot(t, s))
		}
	}
	return insts, series, nil
}

// faulty applies the fault to the canary's parameters at t.
func (c *Config) faulty(s Side, t time.Time, in *instance) Side {
	f := c.Fault
	if !f.active(t) {
		return s
	}
	switch f.Kind {
	case FaultErrorRate:
		s.ErrorRate = f.value(0.10)
	case FaultSuccessRate:
		s.ErrorRate = f.value(0.08)
	case FaultErrorBump:
		s.ErrorRate = f.value(0.20)
	case FaultLatency:
		s.LatencyP50 *= f.value(3)
	case FaultLatencySpread:
		// The q-quantile of a lognormal is P50·exp(z_q·σ): widening σ by
		// ln(k)/z_0.99 multiplies the p99 by k and keeps the median.
		s.LatencyCV += math.Log(f.value(3)) / z99
	case FaultSparseErrors:
		if s.RPS > 0 {
			s.ErrorRate = min(f.value(1)/(60*s.RPS), 1)
		}
	case FaultThroughput:
		s.TxPerSec *= f.value(0.3)
	case FaultNoTraffic:
		s.RPS, s.TxPerSec = 0, 0
	case FaultMemory:
		s.MemoryFrac = f.value(0.97)
	case FaultByzantine:
		if in.byz == 0 && in.pendingByz == 0 {
			in.pendingByz = f.value(1)
		}
	case FaultDAGCorruption:
		in.pendingDagErrs += f.value(3)
	case FaultCircuitBreaker:
		in.trips += f.value(5) // per scrape: 20 a minute at 15 s
	}
	return s
}

// z99 is the standard normal 0.99-quantile.
const z99 = 2.3263478740408408

// advance draws one scrape interval of traffic for the instance.
func (in *instance) advance(rng *rand.Rand, s Side, sec float64) {
	per := float64(max(s.Instances, 1))
	n := draw.Poisson(rng, s.RPS/per*sec)
	e := draw.Binomial(rng, n, s.ErrorRate)
	in.ok += n - e
	in.errs += e
	mu := math.Log(max(s.LatencyP50, 1e-6))
	for j := 0.0; j < n; j++ {
		l := math.Exp(mu + s.LatencyCV*rng.NormFloat64())
		in.sum += l
		b := len(Buckets)
		for bi, ub := range Buckets {
			if l <= ub {
				b = bi
				break
			}
		}
		in.buckets[b]++
	}
	in.tx += draw.Poisson(rng, s.TxPerSec*sec)
	in.byz += in.pendingByz
	in.dag += in.pendingDagErrs
	in.pendingByz, in.pendingDagErrs = 0, 0
	in.memFrac = s.MemoryFrac + 0.01*rng.NormFloat64()
}

func (in *instance) snapshot(t time.Time, s Side) point {
	if in.memFrac == 0 {
		in.memFrac = s.MemoryFrac
	}
	p := point{t: t, ok: in.ok, err: in.errs, sum: in.sum, tx: in.tx, byz: in.byz, dag: in.dag, trips: in.trips, memWS: math.Round(in.memFrac * memLimit)}
	p.cum = make([]float64, len(in.buckets))
	acc := 0.0
	for i, b := range in.buckets {
		acc += b
		p.cum[i] = acc
	}
	p.count = acc
	return p
}

func writeFamilies(w *bufio.Writer, insts []*instance, series [][]point) {
	type fam struct {
		name, typ, sample string
		extra             string
		value             func(p point) float64
	}
	counters := []fam{
		{"http_requests", "counter", "http_requests_total", `status="200"`, func(p point) float64 { return p.ok }},
		{"http_requests", "", "http_requests_total", `status="500"`, func(p point) float64 { return p.err }},
		{"bullshark_transactions_processed", "counter", "bullshark_transactions_processed_total", "", func(p point) float64 { return p.tx }},
		{"probft_byzantine_events_detected", "gauge", "probft_byzantine_events_detected", "", func(p point) float64 { return p.byz }},
		{"bullshark_dag_validation_errors", "gauge", "bullshark_dag_validation_errors", "", func(p point) float64 { return p.dag }},
		{"dwcp_circuit_breaker_trips", "counter", "dwcp_circuit_breaker_trips_total", "", func(p point) float64 { return p.trips }},
		{"container_memory_working_set_bytes", "gauge", "container_memory_working_set_bytes", `container="dwcp"`, func(p point) float64 { return p.memWS }},
		{"container_spec_memory_limit_bytes", "gauge", "container_spec_memory_limit_bytes", `container="dwcp"`, func(p point) float64 { return memLimit }},
	}
	for _, f := range counters {
		if f.typ != "" {
			w.WriteString("# TYPE " + f.name + " " + f.typ + "\n")
		}
		for i, in := range insts {
			lbl := labels(in, f.extra)
			for _, p := range series[i] {
				sample(w, f.sample, lbl, f.value(p), p.t)
			}
		}
	}
	w.WriteString("# TYPE http_request_duration_seconds histogram\n")
	for i, in := range insts {
		lbl := labels(in, "")
		for _, p := range series[i] {
			for bi, ub := range Buckets {
				sample(w, "http_request_duration_seconds_bucket", lbl[:len(lbl)-1]+`,le="`+strconv.FormatFloat(ub, 'g', -1, 64)+`"}`, p.cum[bi], p.t)
			}
			sample(w, "http_request_duration_seconds_bucket", lbl[:len(lbl)-1]+`,le="+Inf"}`, p.count, p.t)
			sample(w, "http_request_duration_seconds_count", lbl, p.count, p.t)
			sample(w, "http_request_duration_seconds_sum", lbl, p.sum, p.t)
		}
	}
}

func labels(in *instance, extra string) string {
	s := `{instance="` + in.name + `",version="` + in.version + `"` + in.extra
	if extra != "" {
		s += "," + extra
	}
	return s + "}"
}

func sample(w *bufio.Writer, name, lbl string, v float64, t time.Time) {
	w.WriteString(name)
	w.WriteString(lbl)
	w.WriteByte(' ')
	w.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	w.WriteByte(' ')
	w.WriteString(strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64))
	w.WriteByte('\n')
}
