package watch

import (
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/rewind-sre/rewind/policy"
)

// FuzzRewrite: any PromQL is moved to every reference without a panic, and
// what comes out parses again.
func FuzzRewrite(f *testing.F) {
	for _, q := range []string{
		`sum(increase(http_requests_total{status=~"5..", app="x" }[5m]))`,
		`sum by (le) (increase(x_bucket[5m] offset 1m))`,
		`max_over_time(rate(x[1m])[5m:30s] @ 100)`,
		`x > 1`, `1`, `sum(`,
	} {
		f.Add(q)
	}
	refs := References(policy.History{Window: time.Hour, Seasons: []time.Duration{24 * time.Hour}})
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, q string) {
		for _, r := range refs {
			out, err := r.Rewrite(q, start)
			if err != nil {
				continue
			}
			if _, err := parser.NewParser(parser.Options{}).ParseExpr(out); err != nil {
				t.Fatalf("%s: rewrote %q into %q, which does not parse: %v", r.Name, q, out, err)
			}
		}
	})
}
