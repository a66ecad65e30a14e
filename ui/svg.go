package ui

import (
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

// The chart's geometry, in SVG user units (it scales to the page's width).
const (
	svgW, svgH   = 720.0, 220.0
	padL, padR   = 60.0, 12.0
	padT, padB   = 12.0, 26.0
	plotW, plotH = svgW - padL - padR, svgH - padT - padB
	yTicks       = 4
	xTicks       = 6
)

// marker is a vertical line at an instant: a rollback's decision or end.
type marker struct {
	At    time.Time
	Label string
}

// plot is everything one chart draws.
type plot struct {
	id        string
	start     time.Time
	step      time.Duration
	canary    series
	baseline  series
	threshold series
	above     bool
	unit      unit
	periods   []period
	markers   []marker
	title     string
	desc      string
}

func (p *plot) end() time.Time { return p.start.Add(time.Duration(len(p.canary)-1) * p.step) }

// yRange is the value range drawn: every line, the threshold included, and 0.
func (p *plot) yRange() (lo, hi float64) {
	lo, hi = 0, math.Inf(-1)
	for _, s := range []series{p.canary, p.baseline, p.threshold} {
		for _, v := range s {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if math.IsInf(hi, -1) || hi <= lo {
		hi = lo + 1
	}
	step := niceStep((hi - lo) / yTicks)
	return math.Floor(lo/step) * step, math.Ceil(hi*1.05/step) * step
}

// niceStep rounds a tick step to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	switch f := raw / p; {
	case f <= 1:
		return p
	case f <= 2:
		return 2 * p
	case f <= 5:
		return 5 * p
	}
	return 10 * p
}

type svgWriter struct {
	b        strings.Builder
	lo, hi   float64
	start    time.Time
	step     time.Duration
	duration time.Duration
}

func (w *svgWriter) x(t time.Time) float64 {
	if w.duration <= 0 {
		return padL
	}
	return padL + plotW*float64(t.Sub(w.start))/float64(w.duration)
}

func (w *svgWriter) y(v float64) float64 {
	return padT + plotH*(1-(v-w.lo)/(w.hi-w.lo))
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func (w *svgWriter) s(parts ...string) {
	for _, p := range parts {
		w.b.WriteString(p)
	}
}

// svg draws the chart as an accessible image: a title and a description
// that says in words what the lines show.
func (p *plot) svg() template.HTML {
	w := &svgWriter{start: p.start, step: p.step, duration: p.end().Sub(p.start)}
	w.lo, w.hi = p.yRange()
	w.s(`<svg class="chart" viewBox="0 0 `, num(svgW), " ", num(svgH), `" role="img" aria-labelledby="`, p.id, `-t `, p.id, `-d">`)
	w.s(`<title id="`, p.id, `-t">`, html.EscapeString(p.title), `</title><desc id="`, p.id, `-d">`, html.EscapeString(p.desc), `</desc>`)
	w.s(`<rect class="plot" x="`, num(padL), `" y="`, num(padT), `" width="`, num(plotW), `" height="`, num(plotH), `"/>`)
	for _, pd := range p.periods {
		x0, x1 := w.x(pd.From), w.x(pd.To)
		w.s(`<rect class="p-`, string(pd.State), `" x="`, num(x0), `" y="`, num(padT), `" width="`, num(math.Max(x1-x0, 1.5)), `" height="`, num(plotH), `"><title>`,
			string(pd.State), " ", stamp(pd.From), "–", stamp(pd.To), `</title></rect>`)
	}
	p.grid(w)
	if p.threshold != nil {
		w.band(p.threshold, p.above)
		w.s(`<path class="thr" d="`, w.path(p.threshold), `"/>`)
	}
	if p.baseline != nil {
		w.s(`<path class="base" d="`, w.path(p.baseline), `"/>`)
	}
	w.s(`<path class="can" d="`, w.path(p.canary), `"/>`)
	for _, m := range p.markers {
		if m.At.Before(p.start) || m.At.After(p.end()) {
			continue
		}
		x := num(w.x(m.At))
		w.s(`<line class="mark" x1="`, x, `" x2="`, x, `" y1="`, num(padT), `" y2="`, num(padT+plotH), `"><title>`, html.EscapeString(m.Label), " ", stamp(m.At), `</title></line>`)
	}
	w.s(`</svg>`)
	return template.HTML(w.b.String()) // #nosec: numbers and escaped text only
}

// grid draws the value and time axes.
func (p *plot) grid(w *svgWriter) {
	step := niceStep((w.hi - w.lo) / yTicks)
	for v := w.lo; v <= w.hi+step/2; v += step {
		y := num(w.y(v))
		w.s(`<line class="grid" x1="`, num(padL), `" x2="`, num(padL+plotW), `" y1="`, y, `" y2="`, y, `"/>`)
		w.s(`<text class="ylab" x="`, num(padL-6), `" y="`, y, `">`, html.EscapeString(p.unit.format(cleanZero(v))), `</text>`)
	}
	layout := "15:04"
	if w.duration < 10*time.Minute {
		layout = "15:04:05"
	}
	for i := 0; i <= xTicks; i++ {
		t := w.start.Add(time.Duration(float64(w.duration) * float64(i) / xTicks))
		anchor := "middle"
		switch i {
		case 0:
			anchor = "start"
		case xTicks:
			anchor = "end"
		}
		w.s(`<text class="xlab" text-anchor="`, anchor, `" x="`, num(w.x(t)), `" y="`, num(svgH-8), `">`, t.UTC().Format(layout), `</text>`)
	}
}

// cleanZero turns -0 and float noise near 0 into 0 for the labels.
func cleanZero(v float64) float64 {
	if math.Abs(v) < 1e-12 {
		return 0
	}
	return v
}

// path draws a series as a line, broken where it has no value.
func (w *svgWriter) path(s series) string {
	var b strings.Builder
	pen := false
	for i, v := range s {
		if math.IsNaN(v) {
			pen = false
			continue
		}
		v = math.Max(w.lo, math.Min(w.hi, v))
		if pen {
			b.WriteString(" L")
		} else {
			b.WriteString(" M")
		}
		b.WriteString(num(w.x(w.at(i))))
		b.WriteByte(' ')
		b.WriteString(num(w.y(v)))
		pen = true
	}
	return strings.TrimSpace(b.String())
}

func (w *svgWriter) at(i int) time.Time { return w.start.Add(time.Duration(i) * w.step) }

// band shades the alerting side of the threshold, one polygon per stretch
// where the threshold is known.
func (w *svgWriter) band(th series, above bool) {
	edge := padT + plotH
	if above {
		edge = padT
	}
	i := 0
	for i < len(th) {
		for i < len(th) && math.IsNaN(th[i]) {
			i++
		}
		j := i
		for j < len(th) && !math.IsNaN(th[j]) {
			j++
		}
		if j > i {
			var b strings.Builder
			b.WriteString(num(w.x(w.at(i))) + "," + num(edge))
			for k := i; k < j; k++ {
				v := math.Max(w.lo, math.Min(w.hi, th[k]))
				b.WriteString(" " + num(w.x(w.at(k))) + "," + num(w.y(v)))
			}
			b.WriteString(" " + num(w.x(w.at(j-1))) + "," + num(edge))
			w.s(`<polygon class="band" points="`, b.String(), `"/>`)
		}
		i = j
	}
}

// describe says in words what the chart shows, for screen readers and for
// the page itself: last values, the threshold, the shaded periods.
func describe(trigger string, u unit, canary, baseline, threshold series, label string, periods []period, from, to time.Time) string {
	var parts []string
	parts = append(parts, "Canary "+lastOf(u, canary))
	if baseline != nil {
		parts = append(parts, "baseline "+lastOf(u, baseline))
	}
	if threshold != nil && label != "" {
		parts = append(parts, "held against "+label)
	}
	s := trigger + " from " + stamp(from) + " to " + stamp(to) + " UTC. " + strings.Join(parts, ", ") + "."
	if len(periods) == 0 {
		return s + " Not pending or firing in this period."
	}
	var ps []string
	for _, p := range periods {
		ps = append(ps, string(p.State)+" "+stamp(p.From)+"–"+stamp(p.To))
	}
	return s + " " + strings.Join(ps, ", ") + "."
}

func lastOf(u unit, s series) string {
	for i := len(s) - 1; i >= 0; i-- {
		if !math.IsNaN(s[i]) {
			return "last " + u.format(s[i])
		}
	}
	return "has no data"
}
