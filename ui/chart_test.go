package ui

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/rewind-sre/rewind/policy"
)

func testSystem(t *testing.T) *policy.System {
	t.Helper()
	pol, err := policy.Parse("policy.yaml", []byte(strings.NewReplacer("{{sink}}", "http://127.0.0.1:1/x", "{{probe}}", "http://127.0.0.1:1/y").Replace(testPolicy)))
	if err != nil {
		t.Fatal(err)
	}
	return pol.System("checkout")
}

// TestChartSpecs: what each trigger form is charted as, and the line it
// is held against.
func TestChartSpecs(t *testing.T) {
	sys := testSystem(t)
	cases := []struct {
		trigger string
		label   string
		above   bool
		b, want float64 // the threshold at baseline b
	}{
		{"error-rate-high", "baseline × 1.5 (minEffect)", true, 0.01, 0.015},
		{"error-rate-ceiling", "ceiling 20%", true, 0.01, 0.2},
		{"latency-p99-high", "baseline × 2 (minEffect)", true, 0.25, 0.5},
		{"throughput-low", "canary < baseline * 0.5", false, 100, 50},
		{"byzantine-attack-detected", "> 0", true, math.NaN(), 0},
	}
	for _, c := range cases {
		tr := findTrigger(sys, c.trigger)
		s, ok := specOf(tr, sys)
		if !ok || s.label != c.label {
			t.Errorf("%s: charted %v, label %q, want %q", c.trigger, ok, s.label, c.label)
			continue
		}
		line, above := s.thresholdLine(series{c.b}, 1, 0, 1000)
		if above != c.above || math.Abs(line[0]-c.want) > 1e-6*math.Max(1, c.want) {
			t.Errorf("%s: threshold %v (above %v), want %v (above %v)", c.trigger, line[0], above, c.want, c.above)
		}
		if !s.baseline.present {
			t.Errorf("%s: no baseline charted", c.trigger)
		}
	}
	if _, ok := specOf(findTrigger(sys, "canary-health"), sys); ok {
		t.Error("a health check is charted")
	}
	if s, _ := specOf(findTrigger(sys, "error-rate-ceiling"), sys); !strings.Contains(s.baseline.total, `version="baseline"`) {
		t.Errorf("the one-sample trigger's baseline for context: %q", s.baseline.total)
	}
}

// TestSVG: gaps break the lines, values never come out as NaN or Inf, and
// the chart names itself for screen readers.
func TestSVG(t *testing.T) {
	nan := math.NaN()
	p := &plot{id: "c-x", start: t0, step: time.Minute, unit: unitRatio,
		canary: series{0.01, nan, 0.02, math.Inf(1), 0.05}, baseline: series{0.01, 0.01, nan, 0.01, 0.01},
		threshold: series{0.015, 0.015, nan, 0.015, 0.015}, above: true, title: "x: canary and baseline", desc: "words",
		periods: []period{{t0.Add(2 * time.Minute), t0.Add(4 * time.Minute), "firing"}}, markers: []marker{{t0.Add(4 * time.Minute), "rollback <rb-1>"}}}
	svg := string(p.svg())
	for _, bad := range []string{"NaN", "Inf", "<rb-1>"} {
		if strings.Contains(svg, bad) {
			t.Errorf("the SVG holds %q:\n%s", bad, svg)
		}
	}
	for _, want := range []string{`aria-labelledby="c-x-t c-x-d"`, `<title id="c-x-t">x: canary and baseline</title>`, `class="p-firing"`, "&lt;rb-1&gt;"} {
		if !strings.Contains(svg, want) {
			t.Errorf("the SVG lacks %s", want)
		}
	}
	can := between(svg, `class="can" d="`, `"`)
	if strings.Count(can, "M") != 2 {
		t.Errorf("the canary's line is not broken at its gap: %s", can)
	}
	if strings.Count(svg, `<polygon class="band"`) != 2 {
		t.Error("the threshold band is not one polygon per stretch")
	}
}
