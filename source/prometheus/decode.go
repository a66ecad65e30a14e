package prometheus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rewind-sre/rewind"
)

// This file decodes the documented JSON of the Prometheus HTTP API
// (https://prometheus.io/docs/prometheus/latest/querying/api/) strictly:
// a sample without a value, a timestamp that is not a number or a series
// listed twice is an error, never a silent zero. Unknown fields ("stats",
// "infos", "analysis") are ignored; "infos" are informational annotations
// (Prometheus 3), not partial data.

// envelope is the common response format.
type envelope struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
	IsPartial bool            `json:"isPartial"` // VictoriaMetrics
}

type queryData struct {
	ResultType string          `json:"resultType"`
	Result     json.RawMessage `json:"result"`
}

type jsonSample struct {
	Metric    map[string]string `json:"metric"`
	Value     *pair             `json:"value"`
	Histogram json.RawMessage   `json:"histogram"`
}

type jsonSeries struct {
	Metric     map[string]string `json:"metric"`
	Values     []pair            `json:"values"`
	Histograms json.RawMessage   `json:"histograms"`
}

// pair is a [<unix seconds>, "<value>"] array.
type pair struct {
	T time.Time
	V float64
}

// maxUnixSeconds bounds timestamps so that milliseconds fit in an int64
// with room to spare (year ~33658).
const maxUnixSeconds = 1e12

func (p *pair) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if len(raw) != 2 {
		return fmt.Errorf("sample has %d elements, want [timestamp, \"value\"]", len(raw))
	}
	var ts json.Number
	if err := json.Unmarshal(raw[0], &ts); err != nil {
		return fmt.Errorf("sample timestamp: %w", err)
	}
	secs, err := strconv.ParseFloat(string(ts), 64)
	if err != nil || math.IsNaN(secs) || math.Abs(secs) > maxUnixSeconds {
		return fmt.Errorf("sample timestamp %s is not a unix time", clip(string(ts)))
	}
	var s string
	if err := json.Unmarshal(raw[1], &s); err != nil {
		return errors.New("sample value must be a quoted string")
	}
	// ParseFloat accepts the "NaN", "+Inf" and "-Inf" that Prometheus writes;
	// they are passed through, the caller decides they mean no data.
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("sample value %q is not a number", clip(s))
	}
	p.T = time.UnixMilli(int64(math.Round(secs * 1000))).UTC()
	p.V = v
	return nil
}

// decodeInstant turns the response to /api/v1/query into a Vector: a
// vector result with every series, or a scalar as one sample without
// labels. Any other outcome is an *Error.
func decodeInstant(query string, status int, body []byte) (rewind.Vector, error) {
	data, err := decodeEnvelope(query, status, body)
	if err != nil {
		return nil, err
	}
	switch data.ResultType {
	case "vector":
		var samples []jsonSample
		if err := json.Unmarshal(data.Result, &samples); err != nil {
			return nil, decodeError(query, "vector result: %v", err)
		}
		out := make(rewind.Vector, 0, len(samples))
		seen := make(map[string]bool, len(samples))
		for _, s := range samples {
			key := labelKey(s.Metric)
			if seen[key] {
				return nil, decodeError(query, "vector lists series %s twice", clip(key))
			}
			seen[key] = true
			if s.Value == nil {
				if isPresent(s.Histogram) {
					return nil, histogramError(query)
				}
				return nil, decodeError(query, "sample of series %s has no value", clip(key))
			}
			out = append(out, rewind.Sample{Labels: labels(s.Metric), T: s.Value.T, V: s.Value.V})
		}
		return out, nil
	case "scalar":
		var p pair
		if err := json.Unmarshal(data.Result, &p); err != nil {
			return nil, decodeError(query, "scalar result: %v", err)
		}
		return rewind.Vector{{Labels: map[string]string{}, T: p.T, V: p.V}}, nil
	default:
		return nil, resultTypeError(query, data.ResultType, "an instant query (want vector or scalar)")
	}
}

// decodeRange turns the response to /api/v1/query_range into a Matrix with
// every series; points of a series are strictly increasing in time.
func decodeRange(query string, status int, body []byte) (rewind.Matrix, error) {
	data, err := decodeEnvelope(query, status, body)
	if err != nil {
		return nil, err
	}
	if data.ResultType != "matrix" {
		return nil, resultTypeError(query, data.ResultType, "a range query (want matrix)")
	}
	var series []jsonSeries
	if err := json.Unmarshal(data.Result, &series); err != nil {
		return nil, decodeError(query, "matrix result: %v", err)
	}
	out := make(rewind.Matrix, 0, len(series))
	seen := make(map[string]bool, len(series))
	for _, s := range series {
		key := labelKey(s.Metric)
		if seen[key] {
			return nil, decodeError(query, "matrix lists series %s twice", clip(key))
		}
		seen[key] = true
		if isPresent(s.Histograms) {
			return nil, histogramError(query)
		}
		points := make([]rewind.Point, len(s.Values))
		for i, v := range s.Values {
			if i > 0 && !v.T.After(points[i-1].T) {
				return nil, decodeError(query, "points of series %s are not in time order", clip(key))
			}
			points[i] = rewind.Point{T: v.T, V: v.V}
		}
		out = append(out, rewind.Series{Labels: labels(s.Metric), Points: points})
	}
	return out, nil
}

// decodeEnvelope checks the status code and the envelope and returns the
// data of a successful, complete response.
func decodeEnvelope(query string, status int, body []byte) (queryData, error) {
	var env envelope
	jsonErr := json.Unmarshal(body, &env)
	if status < 200 || status > 299 {
		e := queryError(query, KindHTTP, "HTTP %d %s: %s", status, http.StatusText(status), snippet(body))
		if jsonErr == nil && env.Status == "error" {
			e.ErrorType = env.ErrorType
			e.Reason = fmt.Sprintf("HTTP %d: %s: %s", status, clip(env.ErrorType), clip(env.Error))
		}
		e.Status = status
		return queryData{}, e
	}
	if jsonErr != nil {
		return queryData{}, decodeError(query, "undecodable response: %v", jsonErr)
	}
	switch env.Status {
	case "success":
	case "error":
		e := queryError(query, KindAPI, "%s: %s", clip(env.ErrorType), clip(env.Error))
		e.Status, e.ErrorType = status, env.ErrorType
		return queryData{}, e
	default:
		return queryData{}, decodeError(query, "unknown response status %q", clip(env.Status))
	}
	if len(env.Warnings) > 0 {
		return queryData{}, queryError(query, KindPartial, "partial data, the server warned: %s",
			clip(strings.Join(env.Warnings, "; ")))
	}
	if env.IsPartial {
		return queryData{}, queryError(query, KindPartial, "partial data: the server marked the response partial")
	}
	var data queryData
	if err := json.Unmarshal(env.Data, &data); err != nil {
		return queryData{}, decodeError(query, "undecodable data: %v", err)
	}
	if !isPresent(data.Result) {
		return queryData{}, decodeError(query, "response has no result")
	}
	return data, nil
}

func decodeError(query, format string, args ...any) *Error {
	return queryError(query, KindDecode, format, args...)
}

func resultTypeError(query, resultType, what string) *Error {
	if resultType == "" {
		return decodeError(query, "response has no resultType")
	}
	return queryError(query, KindResultType, "result type %q is not usable for %s", clip(resultType), what)
}

func histogramError(query string) *Error {
	return queryError(query, KindResultType,
		"result holds native histogram samples; query a float expression (e.g. histogram_quantile or histogram_count)")
}

// isPresent reports whether a raw JSON field was sent with a non-null value.
func isPresent(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}

// labels returns m, or an empty map for a series without labels, so that
// Labels is never nil.
func labels(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// labelKey is a canonical, collision-free string for a label set.
func labelKey(m map[string]string) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(n))
		b.WriteByte('=')
		b.WriteString(strconv.Quote(m[n]))
	}
	b.WriteByte('}')
	return b.String()
}

// maxReason bounds what a server-supplied string contributes to an error.
const maxReason = 512

// clip shortens s to maxReason bytes on a rune boundary.
func clip(s string) string {
	if len(s) <= maxReason {
		return s
	}
	cut := maxReason
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// snippet is the start of a non-JSON error body, on one line.
func snippet(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if s == "" {
		return "empty body"
	}
	return strconv.QuoteToGraphic(clip(s))
}
