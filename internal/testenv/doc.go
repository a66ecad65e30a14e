// Package testenv starts the real external components that Rewind's tests
// run against (docs/testing.md). Each helper skips the test with a visible
// reason when its binary is missing, except when the environment variable
// CI is set: CI installs every binary, so there a missing one fails.
//
// # Prometheus
//
// StartPrometheus loads a history into a real Prometheus server (Debian
// package prometheus, binaries prometheus and promtool) with
// `promtool tsdb create-blocks-from openmetrics`, then serves it on a
// loopback port. StartPrometheusScraping starts an empty server that scrapes
// test targets.
//
// # OpenMetrics input accepted by promtool 2.42 (Debian)
//
// Found by running promtool 2.42.0 on crafted files; OpenMetrics (the
// OpenMetrics builder in this package) writes the portable subset that
// later, stricter promtool versions accept too:
//
//   - The last line must be "# EOF" (else "data does not end with # EOF",
//     exit 1). Nothing may follow it ("unexpected data after # EOF"); the
//     final newline is optional. An empty file fails ("mmap, size 0"); a file
//     holding only "# EOF" succeeds and writes no block.
//   - Every sample needs a timestamp ("expected timestamp for series got
//     none"), in Unix SECONDS: "1700000000", "1700000000.123" (millisecond
//     precision is kept) or "1.7e9". Millisecond timestamps are silently read
//     as seconds (tens of thousands of years ahead). Negative timestamps are
//     silently dropped.
//   - Within one series, samples must come in increasing time order: an
//     out-of-order sample and the second of two samples with the same
//     timestamp are silently dropped.
//   - Only "# HELP", "# TYPE", "# UNIT" and "# EOF" comment lines; no blank
//     lines and no free comments ("is not a valid start token"). Fields are
//     separated by exactly one space.
//   - "# TYPE" lines are optional in 2.42 (samples become untyped), and 2.42
//     stores a counter sample under the name as written, with or without
//     _total. OpenMetrics (and newer promtool) want "# TYPE NAME counter"
//     followed by samples named NAME_total: write that form, and query the
//     series as NAME_total. Histograms are NAME_bucket{le="..."}, NAME_sum and
//     NAME_count under "# TYPE NAME histogram".
//   - A family's "# UNIT" must be a suffix of its name. Exemplars are
//     accepted only on counters and histogram buckets.
//   - 2.42 accepts a family split in several groups with repeated "# TYPE"
//     lines; OpenMetrics does not: write each family once, contiguously.
//   - Values may be NaN, +Inf and -Inf. Label values escape \\, \" and \n.
//
// The server keeps the blocks with --storage.tsdb.retention.time=100y, so old
// histories are not deleted at start. Query them at their own timestamps: an
// instant query only sees samples within the lookback delta (5m) before the
// evaluation time.
//
// # Kubernetes
//
// StartKube runs a real control plane on loopback: etcd, kube-apiserver
// (token auth, RBAC), kube-controller-manager, kube-scheduler and the kwok
// node simulator, built from pinned Go modules by .ci/build-kube (see
// tools/kube/README.md), with Istio's VirtualService CRD installed.
package testenv
