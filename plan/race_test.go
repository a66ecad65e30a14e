package plan_test

import (
	"errors"
	"path/filepath"
	"testing"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/plan"
)

// startRace starts a rollback of checkout on both runners at once. The
// winner's drain waits for release, so the loser's answer comes first.
func startRace(t *testing.T, runners [2]*plan.Runner, release chan struct{}) (loser, winner raceResult) {
	t.Helper()
	results := make(chan raceResult, 2)
	ready := make(chan struct{})
	for i, r := range runners {
		go func() {
			<-ready
			rb, err := r.Start(t.Context(), "checkout", "error-rate", "rewind", nil)
			results <- raceResult{i, rb, err}
		}()
	}
	close(ready)
	loser = <-results
	close(release)
	winner = <-results
	return loser, winner
}

type raceResult struct {
	runner int
	rb     *rewind.Rollback
	err    error
}

// Two runners on one store file (two processes sharing the store): the
// store lets one rollback of the system run.
func TestRaceOnOneStoreFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rewind.db")
	release := make(chan struct{})
	var (
		runners [2]*plan.Runner
		execs   [2]fakes
	)
	for i := range runners {
		execs[i] = newFakes()
		execs[i][rewind.StepDrain].release = release
		runners[i] = &plan.Runner{Store: openStore(t, path), Executors: execs[i].executors()}
	}
	loser, winner := startRace(t, runners, release)

	var ipe *plan.InProgressError
	if !errors.Is(loser.err, rewind.ErrRollbackInProgress) || !errors.As(loser.err, &ipe) || ipe.Where != "store" {
		t.Fatalf("loser: %v, want ErrRollbackInProgress from the store", loser.err)
	}
	if winner.err != nil || winner.rb.State != rewind.RollbackSucceeded {
		t.Fatalf("winner: %+v, %v", winner.rb, winner.err)
	}
	if ipe.Holder != winner.rb.ID {
		t.Errorf("the loser names %s, the winner is %s", ipe.Holder, winner.rb.ID)
	}
	for _, n := range rewind.PlanSteps {
		if got := execs[0].dos(n) + execs[1].dos(n); got != 1 {
			t.Errorf("%s ran %d times in all", n, got)
		}
	}
	all, err := runners[loser.runner].Store.List(t.Context(), plan.ListOptions{System: "checkout"})
	if err != nil || len(all) != 1 {
		t.Errorf("the store holds %d rollbacks of checkout (%v), want 1", len(all), err)
	}
}

// Two runners with their own stores (two controllers) and one target: the
// fence lets one rollback run, and the other is recorded as refused.
func TestRaceOnOneFence(t *testing.T) {
	release := make(chan struct{})
	fence := &memFence{}
	var (
		runners [2]*plan.Runner
		execs   [2]fakes
	)
	for i := range runners {
		execs[i] = newFakes()
		execs[i][rewind.StepDrain].release = release
		runners[i] = &plan.Runner{Store: openStore(t, ""), Fence: fence, Executors: execs[i].executors()}
	}
	loser, winner := startRace(t, runners, release)

	var ipe *plan.InProgressError
	if !errors.As(loser.err, &ipe) || ipe.Where != "fence" || !errors.Is(loser.err, rewind.ErrRollbackInProgress) {
		t.Fatalf("loser: %v, want ErrRollbackInProgress from the fence", loser.err)
	}
	if winner.err != nil || winner.rb.State != rewind.RollbackSucceeded || ipe.Holder != winner.rb.ID {
		t.Fatalf("winner: %+v, %v (loser names %s)", winner.rb, winner.err, ipe.Holder)
	}
	stored, err := runners[loser.runner].Store.Get(t.Context(), loser.rb.ID)
	if err != nil || stored.State != rewind.RollbackFailed || stored.Error != "rollback "+winner.rb.ID+" already in progress" {
		t.Errorf("the loser's record: %+v, %v", stored, err)
	}
	for _, n := range rewind.PlanSteps {
		if got := execs[0].dos(n) + execs[1].dos(n); got != 1 {
			t.Errorf("%s ran %d times in all", n, got)
		}
	}
}
