package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rewind-sre/rewind/cluster"
	"github.com/rewind-sre/rewind/server"
)

// Election configures leader election through a Kubernetes Lease: with
// replicas, only the holder acts.
type Election struct {
	Namespace, Name, Identity string
	Kubeconfig                string // "" : in-cluster
	LeaseDuration             time.Duration
	RenewDeadline             time.Duration
	RetryPeriod               time.Duration
}

// Run runs the daemon until ctx ends: the readiness checks, the outbox's
// deliveries and, while this process acts (alone, or as the leader), the
// controller: evaluations, rollbacks, and the unfinished rollbacks of a
// previous process or leader. When ctx ends it starts no new work,
// interrupts the rollback steps under way (each stays in the journal at
// the step it was in, for the next process to resume), says so in the
// log, and returns within ShutdownTimeout.
func (d *Daemon) Run(ctx context.Context) error {
	var bg sync.WaitGroup
	bg.Go(func() { d.health.run(ctx, d.opt.CheckEvery) })
	bg.Go(func() { d.watchGitOps(ctx) })
	if d.opt.Election == nil {
		bg.Go(func() { _ = d.outbox.Run(ctx) })
	} // else the outbox runs while this replica leads (act)
	acted := make(chan struct{})
	go func() {
		defer close(acted)
		d.act(ctx)
	}()
	<-ctx.Done()
	began := time.Now()
	d.logShutdown(ctx)
	done := make(chan struct{})
	go func() {
		<-acted
		bg.Wait()
		close(done)
	}()
	select {
	case <-done:
		d.log.Warn("stopped", "took", time.Since(began))
		return nil
	case <-time.After(d.opt.ShutdownTimeout):
		d.log.Error("not stopped within the shutdown timeout; exiting anyway: the journal holds every unfinished rollback for the next process",
			"timeout", d.opt.ShutdownTimeout, "inFlight", d.inFlight())
		return fmt.Errorf("daemon: not stopped within %s", d.opt.ShutdownTimeout)
	}
}

// logShutdown says why the daemon stops and what it leaves to the journal.
func (d *Daemon) logShutdown(ctx context.Context) {
	why := "context ended"
	if cause := context.Cause(ctx); cause != nil {
		why = cause.Error() // "interrupt signal received", "terminated signal received"
	}
	in := d.inFlight()
	if len(in) == 0 {
		d.log.Warn("shutting down: no rollback in flight", "cause", why, "timeout", d.opt.ShutdownTimeout)
		return
	}
	d.log.Warn("shutting down mid-rollback: the steps under way are interrupted and stay in the journal; the next process (or the new leader) resumes them",
		"cause", why, "inFlight", in, "timeout", d.opt.ShutdownTimeout)
}

// inFlight names the rollbacks in flight: "id (system)".
func (d *Daemon) inFlight() []string {
	var out []string
	for _, s := range d.ctl.Systems() {
		if s.InFlight != "" {
			out = append(out, s.InFlight+" ("+s.Name+")")
		}
	}
	return out
}

// act runs the controller while this process may act.
func (d *Daemon) act(ctx context.Context) {
	e := d.opt.Election
	if e == nil {
		d.leader.Set(1)
		defer d.leader.Set(0)
		_ = d.ctl.Run(ctx)
		return
	}
	kube := newKube(e.Kubeconfig, d.opt.Now)
	const what = "leader election"
	for ctx.Err() == nil {
		cfg, err := kube.Config()
		if err == nil {
			d.health.setExtra(what, "")
			el := &cluster.Election{Config: cfg, Namespace: e.Namespace, Name: e.Name, Identity: e.Identity,
				LeaseDuration: e.LeaseDuration, RenewDeadline: e.RenewDeadline, RetryPeriod: e.RetryPeriod, Log: d.log, Leader: d.leader}
			err = el.Run(ctx, func(lctx context.Context) {
				// The outbox delivers while this replica leads: on a shared
				// store (kubernetes) the next leader takes over its claims.
				d.leading.Store(true)
				defer d.leading.Store(false)
				var ob sync.WaitGroup
				ob.Go(func() { _ = d.outbox.Run(lctx) })
				_ = d.ctl.Run(lctx)
				ob.Wait()
			})
			if err == nil {
				return
			}
		}
		d.health.setExtra(what, err.Error())
		d.log.Error("leader election cannot run; this replica does not act until it can", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(kubeRetry):
		}
	}
}

// Serve runs the daemon (Run) and its HTTP handler on ln until ctx ends,
// reloading the policy from policyFile when it changes or on SIGHUP (""
// : no reload).
func (d *Daemon) Serve(ctx context.Context, ln net.Listener, policyFile string) error {
	srv := server.NewHTTPServer(d.handler, server.DefaultLimits)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("http server", "err", err)
		}
	}()
	if policyFile != "" {
		go d.WatchPolicy(ctx, policyFile)
	}
	err := d.Run(ctx)
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shut)
	return err
}
