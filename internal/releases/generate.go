package releases

import (
	"bufio"
	"bytes"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/rewind-sre/rewind/internal/draw"
)

// Truth is the exact request counts behind a generated history, per
// service and revision, cumulative at every scrape.
type Truth map[string]map[string][]Count // service → revision → counts

// Count is one revision's cumulative requests at one scrape.
type Count struct {
	T        time.Time
	Requests float64
	Errors   float64
	Buckets  []float64 // cumulative per Buckets bound, then +Inf (= Requests)
}

// Between returns the requests, errors and cumulative buckets of a service's
// revision in (from, to].
func (tr Truth) Between(service, revision string, from, to time.Time) Count {
	var a, b Count
	for _, c := range tr[service][revision] {
		if !c.T.After(from) {
			a = c
		}
		if !c.T.After(to) {
			b = c
		}
	}
	out := Count{T: to, Requests: b.Requests - a.Requests, Errors: b.Errors - a.Errors, Buckets: make([]float64, len(Buckets)+1)}
	for i := range out.Buckets {
		if i < len(b.Buckets) {
			out.Buckets[i] = b.Buckets[i]
		}
		if i < len(a.Buckets) {
			out.Buckets[i] -= a.Buckets[i]
		}
	}
	return out
}

// Generate returns the history as OpenMetrics text, and its exact counts.
func Generate(h History) ([]byte, Truth, error) {
	var b bytes.Buffer
	tr, err := Write(&b, h)
	return b.Bytes(), tr, err
}

// Write writes the history as OpenMetrics text with timestamps, ending in
// # EOF, and returns its exact counts.
func Write(w io.Writer, h History) (Truth, error) {
	if err := h.defaults(); err != nil {
		return nil, err
	}
	g := &gen{h: &h, rng: rand.New(rand.NewPCG(h.Seed, 0x7e1ea5e)), series: map[string]*series{}, pods: map[string]*pod{}, truth: Truth{}}
	var prev time.Time
	for _, t := range h.scrapes() {
		dt := h.Scrape
		if !prev.IsZero() && t.Sub(prev) < dt {
			dt = t.Sub(prev)
		}
		for i := range h.Services {
			g.scrape(&h.Services[i], t, dt, !prev.IsZero() && t.Sub(prev) <= h.Scrape)
		}
		prev = t
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	g.write(bw)
	bw.WriteString("# EOF\n")
	return g.truth, bw.Flush()
}

// scrapes lists the scrape times of every span, in order, without repeats.
func (h *History) scrapes() []time.Time {
	type span struct{ from, to time.Time }
	spans := []span{{h.Start.Add(-h.Before), h.Start.Add(h.Duration)}}
	for _, s := range h.Seasons {
		spans = append(spans, span{h.Start.Add(-h.Before - s - h.SeasonMargin), h.Start.Add(h.Duration - s + h.SeasonMargin)})
	}
	seen := map[int64]bool{}
	var out []time.Time
	for _, sp := range spans {
		first := sp.from.Truncate(h.Scrape).Add(h.Offset)
		for t := first; !t.After(sp.to); t = t.Add(h.Scrape) {
			if !seen[t.UnixMilli()] {
				seen[t.UnixMilli()] = true
				out = append(out, t)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

type gen struct {
	h      *History
	rng    *rand.Rand
	series map[string]*series
	order  []*series
	pods   map[string]*pod
	truth  Truth
}

type series struct {
	family, typ, text string
	samples           []sample
}

type sample struct {
	ms int64
	v  float64
}

type pod struct {
	ok, errs, sum float64
	buckets       []float64 // per bucket, +Inf last (not cumulative)
}

// replicaSet is one revision's ReplicaSet at some instant.
type replicaSet struct {
	hash    string
	created time.Time
	pods    []int // pod indices serving now
	release *Release
}

// replicaSets lists a service's ReplicaSets created by t, with the pods
// that serve at t. Releases are rolling updates one after the other: each
// replaces the pods of the revision before it.
func (s *Service) replicaSets(t, initialCreated time.Time) []replicaSet {
	out := []replicaSet{{hash: s.Initial, created: initialCreated, pods: seq(0, s.Replicas)}}
	for k := range s.Releases {
		r := &s.Releases[k]
		if t.Before(r.At) {
			break
		}
		n := min(s.Replicas, 1+int(t.Sub(r.At)/r.Step))
		out[len(out)-1].pods = seq(n, s.Replicas)
		out = append(out, replicaSet{hash: r.Hash, created: r.At, release: r, pods: seq(0, n)})
	}
	return out
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func (g *gen) scrape(s *Service, t time.Time, dt time.Duration, continuous bool) {
	rss := s.replicaSets(t, g.h.Start.Add(-s.InitialAge))
	alive := 0
	for _, rs := range rss {
		alive += len(rs.pods)
	}
	rps, baseErr, p50 := s.Profile.at(t)
	incErr, incLat := s.incident(t)
	for _, rs := range rss {
		if !s.NoKSM && (rs.release == nil || !rs.release.NoKSM) {
			g.ksm(s, rs, t)
		}
		errRate, lat := baseErr, p50*incLat
		if r := rs.release; r != nil && !t.Before(r.EffectAt()) {
			if r.ErrorRate > 0 {
				errRate = r.ErrorRate
			}
			if r.LatencyFactor > 0 {
				lat *= r.LatencyFactor
			}
		}
		errRate = min(1, max(errRate, incErr))
		tc := g.truthOf(s.Name, rs.hash, t)
		for _, j := range rs.pods {
			name := s.Name + "-" + rs.hash + "-" + strconv.Itoa(j)
			p := g.pods[name]
			fresh := p == nil // a new pod is scraped first with its counters at 0
			if fresh {
				p = &pod{buckets: make([]float64, len(Buckets)+1)}
				g.pods[name] = p
			}
			if continuous && alive > 0 && !fresh {
				g.advance(p, rps/float64(alive)*dt.Seconds(), errRate, lat, s.Profile.LatencyCV, tc)
			}
			g.podSeries(s, rs.hash, name, p, t)
		}
	}
}

func (g *gen) truthOf(service, hash string, t time.Time) *Count {
	m := g.truth[service]
	if m == nil {
		m = map[string][]Count{}
		g.truth[service] = m
	}
	cs := m[hash]
	c := Count{T: t, Buckets: make([]float64, len(Buckets)+1)}
	if n := len(cs); n > 0 {
		last := cs[n-1]
		c.Requests, c.Errors = last.Requests, last.Errors
		copy(c.Buckets, last.Buckets)
	}
	m[hash] = append(cs, c)
	return &m[hash][len(m[hash])-1]
}

// advance draws one scrape interval of a pod's requests.
func (g *gen) advance(p *pod, mean, errRate, p50, cv float64, tc *Count) {
	n := draw.Poisson(g.rng, mean)
	e := draw.Binomial(g.rng, n, errRate)
	p.ok += n - e
	p.errs += e
	tc.Requests += n
	tc.Errors += e
	left, prevCDF := n, 0.0
	for i, ub := range Buckets {
		cdf := lognormalCDF(ub, p50, cv)
		k := 0.0
		if prevCDF < 1 {
			k = draw.Binomial(g.rng, left, min(1, (cdf-prevCDF)/(1-prevCDF)))
		}
		p.buckets[i] += k
		p.sum += k * math.Min(ub, p50*2) // an approximation; the judge reads buckets only
		left -= k
		prevCDF = cdf
		for j := i; j < len(tc.Buckets); j++ {
			tc.Buckets[j] += k
		}
	}
	p.buckets[len(Buckets)] += left
	p.sum += left * Buckets[len(Buckets)-1] * 2
	tc.Buckets[len(Buckets)] += left
}

func (g *gen) ksm(s *Service, rs replicaSet, t time.Time) {
	name := s.Name + "-" + rs.hash
	owner := `{namespace="` + s.Namespace + `",owner_is_controller="true",owner_kind="Deployment",owner_name="` + s.Name + `",replicaset="` + name + `"}`
	lbl := `{namespace="` + s.Namespace + `",replicaset="` + name + `"}`
	g.add("kube_replicaset_owner", "gauge", "kube_replicaset_owner"+owner, t, 1)
	g.add("kube_replicaset_created", "gauge", "kube_replicaset_created"+lbl, t, float64(rs.created.Unix()))
	g.add("kube_replicaset_spec_replicas", "gauge", "kube_replicaset_spec_replicas"+lbl, t, float64(len(rs.pods)))
}

func (g *gen) podSeries(s *Service, hash, name string, p *pod, t time.Time) {
	base := `app="` + s.Name + `",namespace="` + s.Namespace + `",pod="` + name + `",pod_template_hash="` + hash + `"`
	g.add("http_requests", "counter", `http_requests_total{`+base+`,status="200"}`, t, p.ok)
	g.add("http_requests", "counter", `http_requests_total{`+base+`,status="500"}`, t, p.errs)
	acc := 0.0
	for i, ub := range Buckets {
		acc += p.buckets[i]
		g.add("http_request_duration_seconds", "histogram", `http_request_duration_seconds_bucket{`+base+`,le="`+strconv.FormatFloat(ub, 'g', -1, 64)+`"}`, t, acc)
	}
	acc += p.buckets[len(Buckets)]
	g.add("http_request_duration_seconds", "histogram", `http_request_duration_seconds_bucket{`+base+`,le="+Inf"}`, t, acc)
	g.add("http_request_duration_seconds", "histogram", `http_request_duration_seconds_count{`+base+`}`, t, acc)
	g.add("http_request_duration_seconds", "histogram", `http_request_duration_seconds_sum{`+base+`}`, t, p.sum)
}

func (g *gen) add(family, typ, text string, t time.Time, v float64) {
	s := g.series[text]
	if s == nil {
		s = &series{family: family, typ: typ, text: text}
		g.series[text] = s
		g.order = append(g.order, s)
	}
	s.samples = append(s.samples, sample{t.UnixMilli(), v})
}

// write prints every family's series together, each family once with its type.
func (g *gen) write(w *bufio.Writer) {
	var families []string
	byFamily := map[string][]*series{}
	for _, s := range g.order {
		if _, ok := byFamily[s.family]; !ok {
			families = append(families, s.family)
		}
		byFamily[s.family] = append(byFamily[s.family], s)
	}
	for _, f := range families {
		ss := byFamily[f]
		w.WriteString("# TYPE " + f + " " + ss[0].typ + "\n")
		for _, s := range ss {
			for _, x := range s.samples {
				w.WriteString(s.text)
				w.WriteByte(' ')
				w.WriteString(strconv.FormatFloat(x.v, 'g', -1, 64))
				w.WriteByte(' ')
				w.WriteString(strconv.FormatFloat(float64(x.ms)/1000, 'f', -1, 64))
				w.WriteByte('\n')
			}
		}
	}
}
