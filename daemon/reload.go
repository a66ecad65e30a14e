package daemon

import (
	"context"
	"maps"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
)

// watchEvery is how often WatchPolicy looks at the file's modification time.
const watchEvery = 2 * time.Second

// WatchPolicy reloads the policy file on SIGHUP and when it changes, until
// ctx ends. A policy that fails validation keeps the previous one running:
// it is logged, counted (rewind_policy_reloads_total{result="invalid"}) and
// announced to every system's notifiers (policy-refused).
func (d *Daemon) WatchPolicy(ctx context.Context, file string) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(watchEvery)
	defer tick.Stop()
	last := modTime(file)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		case <-tick.C:
			if mt := modTime(file); mt.Equal(last) {
				continue
			}
		}
		last = modTime(file)
		d.Reload(ctx, file)
	}
}

// Reload loads the policy file and applies it; see WatchPolicy.
func (d *Daemon) Reload(ctx context.Context, file string) error {
	pol, err := policy.Load(file)
	if err == nil {
		err = d.Apply(pol)
	}
	if err != nil {
		d.metrics.PolicyReloads.WithLabelValues("invalid").Inc()
		d.log.Error("policy reload refused; the previous policy keeps running", "file", file, "err", err.Error())
		d.refused(ctx, file, err)
		return err
	}
	d.metrics.PolicyReloads.WithLabelValues("ok").Inc()
	d.log.Info("policy reloaded", "file", file, "hash", pol.Hash, "systems", len(pol.Systems))
	return nil
}

// refused announces a refused policy to every system of the one in force.
// With replicas only the leader announces it: every replica refuses the
// same file, and a shared store would deliver each replica's notice.
func (d *Daemon) refused(ctx context.Context, file string, err error) {
	if d.opt.Election != nil && !d.leading.Load() {
		return
	}
	pol := d.Policy()
	names := make(map[string]bool, len(pol.Systems))
	for _, s := range pol.Systems {
		names[s.Name] = true
	}
	for _, name := range slices.Sorted(maps.Keys(names)) {
		d.events.Publish(ctx, rewind.Event{Kind: rewind.EventPolicyRefused, System: name, At: d.opt.Now(),
			Reason: "the changed policy " + file + " was refused; the previous one keeps running: " + err.Error()})
	}
}

func modTime(file string) time.Time {
	fi, err := os.Stat(file)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}
