package service

import (
	"context"
	"time"
)

// run advances the background activity every Tick until ctx ends.
func (s *Service) run(ctx context.Context) {
	defer close(s.loopDone)
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.advance(now.Sub(last))
			last = now
		}
	}
}

// advance applies dt of background activity to the running process:
// transactions at the healthy rate (× the fault's factor), DAG validation
// errors and circuit-breaker trips at the fault's rate, the working set.
func (s *Service) advance(dt time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.cur.Load()
	sec := dt.Seconds()
	p.m.transactions.Add(s.tx.take(s.cfg.TxPerSecond * p.beh.txFactor * sec))
	p.m.dagErrors.Add(s.dag.take(p.beh.dagPerSec * sec))
	p.m.trips.Add(s.trips.take(p.beh.tripsPerSec * sec))
	p.m.workingSet.Set(s.workingSet(p.beh))
}
