// Package render words an event for people, the same way in every channel:
// values, findings against thresholds, steps with their durations.
package render

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

// Value formats a metric value with four significant digits, or "n/a".
func Value(v *float64) string {
	if v == nil || math.IsNaN(*v) {
		return "n/a"
	}
	return strconv.FormatFloat(*v, 'g', 4, 64)
}

// Time formats an instant in UTC, to the second.
func Time(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// Duration formats a duration rounded for reading: 850ms, 12.3s, 4m5s.
func Duration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// Values is "canary 0.05 vs baseline 0.008", or the canary alone.
func Values(f rewind.Finding) string {
	s := "canary " + Value(f.Canary)
	if f.Baseline != nil {
		s += " vs baseline " + Value(f.Baseline)
	}
	return s
}

// Finding is one line: trigger, values, threshold, since when.
func Finding(f rewind.Finding) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", f.Trigger, Values(f))
	if f.Threshold != "" {
		fmt.Fprintf(&b, " (threshold: %s)", f.Threshold)
	}
	if !f.ActiveAt.IsZero() {
		fmt.Fprintf(&b, ", violating since %s", Time(f.ActiveAt))
	}
	return b.String()
}

// Step is one line: name, state, duration, detail or error.
func Step(s rewind.StepRecord) string {
	line := fmt.Sprintf("%s: %s", s.Name, s.State)
	if d := s.Duration(); d > 0 {
		line += " in " + Duration(d)
	}
	switch {
	case s.Error != "":
		line += " — " + s.Error
	case s.Detail != "":
		line += " — " + s.Detail
	}
	return line
}

// Steps are the rollback's steps that have started or settled.
func Steps(rb *rewind.Rollback) []rewind.StepRecord {
	if rb == nil {
		return nil
	}
	var out []rewind.StepRecord
	for _, s := range rb.Steps {
		if s.State != rewind.StepPending {
			out = append(out, s)
		}
	}
	return out
}

// Summary is the one-line text of an event: title, severity, reason.
func Summary(e rewind.Event) string {
	s := fmt.Sprintf("[%s] %s", strings.ToUpper(string(e.Severity)), e.Title())
	if e.Reason != "" {
		s += " — " + e.Reason
	}
	return s
}
