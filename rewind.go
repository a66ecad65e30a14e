// Package rewind holds Rewind's domain types and the narrow role interfaces
// that the stage and adapter packages implement. It imports no adapter.
package rewind

import (
	"context"
	"errors"
	"time"
)

// Sample is one value of one series at one instant.
type Sample struct {
	Labels map[string]string `json:"labels,omitempty"`
	T      time.Time         `json:"t"`
	V      float64           `json:"v"`
}

// Vector is the result of an instant query: every series, never only the first.
type Vector []Sample

// Point is one value of a series in a range result.
type Point struct {
	T time.Time
	V float64
}

// Series is one labelled series of a range result.
type Series struct {
	Labels map[string]string
	Points []Point
}

// Matrix is the result of a range query.
type Matrix []Series

// Source evaluates PromQL instant queries. An error means the query failed
// (HTTP error, timeout, bad_data, warnings or partial data): the caller
// reports it as degraded, never as a value. An empty Vector means no data.
type Source interface {
	Query(ctx context.Context, query string, at time.Time) (Vector, error)
}

// RangeSource evaluates PromQL range queries: the same result as an instant
// query at start, start+step, ... <= end.
type RangeSource interface {
	QueryRange(ctx context.Context, query string, start, end time.Time, step time.Duration) (Matrix, error)
}

// ErrQuery marks a failed query; sources wrap their errors with it.
var ErrQuery = errors.New("query failed")

// ErrUnavailable marks a failed query that says the source is down,
// overloaded or backing off rather than that the query is wrong: a caller
// asks again at its next cycle, never at once in another form.
var ErrUnavailable = errors.New("metrics source unavailable or overloaded")
