package ui

import (
	"html"
	"html/template"
	"strings"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

// The rollback timeline's geometry.
const (
	ganttW, ganttRow = 720.0, 24.0
	ganttLabel       = 120.0
	ganttRight       = 80.0
)

// gantt draws the plan's steps on one time axis from the decision (or the
// request) to the end (or now, while it runs). The same facts are in the
// steps table beside it, so the image is hidden from screen readers.
func gantt(rb *rewind.Rollback, now time.Time) template.HTML {
	from, to := execution(rb)
	if to.IsZero() {
		to = now
	}
	for _, s := range rb.Steps {
		if !s.Started.IsZero() && s.Started.Before(from) {
			from = s.Started
		}
		if s.Ended.After(to) {
			to = s.Ended
		}
	}
	span := to.Sub(from)
	if span <= 0 {
		span = time.Second
	}
	barW := ganttW - ganttLabel - ganttRight
	x := func(t time.Time) float64 { return ganttLabel + barW*float64(t.Sub(from))/float64(span) }
	h := ganttRow*float64(len(rb.Steps)) + 20
	var b strings.Builder
	w := func(parts ...string) {
		for _, p := range parts {
			b.WriteString(p)
		}
	}
	w(`<svg class="gantt" viewBox="0 0 `, num(ganttW), " ", num(h), `" aria-hidden="true">`)
	for i, s := range rb.Steps {
		y := float64(i) * ganttRow
		w(`<text class="glab" x="0" y="`, num(y+16), `">`, html.EscapeString(string(s.Name)), `</text>`)
		w(`<line class="grid" x1="`, num(ganttLabel), `" x2="`, num(ganttLabel+barW), `" y1="`, num(y+ganttRow-2), `" y2="`, num(y+ganttRow-2), `"/>`)
		if s.Started.IsZero() {
			continue
		}
		end := s.Ended
		if end.IsZero() {
			end = now
		}
		x0, x1 := x(s.Started), x(end)
		w(`<rect class="st-`, string(s.State), `" x="`, num(x0), `" y="`, num(y+4), `" width="`, num(max(x1-x0, 2)), `" height="`, num(ganttRow-10), `"/>`)
		took := s.Duration()
		if took == 0 && s.State == rewind.StepRunning {
			took = now.Sub(s.Started)
		}
		w(`<text class="gdur" x="`, num(x1+4), `" y="`, num(y+16), `">`, dur(took), `</text>`)
	}
	axis := float64(len(rb.Steps))*ganttRow + 14
	w(`<text class="xlab" x="`, num(ganttLabel), `" y="`, num(axis), `">`, stamp(from), `</text>`)
	w(`<text class="xlab" text-anchor="end" x="`, num(ganttLabel+barW), `" y="`, num(axis), `">+`, dur(to.Sub(from)), `</text>`)
	w(`</svg>`)
	return template.HTML(b.String())
}

// sloBar shows a duration against a target: the track is the longer of the
// two, the target a line on it. The words are beside it on the page.
func sloBar(took, target time.Duration, known bool) template.HTML {
	if !known {
		return ""
	}
	const width, height = 300.0, 16.0
	full := max(took, target)
	if full <= 0 {
		return ""
	}
	x := func(d time.Duration) float64 { return width * float64(d) / float64(full) }
	class := "slo-ok"
	if took > target {
		class = "slo-over"
	}
	var b strings.Builder
	b.WriteString(`<svg class="slo" viewBox="0 0 300 16" aria-hidden="true"><rect class="track" x="0" y="3" width="300" height="10"/>`)
	b.WriteString(`<rect class="` + class + `" x="0" y="3" width="` + num(max(x(took), 1)) + `" height="10"/>`)
	t := num(x(target))
	b.WriteString(`<line class="target" x1="` + t + `" x2="` + t + `" y1="0" y2="` + num(height) + `"/></svg>`)
	return template.HTML(b.String())
}
