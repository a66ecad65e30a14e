package ui

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
)

// The charts cover the last chartWindow at chartPoints points; a system
// with less history than a quarter of the window is charted over what it
// has, at a finer step (the demo's minute, a new canary).
const (
	chartWindow      = time.Hour
	chartPoints      = 240
	minChartStep     = time.Second
	chartQueries     = 4                // range queries in flight for one page
	maxRangeQueries  = 8                // range queries in flight for the whole UI
	chartTimeout     = 10 * time.Second // for all of a page's range queries
	bisectIterations = 30
)

// side is how one side (canary or baseline) of a chart is read.
type side struct {
	query   string // one PromQL (plain and quantile)
	bad     string // ratio: bad / total
	total   string
	reduce  reduceFn
	present bool
}

type reduceFn func(a, b float64) float64

func maxOf(a, b float64) float64 { return math.Max(a, b) }
func minOf(a, b float64) float64 { return math.Min(a, b) }

// chartSpec is what a trigger's chart shows: the canary and the baseline,
// and the line the canary is held against, on its alerting side (above or
// below): a constant (a ceiling, an alert's threshold), the baseline times a
// factor (the judge's minEffect), or the boundary of a CEL condition, found
// numerically at each instant from the baseline's value there.
type chartSpec struct {
	canary, baseline side
	unit             unit
	constant         *float64
	factor           float64
	boundary         *policy.Trigger
	above            bool
	label            string // what the line is
}

// specOf describes the chart of a trigger; ok is false for a probe (no metrics).
func specOf(t *policy.Trigger, sys *policy.System) (chartSpec, bool) {
	s := chartSpec{unit: unitOf(t)}
	swap := func(q string) string { return swapSelector(q, sys) }
	switch t.Form {
	case policy.FormQuery, policy.FormExplicit:
		s.canary = side{query: t.Canary, reduce: maxOf, present: true}
		s.baseline = side{query: t.Baseline, reduce: maxOf, present: t.Baseline != ""}
		s.boundary, s.label = t, t.Condition
	case policy.FormExpr:
		q, reduce := t.Expr, maxOf
		if a := t.Alert; a != nil {
			q = a.Vector
			below := a.Op == "<" || a.Op == "<="
			if below {
				reduce = minOf
			}
			if a.Op != "==" && a.Op != "!=" {
				s.constant, s.above, s.label = rewind.Float(a.Threshold), !below, a.Op+" "+plain(a.Threshold)
			}
		}
		s.canary = side{query: q, reduce: reduce, present: true}
		if b := swap(q); b != "" {
			s.baseline = side{query: b, reduce: reduce, present: true}
		}
	case policy.FormJudge:
		specJudge(&s, t.Judge, swap)
	default:
		return s, false
	}
	return s, true
}

func specJudge(s *chartSpec, j *policy.Judge, swap func(string) string) {
	if j.Test == "latency" {
		q := func(b string) string {
			return "histogram_quantile(" + strconv.FormatFloat(j.Quantile, 'g', -1, 64) + ", " + b + ")"
		}
		s.canary = side{query: q(j.Canary.Buckets), reduce: maxOf, present: true}
		s.baseline = side{query: q(j.Baseline.Buckets), reduce: maxOf, present: j.Baseline.Buckets != ""}
	} else {
		s.canary = side{bad: j.Canary.Bad, total: j.Canary.Total, present: true}
		bad, total := j.Baseline.Bad, j.Baseline.Total
		if total == "" { // one-sample test: the baseline is shown for context
			bad, total = swap(j.Canary.Bad), swap(j.Canary.Total)
		}
		s.baseline = side{bad: bad, total: total, present: total != ""}
	}
	switch {
	case j.Above != nil:
		s.constant, s.above, s.label = rewind.Float(*j.Above), true, "ceiling "+s.unit.format(*j.Above)
	case j.Direction == "decrease":
		s.factor, s.above, s.label = 1/j.MinEffect, false, "baseline ÷ "+plain(j.MinEffect)+" (minEffect)"
	default:
		s.factor, s.above, s.label = j.MinEffect, true, "baseline × "+plain(j.MinEffect)+" (minEffect)"
	}
}

// swapSelector resolves a canary-resolved query for the baseline ("" when
// the canary's selector is not in it).
func swapSelector(q string, sys *policy.System) string {
	if q == "" || sys == nil || sys.CanarySelector == "" || !strings.Contains(q, sys.CanarySelector) {
		return ""
	}
	return strings.ReplaceAll(q, sys.CanarySelector, sys.BaselineSelector)
}

// rangeCache runs each distinct range query of a page once, at most
// chartQueries at a time for the page and maxRangeQueries for the whole UI
// (slots), so that many open pages do not flood the metrics backend.
type rangeCache struct {
	src         rewind.RangeSource
	start, end  time.Time
	step        time.Duration
	mu          sync.Mutex
	results     map[string]rangeResult
	concurrency int
	slots       chan struct{}
}

type rangeResult struct {
	m   rewind.Matrix
	err error
}

func (c *rangeCache) fetch(ctx context.Context, queries []string) {
	var g errgroup.Group
	g.SetLimit(c.concurrency)
	seen := map[string]bool{}
	for _, q := range queries {
		if q == "" || seen[q] {
			continue
		}
		seen[q] = true
		g.Go(func() error {
			select {
			case c.slots <- struct{}{}:
				defer func() { <-c.slots }()
			case <-ctx.Done():
				c.mu.Lock()
				c.results[q] = rangeResult{nil, fmt.Errorf("%w: the UI's range queries are all busy: %v", rewind.ErrQuery, ctx.Err())}
				c.mu.Unlock()
				return nil
			}
			m, err := c.src.QueryRange(ctx, q, c.start, c.end, c.step)
			c.mu.Lock()
			c.results[q] = rangeResult{m, err}
			c.mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
}

// series is a chart line on the step grid: NaN where there is no value.
type series []float64

// read turns a side into values on the grid of n steps from start.
func (c *rangeCache) read(s side, n int) (series, error) {
	if !s.present {
		return nil, nil
	}
	if s.query != "" {
		return c.grid(s.query, n, s.reduce)
	}
	bad, err := c.grid(s.bad, n, sumOf)
	if err != nil {
		return nil, err
	}
	total, err := c.grid(s.total, n, sumOf)
	if err != nil {
		return nil, err
	}
	out := make(series, n)
	for i := range out {
		b := bad[i]
		if math.IsNaN(b) {
			b = 0 // no failed-request series: none failed
		}
		out[i] = math.NaN()
		if total[i] > 0 {
			out[i] = b / total[i]
		}
	}
	return out, nil
}

func sumOf(a, b float64) float64 { return a + b }

// grid places a query's samples on the step grid, reducing several series
// at one instant with reduce; NaN and ±Inf are no value.
func (c *rangeCache) grid(q string, n int, reduce reduceFn) (series, error) {
	out := make(series, n)
	for i := range out {
		out[i] = math.NaN()
	}
	c.mu.Lock()
	r, ok := c.results[q]
	c.mu.Unlock()
	if !ok {
		return out, fmt.Errorf("%w: %s was not fetched", rewind.ErrQuery, q)
	}
	if r.err != nil {
		return out, r.err
	}
	for _, s := range r.m {
		for _, p := range s.Points {
			i := int(math.Round(float64(p.T.Sub(c.start)) / float64(c.step)))
			if i < 0 || i >= n || math.IsNaN(p.V) || math.IsInf(p.V, 0) {
				continue
			}
			if math.IsNaN(out[i]) {
				out[i] = p.V
			} else {
				out[i] = reduce(out[i], p.V)
			}
		}
	}
	return out, nil
}

func (s chartSpec) queries() []string {
	var out []string
	for _, sd := range []side{s.canary, s.baseline} {
		if sd.present {
			out = append(out, sd.query, sd.bad, sd.total)
		}
	}
	return out
}

// thresholdLine computes the line at every instant; for a CEL condition it
// also says on which side the condition holds. lo and hi bound the search.
func (s chartSpec) thresholdLine(baseline series, n int, lo, hi float64) (series, bool) {
	if s.constant == nil && s.factor == 0 && s.boundary == nil {
		return nil, s.above
	}
	out := make(series, n)
	above, sided := s.above, false
	for i := range out {
		b := math.NaN()
		if baseline != nil {
			b = baseline[i]
		}
		out[i] = math.NaN()
		switch {
		case s.constant != nil:
			out[i] = *s.constant
		case s.factor != 0:
			out[i] = b * s.factor
		case !math.IsNaN(b) || !s.baseline.present:
			out[i] = bisect(s.boundary, b, lo, hi)
			if !sided && !math.IsNaN(out[i]) {
				above, sided = holdsAt(s.boundary, hi, b), true
			}
		}
	}
	return out, above
}

// bisect finds the canary value at which t's condition changes, with the
// baseline at b, between lo and hi (NaN: it does not change there).
func bisect(t *policy.Trigger, b, lo, hi float64) float64 {
	if math.IsNaN(b) {
		b = 0
	}
	hl, err1 := t.Holds(lo, b)
	hh, err2 := t.Holds(hi, b)
	if err1 != nil || err2 != nil || hl == hh {
		return math.NaN()
	}
	for range bisectIterations {
		mid := (lo + hi) / 2
		h, err := t.Holds(mid, b)
		if err != nil {
			return math.NaN()
		}
		if h == hl {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// holdsAt reports whether t's condition holds for canary c, baseline b.
func holdsAt(t *policy.Trigger, c, b float64) bool {
	if math.IsNaN(b) {
		b = 0
	}
	h, err := t.Holds(c, b)
	return err == nil && h
}
