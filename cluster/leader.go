// Package cluster runs the controller on one replica at a time: leader
// election through a Kubernetes Lease (client-go leaderelection). A replica
// that cannot renew its lease stops acting within RenewDeadline, before
// another can take the lease after LeaseDuration; the exactly-once fence on
// the rollback's target is the guard beyond that.
package cluster

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Election configures leader election.
type Election struct {
	Config        *rest.Config
	Namespace     string
	Name          string // the Lease, e.g. rewind-leader
	Identity      string // this replica, e.g. the pod name
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	Log           *slog.Logger
	Leader        prometheus.Gauge // rewind_leader: 1 while leading; may be nil
}

// Defaults are client-go's usual timings.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// Run campaigns for the lease until ctx ends; while it leads, lead runs
// with a context that is cancelled the moment leadership is lost. After a
// loss it campaigns again.
func (e *Election) Run(ctx context.Context, lead func(ctx context.Context)) error {
	cs, err := clientset.NewForConfig(e.Config)
	if err != nil {
		return err
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: e.Namespace, Name: e.Name},
		Client:     cs.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: e.Identity},
	}
	cfg := leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   or(e.LeaseDuration, DefaultLeaseDuration),
		RenewDeadline:   or(e.RenewDeadline, DefaultRenewDeadline),
		RetryPeriod:     or(e.RetryPeriod, DefaultRetryPeriod),
		ReleaseOnCancel: true,
		Name:            e.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				e.set(1)
				e.Log.Warn("leading: this replica now acts", "lease", e.Namespace+"/"+e.Name, "identity", e.Identity)
				lead(lctx)
			},
			OnStoppedLeading: func() {
				e.set(0)
				e.Log.Warn("not leading: this replica stopped acting", "lease", e.Namespace+"/"+e.Name, "identity", e.Identity)
			},
			OnNewLeader: func(id string) {
				if id != e.Identity {
					e.Log.Info("another replica leads", "leader", id)
				}
			},
		},
	}
	le, err := leaderelection.NewLeaderElector(cfg)
	if err != nil {
		return err
	}
	e.set(0)
	for ctx.Err() == nil {
		le.Run(ctx) // returns when leadership is lost or ctx ends
	}
	return nil
}

func (e *Election) set(v float64) {
	if e.Leader != nil {
		e.Leader.Set(v)
	}
}

func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
