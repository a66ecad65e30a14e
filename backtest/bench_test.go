package backtest_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rewind-sre/rewind/backtest"
	"github.com/rewind-sre/rewind/internal/scenario"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/source/embedded"
)

// BenchmarkBacktest24h is `rewind backtest --data` on 24 h of 15 s data with
// the default policy, loading the OpenMetrics file included.
func BenchmarkBacktest24h(b *testing.B) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := scenario.Healthy(t0, 24*time.Hour, 5, 1)
	cfg.Fault = scenario.Fault{Kind: scenario.FaultLatency, At: t0.Add(20 * time.Hour)}
	data, err := scenario.Generate(cfg)
	if err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(b.TempDir(), "24h.om")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		b.Fatal(err)
	}
	pol, err := policy.Parse("default.yaml", policy.Default())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(data))/1e6, "MB")
	b.ResetTimer()
	for b.Loop() {
		db, err := embedded.Open(embedded.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := db.LoadFile(file); err != nil {
			b.Fatal(err)
		}
		rep, err := backtest.Run(context.Background(), db, pol, backtest.Options{From: t0, To: t0.Add(24 * time.Hour)})
		if err != nil {
			b.Fatal(err)
		}
		if s := rep.Systems[0]; s.Decision != backtest.Rollback || s.Evaluations != 2881 {
			b.Fatalf("unexpected result %s after %d evaluations", s.Decision, s.Evaluations)
		}
		db.Close()
	}
}
