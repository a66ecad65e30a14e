package montecarlo

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/rewind-sre/rewind/backtest"
	"github.com/rewind-sre/rewind/internal/scenario"
	"github.com/rewind-sre/rewind/source/embedded"
)

// Start is the first sample of every generated history.
var Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// WarmUp is how long the policies' 5m windows take to fill: no evaluation
// before Start+WarmUp is replayed.
const WarmUp = 5 * time.Minute

// replay generates cfg's history, loads it into an embedded TSDB and
// backtests r over [from, to].
func replay(ctx context.Context, cfg scenario.Config, r Rules, from, to time.Time) (backtest.SystemReport, error) {
	db, err := scenario.Open(cfg, embedded.Options{Dir: scratch()})
	if err != nil {
		return backtest.SystemReport{}, err
	}
	defer db.Close()
	// One query at a time: the runs themselves keep the cores busy.
	rep, err := backtest.Run(ctx, db, r.Policy, backtest.Options{From: from, To: to, Concurrency: 1})
	if err != nil {
		return backtest.SystemReport{}, err
	}
	if len(rep.Systems) != 1 {
		return backtest.SystemReport{}, fmt.Errorf("%s: %d systems, want one", r.Name, len(rep.Systems))
	}
	return rep.Systems[0], nil
}

// scratch is the parent of the embedded TSDBs' directories: /dev/shm when it
// is a writable directory (the head writes its chunk files on Close, which
// on a disk costs as much as the replay), else the default temporary
// directory.
var scratch = sync.OnceValue(func() string {
	const shm = "/dev/shm"
	dir, err := os.MkdirTemp(shm, "rewind-montecarlo-probe-")
	if err != nil {
		return ""
	}
	os.Remove(dir)
	return shm
})
