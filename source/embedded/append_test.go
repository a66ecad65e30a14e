package embedded

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/storage"
)

func TestAppender(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	app := db.Appender(ctx)
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	series := func(v string) map[string]string {
		return map[string]string{"__name__": "req_total", "version": v, "empty": ""}
	}
	for i := range 3 {
		for _, v := range []string{"canary", "baseline"} {
			if err := app.Append(series(v), t0.Add(time.Duration(i)*time.Second), float64(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if v, err := db.Query(ctx, "req_total", t0.Add(2*time.Second)); err != nil || len(v) != 0 {
		t.Fatalf("before Commit: %v, %v; want nothing visible", v, err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	v, err := db.Query(ctx, "req_total", t0.Add(2*time.Second))
	if err != nil || len(v) != 2 || v[0].V != 2 || len(v[0].Labels) != 2 {
		t.Fatalf("after Commit: %v, %v", v, err)
	}

	// The Appender starts a new batch after Commit.
	if err := app.Append(series("canary"), t0.Add(3*time.Second), 3); err != nil {
		t.Fatal(err)
	}
	if err := app.Rollback(); err != nil {
		t.Fatal(err)
	}
	if got := queryOne(t, db, `req_total{version="canary"}`, t0.Add(3*time.Second)); got != 2 {
		t.Fatalf("after Rollback: %v, want 2", got)
	}

	// Order within a series: in the batch and against committed samples.
	tests := []struct {
		name string
		at   []time.Duration // samples of one series, in append order
		want error           // error of the last append
	}{
		{"older than committed", []time.Duration{time.Second}, storage.ErrOutOfOrderSample},
		{"older within batch", []time.Duration{10 * time.Second, 9 * time.Second}, storage.ErrOutOfOrderSample},
		{"same time within batch", []time.Duration{10 * time.Second, 10 * time.Second}, storage.ErrDuplicateSampleForTimestamp},
	}
	for _, tc := range tests {
		var err error
		for i, d := range tc.at {
			err = app.Append(series("canary"), t0.Add(d), float64(100+i))
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
		if err := app.Rollback(); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Append(map[string]string{"version": "canary"}, t0, 1); err == nil {
		t.Error("a series without a metric name was accepted")
	}

	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := app.Append(series("canary"), t0.Add(time.Hour), 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: %v", err)
	}
	if err := app.Commit(); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit after Close: %v", err)
	}
}

// Appenders, queries and loads run concurrently (run with -race).
func TestConcurrentUse(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			app := db.Appender(ctx)
			for i := range 200 {
				lbls := map[string]string{"__name__": "work_total", "worker": fmt.Sprint(w)}
				if err := app.Append(lbls, t0.Add(time.Duration(i)*time.Second), float64(i)); err != nil {
					t.Error(err)
					return
				}
				if i%10 == 9 {
					if err := app.Commit(); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
		wg.Go(func() {
			for i := range 50 {
				if _, err := db.Query(ctx, `sum(rate(work_total[1m]))`, t0.Add(time.Duration(i)*4*time.Second)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := queryOne(t, db, `sum(count_over_time(work_total[10m]))`, t0.Add(199*time.Second)); got != 800 {
		t.Fatalf("samples = %v, want 800", got)
	}
}
