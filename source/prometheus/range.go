package prometheus

import (
	"context"
	"io"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/rewind-sre/rewind"
)

// maxStepsPerRequest bounds the points per series of one range request:
// Prometheus refuses more than 11 000.
const maxStepsPerRequest = 10000

// QueryRange evaluates query at start, start+step, ... <= end. Long ranges
// are split into requests of at most 10 000 steps on the same grid, and the
// series of all requests are merged by label set (sorted by labels). Any
// failed request fails the whole query: a partial matrix is never returned.
func (c *Client) QueryRange(ctx context.Context, query string, start, end time.Time, step time.Duration) (rewind.Matrix, error) {
	if step <= 0 {
		return nil, queryError(query, KindRequest, "range step %s must be positive", step)
	}
	if end.Before(start) {
		return nil, queryError(query, KindRequest, "range end %s is before start %s",
			end.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	var m merger
	for _, r := range splitRange(start, end, step, maxStepsPerRequest) {
		form := url.Values{
			"query": {query},
			"start": {formatTime(r.start)},
			"end":   {formatTime(r.end)},
			"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
		}
		var part rewind.Matrix
		err := c.do(ctx, c.rangeURL, query, form, DefaultMaxRangeBodyBytes, func(status int, body io.Reader) (err error) {
			part, err = readRange(query, status, body, c.lim)
			return err
		})
		if err != nil {
			return nil, c.secrets.redact(err)
		}
		m.add(part)
	}
	return m.matrix(), nil
}

type timeRange struct{ start, end time.Time }

// splitRange cuts [start, end] into consecutive ranges of at most maxSteps
// evaluation steps each. Every range starts on the grid start+k*step, the
// next one a step after the previous end, so no instant is evaluated twice.
// It requires step > 0, maxSteps > 0 and !end.Before(start).
func splitRange(start, end time.Time, step time.Duration, maxSteps int) []timeRange {
	// The span of one range, (maxSteps-1) steps, computed only when it is
	// shorter than the whole range so that it cannot overflow.
	total := end.Sub(start) // saturates for ranges beyond ~292 years
	if total/step < time.Duration(maxSteps) {
		return []timeRange{{start, end}}
	}
	span := step * time.Duration(maxSteps-1)
	var out []timeRange
	for s := start; !s.After(end); {
		e := end
		if end.Sub(s) > span {
			e = s.Add(span)
		}
		out = append(out, timeRange{s, e})
		s = e.Add(step)
	}
	return out
}

// merger concatenates the series of consecutive range results by label set.
type merger struct {
	index  map[string]int // label key -> position in series
	keys   []string
	series rewind.Matrix
}

func (m *merger) add(part rewind.Matrix) {
	if m.index == nil {
		m.index = make(map[string]int)
	}
	for _, s := range part {
		key := labelKey(s.Labels)
		if i, ok := m.index[key]; ok {
			m.series[i].Points = append(m.series[i].Points, s.Points...)
			continue
		}
		m.index[key] = len(m.series)
		m.keys = append(m.keys, key)
		m.series = append(m.series, s)
	}
}

// matrix returns the merged series sorted by label set, never nil.
func (m *merger) matrix() rewind.Matrix {
	out := append(rewind.Matrix{}, m.series...)
	keys := append([]string(nil), m.keys...)
	sort.Sort(byKey{keys, out})
	return out
}

type byKey struct {
	keys   []string
	series rewind.Matrix
}

func (b byKey) Len() int           { return len(b.keys) }
func (b byKey) Less(i, j int) bool { return b.keys[i] < b.keys[j] }
func (b byKey) Swap(i, j int) {
	b.keys[i], b.keys[j] = b.keys[j], b.keys[i]
	b.series[i], b.series[j] = b.series[j], b.series[i]
}
