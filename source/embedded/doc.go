// Package embedded runs Prometheus's PromQL engine in-process over samples kept in memory.
// It backs `rewind backtest --data FILE.om` and the live demo, and implements
// rewind.Source and rewind.RangeSource with the same semantics as a real
// Prometheus server answering the HTTP API.
//
// # Storage
//
// A DB keeps its samples in memory: each series in Gorilla-compressed
// (XOR) chunks of 120 samples, the encoding of Prometheus's TSDB, read by
// the PromQL engine through the narrow storage.Queryable interface. It does
// not use the TSDB itself, whose configuration package links the AWS, Azure
// and Google Cloud SDKs into the binary. Series may be appended in any
// order and samples of any age: loading 30 days of history works the same
// as loading five minutes. Within one series samples must be appended in
// time order; the OpenMetrics loader sorts them for you, a live Appender
// rejects a sample older than the newest sample of its series.
//
// # Loading
//
// LoadOpenMetrics reads the format that `promtool tsdb create-blocks-from
// openmetrics` reads: OpenMetrics 1.0 text where every sample has a timestamp
// in seconds, terminated by "# EOF". Parsing is strict, like promtool: a
// missing "# EOF", a sample without timestamp, a blank line or CRLF line
// endings are errors. Errors are *LineError values naming the line. `_created`
// series are loaded as ordinary series (as promtool does); classic histograms
// are their `_bucket{le}`, `_sum` and `_count` float series. Labels with empty
// values are dropped (PromQL treats them as absent). Samples of a series may
// appear in any order; an exact duplicate (same timestamp, same value) is
// ignored, a conflicting duplicate is an error naming both lines.
//
// The file is parsed and validated completely before the first sample is
// appended, so a parse error leaves the DB unchanged. A failure while
// appending (only possible when the file overlaps data already in the DB)
// can leave part of the file loaded.
//
// # Queries
//
// Query and QueryRange run the PromQL engine with a 5m lookback delta, a
// per-query timeout, the @ modifier and negative offsets enabled, and a
// MaxSamples limit large enough for 24 h (and 30 d) range queries. Every
// series of a result is returned; a scalar result becomes one sample with no
// labels; NaN and ±Inf are returned as values.
//
// Every failure wraps rewind.ErrQuery: a parse error, an engine error,
// a timeout or cancellation, a result type that is neither vector nor scalar
// (string, or a range vector from an instant query), a native histogram
// sample, and any PromQL *warning* annotation. Warnings (for example an
// invalid quantile or a bucket with an unparsable "le") are what Prometheus's
// HTTP API reports in "warnings", which make the trigger degraded
// (docs/decisions.md); so they fail the query here too, and backtests agree with live
// runs. PromQL *info* annotations (for example "metric might not be a
// counter") are reported by Prometheus in the separate "infos" field and are
// harmless; they do not fail a query and are logged at debug level. One
// warning is ignored too: "sort is ineffective for range queries", which only
// range queries raise, so that a range query fails exactly when the instant
// queries at its steps fail.
package embedded
