package daemon

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/gitops"
)

// DefaultGitOpsEvery is how often each system's GitOps owners are looked
// at (Options.GitOpsEvery).
const DefaultGitOpsEvery = time.Minute

// gitopsGap is the least time between two systems' looks: a sweep of many
// systems is spread over more than the period rather than bursting.
const gitopsGap = 200 * time.Millisecond

// gitopsCheckTimeout bounds one system's look (cluster reads, and for
// automatic resume one shallow clone).
const gitopsCheckTimeout = 30 * time.Second

// gitopsWatch is what the daemon knows of each system's GitOps owners: the
// last look (for the API and the UI), and why each suspension it may lift
// automatically is still in place (logged when it changes).
type gitopsWatch struct {
	mu       sync.Mutex
	statuses map[string]*gitops.Status // by system
	waiting  map[string]string         // by rollback id
}

// GitOpsStatus is the last look at system's GitOps owners; nil when the
// system has none to look at (no Kubernetes target) or was not looked at
// yet.
func (d *Daemon) GitOpsStatus(system string) *gitops.Status {
	d.gitops.mu.Lock()
	defer d.gitops.mu.Unlock()
	return d.gitops.statuses[system]
}

func (d *Daemon) setGitOpsStatus(system string, st *gitops.Status) {
	d.gitops.mu.Lock()
	defer d.gitops.mu.Unlock()
	if d.gitops.statuses == nil {
		d.gitops.statuses = map[string]*gitops.Status{}
	}
	d.gitops.statuses[system] = st
}

// acting reports whether this replica acts now: alone, or as the leader.
func (d *Daemon) acting() bool { return d.opt.Election == nil || d.leading.Load() }

// watchGitOps looks at every system's GitOps owners, one system at a
// time, spread over GitOpsEvery: the status the API and the UI show, and —
// while this replica acts, for systems whose policy says
// rollback.gitops.autoResume — automatic resume of the owners that a
// finished rollback suspended, once the revert is in Git.
func (d *Daemon) watchGitOps(ctx context.Context) {
	var (
		gen     *generation
		systems map[string]*gitops.System
		names   []string
	)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := 0; ; i++ {
		if g := d.gen.Load(); g != gen {
			gen, systems, names = g, map[string]*gitops.System{}, nil
			statuses := map[string]*gitops.Status{}
			for name, b := range g.systems {
				if b.sys.Rollback.GitOps.None {
					statuses[name] = gitops.NoneStatus()
				} else if s := GitOpsSystem(b.sys, g.kube); s != nil {
					systems[name], names = s, append(names, name)
					statuses[name] = d.GitOpsStatus(name) // kept until looked at again
				}
			}
			slices.Sort(names)
			d.gitops.mu.Lock()
			d.gitops.statuses = statuses
			d.gitops.mu.Unlock()
			i = 0
		}
		gap := d.opt.GitOpsEvery
		if len(names) > 0 {
			gap = max(d.opt.GitOpsEvery/time.Duration(len(names)), gitopsGap)
		}
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		timer.Reset(gap)
		if len(names) == 0 {
			continue
		}
		name := names[i%len(names)]
		d.lookGitOps(ctx, name, systems[name])
	}
}

// lookGitOps refreshes one system's status and, when this replica acts
// and the policy says autoResume, resumes what finished rollbacks of it
// suspended once the revert is in Git.
func (d *Daemon) lookGitOps(ctx context.Context, name string, s *gitops.System) {
	ctx, cancel := context.WithTimeout(ctx, gitopsCheckTimeout)
	defer cancel()
	st := s.Status(ctx, d.opt.Now())
	d.setGitOpsStatus(name, st)
	if !s.GitOps.AutoResume || !d.acting() || ctx.Err() != nil {
		return
	}
	for _, id := range st.Suspended() {
		if d.autoResume(ctx, s, id) {
			d.setGitOpsStatus(name, s.Status(ctx, d.opt.Now()))
		}
	}
}

// autoResume resumes the owners rollback id suspended if the revert is in
// Git, and reports whether it resumed any.
func (d *Daemon) autoResume(ctx context.Context, s *gitops.System, id string) bool {
	rb, err := d.opt.Store.Get(ctx, id)
	if err != nil {
		d.waitingGitOps(s.Name, id, fmt.Sprintf("not resumed automatically: rollback %s is not in this store (%v); resume by hand (%s)", id, err, s.ResumeHint()))
		return false
	}
	res, err := s.AutoResume(ctx, rb)
	switch {
	case err != nil && len(res.Resumed) == 0:
		d.waitingGitOps(s.Name, id, "automatic resume failed: "+err.Error())
		return false
	case len(res.Resumed) == 0:
		if res.Waiting != "" {
			d.waitingGitOps(s.Name, id, res.Waiting)
		}
		return false
	}
	d.gitops.mu.Lock()
	delete(d.gitops.waiting, id)
	d.gitops.mu.Unlock()
	why := fmt.Sprintf("automatically: the source revision %s no longer sets the image rollback %s rolled back from", res.Revision, id)
	if err != nil {
		why += "; but: " + err.Error()
	}
	d.publishResumed(ctx, rb, res.Resumed, why)
	return true
}

// waitingGitOps logs why a suspension stays, when that changes.
func (d *Daemon) waitingGitOps(system, id, why string) {
	d.gitops.mu.Lock()
	if d.gitops.waiting == nil {
		d.gitops.waiting = map[string]string{}
	}
	same := d.gitops.waiting[id] == why
	d.gitops.waiting[id] = why
	if len(d.gitops.waiting) > 4*len(d.gen.Load().systems)+16 {
		clear(d.gitops.waiting) // bounded; a reason still true is logged again
	}
	d.gitops.mu.Unlock()
	if !same {
		d.log.Info("the GitOps reconciler stays suspended", "system", system, "rollback", id, "why", why)
	}
}

// publishResumed says, in the log and as a notice, that the owners rb
// suspended were resumed, and why.
func (d *Daemon) publishResumed(ctx context.Context, rb *rewind.Rollback, resumed []gitops.Resumed, why string) {
	var what []string
	for _, r := range resumed {
		if r.Restored != "" {
			what = append(what, fmt.Sprintf("%s (%s restored)", r.Owner, r.Restored))
		}
	}
	if len(what) == 0 {
		return
	}
	reason := "resumed " + strings.Join(what, ", ") + " " + why
	d.log.Warn("GitOps reconciler resumed", "system", rb.System, "rollback", rb.ID, "resumed", what, "why", why)
	d.events.Publish(context.WithoutCancel(ctx), rewind.Event{Kind: rewind.EventGitOpsResumed, System: rb.System,
		RollbackID: rb.ID, Rollback: rb, Reason: reason, Links: Links(rb), At: d.opt.Now()})
}
