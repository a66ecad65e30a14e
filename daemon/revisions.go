package daemon

import (
	"context"
	"fmt"

	"github.com/rewind-sre/rewind/executor/kubernetes"
	"github.com/rewind-sre/rewind/ui"
	"github.com/rewind-sre/rewind/watch"
)

// Revisions lists the Deployment's revisions, newest first.
func (t *KubeTarget) Revisions(ctx context.Context) ([]kubernetes.Revision, error) {
	tg, err := t.get()
	if err != nil {
		return nil, err
	}
	return tg.Revisions(ctx)
}

// revisions is the web UI's list of the revisions of the Deployment a
// rollout-watch system watches, each noted with what the watch makes of
// it; nil for any other system.
func (d *Daemon) revisions(ctx context.Context, system string) ([]ui.Revision, error) {
	g := d.gen.Load()
	b, err := g.system(system)
	if err != nil || b.sys.Watch == nil || b.sys.Rollback.Kubernetes == nil {
		return nil, nil
	}
	k := *b.sys.Rollback.Kubernetes
	revs, err := g.kube(k.Kubeconfig).Target(k, "", 0, d.opt.Now).Revisions(ctx)
	if err != nil {
		return nil, err
	}
	var st *watch.Status
	for _, s := range d.ctl.Systems() {
		if s.Name == system {
			st = s.Watch
		}
	}
	out := make([]ui.Revision, len(revs))
	for i, r := range revs {
		out[i] = ui.Revision{Name: fmt.Sprintf("%d (%s)", r.Number, r.Hash), Image: r.Image, Created: r.Created, Current: r.Current,
			Note: watchNote(st, r.Hash) + fmt.Sprintf("ReplicaSet %s, %d replicas", r.ReplicaSet, r.Replicas)}
	}
	return out, nil
}

// watchNote says what the watch makes of the revision with pod-template-hash
// hash: the rollout it judges (or judged last), or the revision before it.
func watchNote(st *watch.Status, hash string) string {
	if st == nil || st.Rollout == nil || hash == "" {
		return ""
	}
	switch hash {
	case st.Rollout.Revision:
		if st.Ended != "" {
			return "rollout " + st.Ended + "; "
		}
		return fmt.Sprintf("rollout being watched (%s phase); ", st.Phase)
	case st.Rollout.Previous:
		return "the revision before the rollout; "
	}
	return ""
}
