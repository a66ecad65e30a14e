package testenv

import (
	"bytes"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// OpenMetrics builds a history in the OpenMetrics text format that
// `promtool tsdb create-blocks-from openmetrics` reads (see the package
// comment): one contiguous group per family with its "# TYPE" line,
// counters as NAME_total, each series' samples in time order, timestamps in
// seconds with millisecond precision, and a final "# EOF".
//
// Its methods panic on misuse that promtool would reject or silently drop
// (invalid names, a family used with two types, a timestamp before 1970, two
// samples of one series at the same millisecond). The zero value is ready.
type OpenMetrics struct {
	families []*omFamily
	byName   map[string]*omFamily
}

type omFamily struct {
	name, typ string
	series    []*omSeries
	byKey     map[string]*omSeries
}

type omSeries struct {
	text    string // name{labels}
	samples map[int64]float64
}

var (
	metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelNameRE  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// Gauge adds a sample of the gauge name.
func (o *OpenMetrics) Gauge(name string, labels map[string]string, t time.Time, v float64) {
	o.add(name, "gauge", name, labels, t, v)
}

// Counter adds a sample of the counter name. The family is name without a
// _total suffix and the sample is written, and queried, as NAME_total.
func (o *OpenMetrics) Counter(name string, labels map[string]string, t time.Time, v float64) {
	family := strings.TrimSuffix(name, "_total")
	o.add(family, "counter", family+"_total", labels, t, v)
}

// Histogram adds one observation of the classic histogram name: a
// NAME_bucket sample per upper bound in buckets (cumulative counts), the
// +Inf bucket (equal to count), NAME_count and NAME_sum.
func (o *OpenMetrics) Histogram(name string, labels map[string]string, t time.Time, buckets map[float64]float64, count, sum float64) {
	bounds := make([]float64, 0, len(buckets))
	for le := range buckets {
		if !math.IsInf(le, +1) {
			bounds = append(bounds, le)
		}
	}
	sort.Float64s(bounds)
	for _, le := range bounds {
		o.add(name, "histogram", name+"_bucket", withLabel(labels, "le", formatFloat(le)), t, buckets[le])
	}
	o.add(name, "histogram", name+"_bucket", withLabel(labels, "le", "+Inf"), t, count)
	o.add(name, "histogram", name+"_count", labels, t, count)
	o.add(name, "histogram", name+"_sum", labels, t, sum)
}

func (o *OpenMetrics) add(family, typ, sample string, labels map[string]string, t time.Time, v float64) {
	if !metricNameRE.MatchString(family) || !metricNameRE.MatchString(sample) {
		panic(fmt.Sprintf("testenv.OpenMetrics: invalid metric name %q", sample))
	}
	if t.Before(time.Unix(0, 0)) {
		panic(fmt.Sprintf("testenv.OpenMetrics: %s at %s: promtool drops samples before 1970", sample, t))
	}
	if o.byName == nil {
		o.byName = make(map[string]*omFamily)
	}
	f := o.byName[family]
	if f == nil {
		f = &omFamily{name: family, typ: typ, byKey: make(map[string]*omSeries)}
		o.byName[family] = f
		o.families = append(o.families, f)
	}
	if f.typ != typ {
		panic(fmt.Sprintf("testenv.OpenMetrics: family %q used as %s and %s", family, f.typ, typ))
	}
	text := sample + formatLabels(labels)
	s := f.byKey[text]
	if s == nil {
		s = &omSeries{text: text, samples: make(map[int64]float64)}
		f.byKey[text] = s
		f.series = append(f.series, s)
	}
	ms := t.UnixMilli()
	if _, dup := s.samples[ms]; dup {
		panic(fmt.Sprintf("testenv.OpenMetrics: two samples of %s at %s", text, t.UTC().Format(time.RFC3339Nano)))
	}
	s.samples[ms] = v
}

// Bytes returns the OpenMetrics text, ending with "# EOF\n".
func (o *OpenMetrics) Bytes() []byte {
	var b bytes.Buffer
	for _, f := range o.families {
		fmt.Fprintf(&b, "# TYPE %s %s\n", f.name, f.typ)
		for _, s := range f.series {
			times := make([]int64, 0, len(s.samples))
			for ms := range s.samples {
				times = append(times, ms)
			}
			slices.Sort(times)
			for _, ms := range times {
				fmt.Fprintf(&b, "%s %s %s\n", s.text, formatFloat(s.samples[ms]), formatSeconds(ms))
			}
		}
	}
	b.WriteString("# EOF\n")
	return b.Bytes()
}

func formatLabels(labels map[string]string) string {
	if len(labels) == 0 {
		return ""
	}
	names := make([]string, 0, len(labels))
	for n := range labels {
		if !labelNameRE.MatchString(n) {
			panic(fmt.Sprintf("testenv.OpenMetrics: invalid label name %q", n))
		}
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n)
		b.WriteString(`="`)
		b.WriteString(labelEscaper.Replace(labels[n]))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func withLabel(labels map[string]string, name, value string) map[string]string {
	out := make(map[string]string, len(labels)+1)
	for k, v := range labels {
		out[k] = v
	}
	out[name] = value
	return out
}

// formatFloat writes NaN, +Inf and -Inf as OpenMetrics spells them.
func formatFloat(v float64) string {
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// formatSeconds renders Unix milliseconds as seconds: "1700000000.123".
func formatSeconds(ms int64) string {
	return strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64)
}
