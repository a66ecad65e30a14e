package ui

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/rewind-sre/rewind/policy"
)

// unit is how a trigger's values read.
type unit int

const (
	unitPlain   unit = iota
	unitRatio        // a proportion, shown as a percentage
	unitSeconds      // a latency
)

// unitOf says how the values of t read: the judge's proportions as
// percentages, its latencies and a probe's answer time in seconds,
// everything else as numbers.
func unitOf(t *policy.Trigger) unit {
	if t != nil && t.Form == policy.FormProbe {
		return unitSeconds // the health check's answer time
	}
	if t == nil || t.Judge == nil {
		return unitPlain
	}
	if t.Judge.Test == "latency" {
		return unitSeconds
	}
	return unitRatio
}

// value formats a value for people; nil is "—".
func (u unit) value(v *float64) string {
	if v == nil {
		return "—"
	}
	return u.format(*v)
}

func (u unit) format(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case math.IsInf(v, 1):
		return "∞"
	case math.IsInf(v, -1):
		return "−∞"
	}
	switch u {
	case unitRatio:
		return sig(100*v, 3) + "%"
	case unitSeconds:
		if math.Abs(v) < 1 && v != 0 {
			return sig(1000*v, 3) + " ms"
		}
		return sig(v, 3) + " s"
	}
	return plain(v)
}

// plain prints integers exactly and other values with 4 significant digits,
// large ones with an SI suffix.
func plain(v float64) string {
	a := math.Abs(v)
	switch {
	case v == math.Trunc(v) && a < 1e6:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case a >= 1e9:
		return sig(v/1e9, 3) + "G"
	case a >= 1e6:
		return sig(v/1e6, 3) + "M"
	}
	return sig(v, 4)
}

// sig formats v with n significant digits.
func sig(v float64, n int) string { return strconv.FormatFloat(v, 'g', n, 64) }

// dur formats a duration the way the policy writes them: 2m, 8s, 3m10s,
// 1.5s, 12ms.
func dur(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < 10*time.Second && d%time.Second != 0:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	}
	d = d.Round(time.Second)
	h, m, s := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	var b strings.Builder
	if h > 0 {
		fmt.Fprintf(&b, "%dh", h)
	}
	if m > 0 {
		fmt.Fprintf(&b, "%dm", m)
	}
	if s > 0 || b.Len() == 0 {
		fmt.Fprintf(&b, "%ds", s)
	}
	return b.String()
}

// stamp is a time of day in UTC; day is the date with it.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("15:04:05")
}

func day(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func iso(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// bytesize formats a file size.
func bytesize(n int64) string {
	switch {
	case n < 1024:
		return strconv.FormatInt(n, 10) + " B"
	case n < 1<<20:
		return sig(float64(n)/1024, 3) + " KiB"
	}
	return sig(float64(n)/(1<<20), 3) + " MiB"
}
