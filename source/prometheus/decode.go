package prometheus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	Status    string   `json:"status"`
	ErrorType string   `json:"errorType"`
	Error     string   `json:"error"`
	Warnings  []string `json:"warnings"`
	IsPartial bool     `json:"isPartial"` // VictoriaMetrics
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

// limits bound what one answer may hold.
type limits struct {
	maxSeries int // series in a result
	maxPoints int // points of all series of a range result together
}

// decodeInstant turns the response to /api/v1/query into a Vector: a
// vector result with every series, or a scalar as one sample without
// labels. Any other outcome is an *Error.
func decodeInstant(query string, status int, body []byte) (rewind.Vector, error) {
	return readInstant(query, status, bytes.NewReader(body), defaultLimits)
}

// decodeRange turns the response to /api/v1/query_range into a Matrix with
// every series; points of a series are strictly increasing in time.
func decodeRange(query string, status int, body []byte) (rewind.Matrix, error) {
	return readRange(query, status, bytes.NewReader(body), defaultLimits)
}

// readInstant is decodeInstant reading the body as it arrives.
func readInstant(query string, status int, body io.Reader, lim limits) (rewind.Vector, error) {
	var out rewind.Vector
	err := readAnswer(query, status, body, func(dec *json.Decoder, resultType string) error {
		switch resultType {
		case "vector":
			v, err := readVector(query, dec, lim)
			out = v
			return err
		case "scalar":
			p, err := readPair(dec)
			if err != nil {
				return decodeError(query, "scalar result: %v", err)
			}
			out = rewind.Vector{{Labels: map[string]string{}, T: p.T, V: p.V}}
			return nil
		default:
			return resultTypeError(query, resultType, "an instant query (want vector or scalar)")
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// readRange is decodeRange reading the body as it arrives.
func readRange(query string, status int, body io.Reader, lim limits) (rewind.Matrix, error) {
	var out rewind.Matrix
	err := readAnswer(query, status, body, func(dec *json.Decoder, resultType string) error {
		if resultType != "matrix" {
			return resultTypeError(query, resultType, "a range query (want matrix)")
		}
		m, err := readMatrix(query, dec, lim)
		out = m
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// The result readers start after the result's opening '[' and consume its
// closing ']'. They read one element at a time, so that a result over the
// series bound is refused before it is held in memory.

func readVector(query string, dec *json.Decoder, lim limits) (rewind.Vector, error) {
	out := rewind.Vector{}
	seen := map[string]bool{}
	err := readElements(dec, func() error {
		if len(out) >= lim.maxSeries {
			return tooLarge(query, "more than %d series in one answer", lim.maxSeries)
		}
		var s jsonSample
		if err := dec.Decode(&s); err != nil {
			return fmt.Errorf("vector result: %w", err)
		}
		key := labelKey(s.Metric)
		if seen[key] {
			return decodeError(query, "vector lists series %s twice", clip(key))
		}
		seen[key] = true
		if s.Value == nil {
			if isPresent(s.Histogram) {
				return histogramError(query)
			}
			return decodeError(query, "sample of series %s has no value", clip(key))
		}
		out = append(out, rewind.Sample{Labels: labels(s.Metric), T: s.Value.T, V: s.Value.V})
		return nil
	})
	if err != nil {
		return nil, asQueryError(query, "undecodable response", err)
	}
	return out, nil
}

func readMatrix(query string, dec *json.Decoder, lim limits) (rewind.Matrix, error) {
	out := rewind.Matrix{}
	seen := map[string]bool{}
	points := 0
	err := readElements(dec, func() error {
		if len(out) >= lim.maxSeries {
			return tooLarge(query, "more than %d series in one answer", lim.maxSeries)
		}
		var s jsonSeries
		if err := dec.Decode(&s); err != nil {
			return fmt.Errorf("matrix result: %w", err)
		}
		key := labelKey(s.Metric)
		if seen[key] {
			return decodeError(query, "matrix lists series %s twice", clip(key))
		}
		seen[key] = true
		if isPresent(s.Histograms) {
			return histogramError(query)
		}
		if points += len(s.Values); points > lim.maxPoints {
			return tooLarge(query, "more than %d points in one answer", lim.maxPoints)
		}
		ps := make([]rewind.Point, len(s.Values))
		for i, v := range s.Values {
			if i > 0 && !v.T.After(ps[i-1].T) {
				return decodeError(query, "points of series %s are not in time order", clip(key))
			}
			ps[i] = rewind.Point{T: v.T, V: v.V}
		}
		out = append(out, rewind.Series{Labels: labels(s.Metric), Points: ps})
		return nil
	})
	if err != nil {
		return nil, asQueryError(query, "undecodable response", err)
	}
	return out, nil
}

// readPair reads the rest of a [<unix seconds>, "<value>"] pair.
func readPair(dec *json.Decoder) (pair, error) {
	var elems []json.RawMessage
	err := readElements(dec, func() error {
		if len(elems) == 2 {
			return errors.New("sample has more than 2 elements, want [timestamp, \"value\"]")
		}
		var e json.RawMessage
		if err := dec.Decode(&e); err != nil {
			return err
		}
		elems = append(elems, e)
		return nil
	})
	var p pair
	if err != nil {
		return p, err
	}
	raw, err := json.Marshal(elems)
	if err != nil {
		return p, err
	}
	return p, p.UnmarshalJSON(raw)
}

// readElements calls each for every element of an array whose '[' has been
// read, then reads its ']'.
func readElements(dec *json.Decoder, each func() error) error {
	for dec.More() {
		if err := each(); err != nil {
			return err
		}
	}
	tok, err := dec.Token()
	if err == nil && tok != json.Delim(']') {
		err = fmt.Errorf("want ], got %v", tok)
	}
	return err
}

// maxWarnings bounds the warnings of an answer kept for its error.
const maxWarnings = 10

// readAnswer checks the status code and reads the envelope of a response
// as it arrives, handing the result (after its '[') to result once its type
// is known. A result sent before its resultType is held until then. It
// returns an error unless the response is successful and complete.
func readAnswer(query string, status int, body io.Reader, result func(*json.Decoder, string) error) error {
	if status < 200 || status > 299 {
		return httpError(query, status, body)
	}
	var (
		env      envelope
		typ      string
		pending  []json.RawMessage // elements of a result that came before its type
		present  bool              // a result was sent
		consumed bool              // and handed to result
	)
	dec := json.NewDecoder(body)
	readData := func() error {
		return readObject(dec, func(key string) error {
			switch key {
			case "resultType":
				return dec.Decode(&typ)
			case "result":
				open, err := openArray(dec)
				if err != nil || !open {
					return err
				}
				present = true
				if typ == "" {
					return readElements(dec, func() error {
						var e json.RawMessage
						err := dec.Decode(&e)
						pending = append(pending, e)
						return err
					})
				}
				consumed = true
				return result(dec, typ)
			}
			return skip(dec)
		})
	}
	err := readObject(dec, func(key string) error {
		switch key {
		case "status":
			return dec.Decode(&env.Status)
		case "errorType":
			return dec.Decode(&env.ErrorType)
		case "error":
			return dec.Decode(&env.Error)
		case "warnings":
			open, err := openArray(dec)
			if err != nil || !open {
				return err
			}
			return readElements(dec, func() error { // the first few, each clipped
				var w string
				if err := dec.Decode(&w); err != nil {
					return err
				}
				switch n := len(env.Warnings); {
				case n < maxWarnings:
					env.Warnings = append(env.Warnings, clip(w))
				case n == maxWarnings:
					env.Warnings = append(env.Warnings, "…")
				}
				return nil
			})
		case "isPartial":
			return dec.Decode(&env.IsPartial)
		case "data":
			if env.Status != "" && env.Status != "success" {
				return skip(dec)
			}
			return readData()
		}
		return skip(dec)
	})
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("data after the end of the response")
		}
	}
	if err != nil {
		return asQueryError(query, "undecodable response", err)
	}
	switch env.Status {
	case "success":
	case "error":
		e := queryError(query, KindAPI, "%s: %s", clip(env.ErrorType), clip(env.Error))
		e.Status, e.ErrorType = status, env.ErrorType
		return e
	default:
		return decodeError(query, "unknown response status %q", clip(env.Status))
	}
	if len(env.Warnings) > 0 {
		return queryError(query, KindPartial, "partial data, the server warned: %s",
			clip(strings.Join(env.Warnings, "; ")))
	}
	if env.IsPartial {
		return queryError(query, KindPartial, "partial data: the server marked the response partial")
	}
	switch {
	case !present:
		return decodeError(query, "response has no result")
	case typ == "":
		return decodeError(query, "response has no resultType")
	case !consumed:
		raw, err := json.Marshal(pending)
		if err != nil {
			return decodeError(query, "result: %v", err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		if _, err := dec.Token(); err != nil { // [
			return decodeError(query, "result: %v", err)
		}
		return result(dec, typ)
	}
	return nil
}

// openArray reads the start of an array: false for a null.
func openArray(dec *json.Decoder) (bool, error) {
	tok, err := dec.Token()
	switch {
	case err != nil:
		return false, err
	case tok == nil:
		return false, nil
	case tok != json.Delim('['):
		return false, fmt.Errorf("result: want an array, got %v", tok)
	}
	return true, nil
}

// readObject calls each with every key of the JSON object that dec is at;
// each must consume the key's value. A null is an empty object.
func readObject(dec *json.Decoder, each func(key string) error) error {
	tok, err := dec.Token()
	if err != nil || tok == nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("want an object, got %v", tok)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("want a key, got %v", tok)
		}
		if err := each(key); err != nil {
			return err
		}
	}
	_, err = dec.Token() // }
	return err
}

// skip consumes one value of no interest (stats, infos, ...) token by
// token, without holding it.
func skip(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// asQueryError keeps an *Error as it is and turns anything else (a syntax
// error, an early end, a body over its bound) into one.
func asQueryError(query, what string, err error) error {
	var qe *Error
	switch {
	case errors.As(err, &qe):
		return qe
	case errors.Is(err, errBodyTooLarge):
		return tooLarge(query, "%v", err)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return decodeError(query, "%s: the answer ends early", what)
	}
	return decodeError(query, "%s: %v", what, err)
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// httpError reads a non-2xx answer: its status, and why when the body says so.
func httpError(query string, status int, body io.Reader) error {
	b, _ := io.ReadAll(io.LimitReader(body, maxErrorBody))
	var env envelope
	jsonErr := json.Unmarshal(b, &env)
	e := queryError(query, KindHTTP, "HTTP %d %s: %s", status, http.StatusText(status), snippet(b))
	if jsonErr == nil && env.Status == "error" {
		e.ErrorType = env.ErrorType
		e.Reason = fmt.Sprintf("HTTP %d: %s: %s", status, clip(env.ErrorType), clip(env.Error))
	}
	e.Status = status
	return e
}

func tooLarge(query, format string, args ...any) *Error {
	return queryError(query, KindTooLarge, format, args...)
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
