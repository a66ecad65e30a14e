package deploy_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
)

// Latency budgets of a rollback on the local control plane (kwok: pods are
// Ready at once). The seed's executor slept ~105 s on the same path.
const (
	routeBudget = time.Second     // decision → VirtualService written
	undoBudget  = 5 * time.Second // decision → Deployment undone and available
)

// testLatency runs the rollback under rbac.yaml's role on fresh canaries
// and checks the median times from the decision against the budgets.
func (e *env) testLatency(t *testing.T) {
	const runs = 5
	var route, undone []time.Duration
	for i := range runs {
		ns := e.fixture(t)
		cfg := grant(t, e.k, e.admin, e.m, e.m.role, "rewind", fmt.Sprintf("rewind-%d", i), ns,
			authorizationv1.ResourceAttributes{Group: "apps", Resource: "deployments", Verb: "get"})
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		f, err := runFlow(ctx, cfg, ns, t.TempDir(), newRollback(fmt.Sprintf("rb-latency-%d", i)), 30*time.Second)
		cancel()
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		route, undone = append(route, f.route), append(undone, f.undone)
	}
	slices.Sort(route)
	slices.Sort(undone)
	t.Logf("decision → route written:  min %s median %s max %s", ms(route[0]), ms(route[runs/2]), ms(route[runs-1]))
	t.Logf("decision → undone+available: min %s median %s max %s", ms(undone[0]), ms(undone[runs/2]), ms(undone[runs-1]))
	if route[runs/2] > routeBudget {
		t.Errorf("median decision → route written %s; budget %s", route[runs/2], routeBudget)
	}
	if undone[runs/2] > undoBudget {
		t.Errorf("median decision → Deployment undone and available %s; budget %s", undone[runs/2], undoBudget)
	}
}

// BenchmarkRollback is the benchmark command of a rollback:
//
//	go test ./deploy -run '^$' -bench Rollback -benchtime 10x
//
// Each iteration is one rollback of a fresh canary (fixtures outside the
// timer) with executors built from scratch, as by a new process. It
// reports the mean decision → route written and decision → Deployment
// undone and available; ns/op is the whole flow, evidence included.
func BenchmarkRollback(b *testing.B) {
	e := start(b)
	cfg := e.k.AdminConfig()
	var route, undone time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ns := e.fixture(b)
		dir := b.TempDir()
		b.StartTimer()
		ctx, cancel := context.WithTimeout(b.Context(), time.Minute)
		f, err := runFlow(ctx, cfg, ns, dir, newRollback(fmt.Sprintf("rb-bench-%d", i)), 30*time.Second)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		route += f.route
		undone += f.undone
	}
	b.ReportMetric(float64(route.Milliseconds())/float64(b.N), "ms-route/op")
	b.ReportMetric(float64(undone.Milliseconds())/float64(b.N), "ms-undone/op")
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }
