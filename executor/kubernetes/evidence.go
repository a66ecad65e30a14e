package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/plan"
)

// Bundle files written by Evidence and Undo.
const (
	IndexFile      = "index.json" // Index of the files Evidence and Undo's snapshot wrote, and what they missed
	IndexMarkdown  = "INDEX.md"
	PreUndoDir     = "pre-undo" // Undo's snapshot of the bad revision's pods
	snapshotMaxDur = 10 * time.Second
)

// Evidence collects the canary's state into the rollback's evidence bundle
// (rb.Evidence, else <evidence dir>/<rollback id>): the Deployment, its
// ReplicaSets and pods as YAML, every container's log tail (and the
// previous instance's after a restart), the namespace's events about those
// objects sorted by time, the decision, and index.json / INDEX.md listing
// every file with its size and what it is — including Undo's pre-undo/
// snapshot of the bad revision's pods — and everything that could not be
// collected, with why. It reads the cluster and never writes to it.
//
// Collection goes on past what fails; Do fails only when ctx ends or no
// Kubernetes object could be read at all. The index is written last, so a
// bundle with an index is complete, and a re-run skips it.
type Evidence struct{ t *Target }

var _ rewind.Executor = (*Evidence)(nil)

// Index is the content of index.json.
type Index struct {
	Rollback   string       `json:"rollback"`
	System     string       `json:"system"`
	Reason     string       `json:"reason"`
	Requester  string       `json:"requester"`
	Manual     bool         `json:"manual,omitempty"` // no decision: a person asked for the rollback
	Deployment string       `json:"deployment"`
	Collected  time.Time    `json:"collected"`
	Files      []IndexEntry `json:"files"`
}

func (e *Evidence) Plan(_ context.Context, rb *rewind.Rollback) ([]rewind.Change, error) {
	dir := e.t.bundleDir(rb)
	if dir == "" {
		return nil, errors.New("no evidence directory configured")
	}
	return []rewind.Change{{Target: "filesystem", Action: "write", Detail: fmt.Sprintf(
		"evidence bundle %s: %s, its ReplicaSets, pods, container logs (last %d lines) and events; %s", dir, e.t.ref(), e.t.tailLines, IndexFile)}}, nil
}

func (e *Evidence) Do(ctx context.Context, rb *rewind.Rollback) (rewind.StepResult, error) {
	if err := ctx.Err(); err != nil {
		return rewind.StepResult{}, err
	}
	t := e.t
	dir := t.bundleDir(rb)
	if dir == "" {
		return rewind.StepResult{}, errors.New("no evidence directory configured")
	}
	facts := map[string]string{plan.FactBundle: dir}
	if idx, err := ReadIndex(dir); err == nil && idx.Rollback == rb.ID {
		return rewind.StepResult{Skipped: true, Facts: facts,
			Detail: fmt.Sprintf("evidence already collected in %s at %s", dir, idx.Collected.Format(time.RFC3339))}, nil
	}

	c := &collector{dir: dir}
	read := t.collect(ctx, c)
	if rb.Decision != nil {
		if data, err := json.MarshalIndent(rb.Decision, "", "  "); err != nil {
			c.miss("decision.json", "the decision", err)
		} else {
			c.file("decision.json", "the decision: triggers, resolved queries, values with timestamps, state history", append(data, '\n'))
		}
	}
	if err := ctx.Err(); err != nil {
		return rewind.StepResult{Facts: facts}, fmt.Errorf("collecting evidence into %s: %w", dir, err)
	}
	if read == 0 {
		return rewind.StepResult{Facts: facts}, fmt.Errorf("collecting evidence of %s: no object could be read: %s", t.ref(), c.entries[0].Error)
	}
	if pre, err := ReadIndex(filepath.Join(dir, PreUndoDir)); err == nil {
		c.entries = append(c.entries, pre.Files...)
		if info, err := os.Stat(filepath.Join(dir, PreUndoDir, IndexFile)); err == nil {
			c.entries = append(c.entries, IndexEntry{Path: PreUndoDir + "/" + IndexFile, Bytes: info.Size(),
				What: fmt.Sprintf("index of the snapshot Undo took before it replaced the bad revision's pods, at %s", pre.Collected.Format(time.RFC3339))})
		}
	}
	idx := t.index(rb, c.entries)
	if err := writeIndex(dir, idx, true); err != nil {
		return rewind.StepResult{Facts: facts}, err
	}
	missing := c.missing()
	facts["files"] = fmt.Sprint(len(c.entries) - missing)
	facts["missing"] = fmt.Sprint(missing)
	res := rewind.StepResult{Facts: facts, Detail: fmt.Sprintf("evidence of %s in %s: %d files", t.ref(), dir, len(c.entries)-missing)}
	if missing > 0 {
		res.Detail += fmt.Sprintf("; incomplete: %d not collected (see %s)", missing, IndexFile)
	}
	return res, nil
}

// collect writes the Deployment, its ReplicaSets, its pods and their logs,
// and the events about them. It returns how many reads succeeded.
func (t *Target) collect(ctx context.Context, c *collector) (read int) {
	var rss []*appsv1.ReplicaSet
	if d, err := t.get(ctx); err != nil {
		c.miss("deployment.yaml", "the canary Deployment", err)
	} else {
		read++
		c.objects("deployment.yaml", "the canary Deployment", appsv1.SchemeGroupVersion.WithKind("Deployment"), []metav1.Object{d})
		if rss, err = t.replicaSets(ctx, d); err != nil {
			c.miss("replicasets.yaml", "the Deployment's ReplicaSets", err)
		} else {
			read++
			objs := make([]metav1.Object, len(rss))
			for i, rs := range rss {
				objs[i] = rs
			}
			c.objects("replicasets.yaml", "the Deployment's ReplicaSets, oldest first", appsv1.SchemeGroupVersion.WithKind("ReplicaSet"), objs)
		}
		if pods, err := t.pods(ctx, d.Spec.Selector); err != nil {
			c.miss("pods.yaml", "the Deployment's pods", err)
		} else {
			read++
			c.objects("pods.yaml", fmt.Sprintf("the Deployment's %d pods", len(pods)), corev1.SchemeGroupVersion.WithKind("Pod"), podObjects(pods))
			c.podLogs(ctx, t, pods)
		}
	}
	if err := t.events(ctx, c, rss); err != nil {
		c.miss("events.yaml", "events about the Deployment, its ReplicaSets and pods", err)
	} else {
		read++
	}
	return read
}

// events writes the namespace's events about the Deployment, its
// ReplicaSets and their pods (by name: the pods of a ReplicaSet are named
// after it, so the bad revision's pods are found after they are gone),
// sorted by time, as YAML and as a one-line-per-event text.
func (t *Target) events(ctx context.Context, c *collector, rss []*appsv1.ReplicaSet) error {
	list, err := t.client.CoreV1().Events(t.namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing the events of namespace %s: %w", t.namespace, err)
	}
	prefixes := []string{t.name + "-"} // the Deployment is gone or unread: its name is all there is
	if len(rss) > 0 {
		prefixes = prefixes[:0]
		for _, rs := range rss {
			prefixes = append(prefixes, rs.Name+"-")
		}
	}
	about := func(o corev1.ObjectReference) bool {
		switch o.Kind {
		case "Deployment":
			return o.Name == t.name
		case "ReplicaSet", "Pod":
			for _, p := range prefixes {
				if strings.HasPrefix(o.Name+"-", p) {
					return true
				}
			}
		}
		return false
	}
	var evs []corev1.Event
	for _, ev := range list.Items {
		if about(ev.InvolvedObject) {
			evs = append(evs, ev)
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return eventTime(&evs[i]).Before(eventTime(&evs[j])) })
	objs := make([]metav1.Object, len(evs))
	var txt strings.Builder
	for i := range evs {
		ev := &evs[i]
		objs[i] = ev
		fmt.Fprintf(&txt, "%s\t%s\t%s\t%s/%s\t×%d\t%s\n", eventTime(ev).UTC().Format(time.RFC3339), ev.Type, ev.Reason,
			ev.InvolvedObject.Kind, ev.InvolvedObject.Name, max(ev.Count, 1), ev.Message)
	}
	c.objects("events.yaml", fmt.Sprintf("%d events about the Deployment, its ReplicaSets and pods, sorted by time", len(evs)), corev1.SchemeGroupVersion.WithKind("Event"), objs)
	c.file("events.txt", "the same events, one line each: time, type, reason, object, count, message", []byte(txt.String()))
	return nil
}

func (t *Target) index(rb *rewind.Rollback, files []IndexEntry) Index {
	return Index{Rollback: rb.ID, System: rb.System, Reason: rb.Reason, Requester: rb.Requester, Manual: rb.Decision == nil,
		Deployment: t.namespace + "/" + t.name, Collected: t.now().UTC(), Files: files}
}

// eventTime is when an event last happened, from the best field it has.
func eventTime(ev *corev1.Event) time.Time {
	switch {
	case !ev.EventTime.IsZero():
		return ev.EventTime.Time
	case !ev.LastTimestamp.IsZero():
		return ev.LastTimestamp.Time
	case !ev.FirstTimestamp.IsZero():
		return ev.FirstTimestamp.Time
	}
	return ev.CreationTimestamp.Time
}

// snapshot keeps the bad revision's pods (YAML and log tails) in the
// bundle's pre-undo/ directory before Undo replaces them, within a small
// part of ctx's time. It returns a summary for the step's facts, "" when
// no evidence directory is configured. Failures are recorded in the
// snapshot's own index, never returned.
func (t *Target) snapshot(ctx context.Context, rb *rewind.Rollback, d *appsv1.Deployment) string {
	dir := t.bundleDir(rb)
	if dir == "" {
		return ""
	}
	budget := snapshotMaxDur
	if dl, ok := ctx.Deadline(); ok {
		budget = min(budget, time.Until(dl)/4)
	}
	sctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	c := &collector{dir: dir, sub: PreUndoDir}
	pods, err := t.pods(sctx, d.Spec.Selector)
	if err != nil {
		c.miss("pods.yaml", "the canary's pods before the undo", err)
	} else {
		c.objects("pods.yaml", fmt.Sprintf("the canary's %d pods before the undo (%s)", len(pods), images(d)), corev1.SchemeGroupVersion.WithKind("Pod"), podObjects(pods))
		c.podLogs(sctx, t, pods)
	}
	idx := t.index(rb, c.entries)
	summary := fmt.Sprintf("%s: %d files, %d not collected", filepath.Join(dir, PreUndoDir), len(c.entries)-c.missing(), c.missing())
	if err := writeIndex(filepath.Join(dir, PreUndoDir), idx, false); err != nil {
		summary += "; " + err.Error()
	}
	return summary
}

// bundleDir is the rollback's evidence bundle, "" when none is configured.
func (t *Target) bundleDir(rb *rewind.Rollback) string {
	switch {
	case rb.Evidence != "":
		return rb.Evidence
	case t.evidenceDir != "":
		return filepath.Join(t.evidenceDir, rb.ID)
	}
	return ""
}

// ReadIndex reads the index.json of a bundle directory.
func ReadIndex(dir string) (*Index, error) {
	data, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		return nil, err
	}
	var idx Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, IndexFile), err)
	}
	return &idx, nil
}

// writeIndex writes INDEX.md (if markdown), then index.json through a
// rename: a bundle with an index.json is complete.
func writeIndex(dir string, idx Index, markdown bool) error {
	sort.SliceStable(idx.Files, func(i, j int) bool { return idx.Files[i].Path < idx.Files[j].Path })
	var md strings.Builder
	fmt.Fprintf(&md, "# Evidence of rollback %s (%s)\n\nReason: %s. Requested by %s", idx.Rollback, idx.System, idx.Reason, idx.Requester)
	if idx.Manual {
		md.WriteString(" (manual: no decision)")
	}
	fmt.Fprintf(&md, ".\n\n%s, collected %s.\n\n| file | bytes | what |\n|---|---|---|\n", idx.Deployment, idx.Collected.Format(time.RFC3339))
	var missing []IndexEntry
	for _, f := range idx.Files {
		if f.Missing {
			missing = append(missing, f)
			continue
		}
		fmt.Fprintf(&md, "| %s | %d | %s |\n", f.Path, f.Bytes, f.What)
	}
	if len(missing) > 0 {
		md.WriteString("\n## Not collected\n\n")
		for _, f := range missing {
			fmt.Fprintf(&md, "- %s (%s): %s\n", f.Path, f.What, f.Error)
		}
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	if markdown {
		if err := os.WriteFile(filepath.Join(dir, IndexMarkdown), []byte(md.String()), 0o640); err != nil {
			return err
		}
	}
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, IndexFile+".tmp")
	if err := os.WriteFile(tmp, append(data, '\n'), 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, IndexFile))
}
