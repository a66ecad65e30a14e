package kubernetes

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// maxLogBytes caps one container's log in the bundle, whatever its tail.
const maxLogBytes = 16 << 20

// IndexEntry is one file of an evidence bundle, or one thing that could
// not be collected (Missing, with the Error that stopped it).
type IndexEntry struct {
	Path    string `json:"path"` // relative to the bundle, with slashes
	Bytes   int64  `json:"bytes"`
	What    string `json:"what"`
	Missing bool   `json:"missing,omitempty"`
	Error   string `json:"error,omitempty"`
}

// collector writes files under dir/sub and remembers each one, and each
// thing it could not collect.
type collector struct {
	dir, sub string
	entries  []IndexEntry
}

func (c *collector) rel(name string) string { return path.Join(filepath.ToSlash(c.sub), name) }

// file writes data to name; a failed write is recorded as missing.
func (c *collector) file(name, what string, data []byte) {
	p := filepath.Join(c.dir, filepath.FromSlash(c.rel(name)))
	err := os.MkdirAll(filepath.Dir(p), 0o750)
	if err == nil {
		err = os.WriteFile(p, data, 0o640)
	}
	if err != nil {
		c.miss(name, what, err)
		return
	}
	c.entries = append(c.entries, IndexEntry{Path: c.rel(name), Bytes: int64(len(data)), What: what})
}

// miss records what could not be collected, and why.
func (c *collector) miss(name, what string, err error) {
	c.entries = append(c.entries, IndexEntry{Path: c.rel(name), What: what, Missing: true, Error: err.Error()})
}

// missing counts the entries that were not collected.
func (c *collector) missing() int {
	n := 0
	for _, e := range c.entries {
		if e.Missing {
			n++
		}
	}
	return n
}

// objects writes Kubernetes objects as a multi-document YAML file, with
// their kind and apiVersion and without managedFields.
func (c *collector) objects(name, what string, gvk schema.GroupVersionKind, objs []metav1.Object) {
	var out []byte
	for _, o := range objs {
		o.SetManagedFields(nil)
		if tm, ok := o.(interface{ GetObjectKind() schema.ObjectKind }); ok {
			tm.GetObjectKind().SetGroupVersionKind(gvk)
		}
		data, err := yaml.Marshal(o)
		if err != nil {
			c.miss(name, what, fmt.Errorf("%s %s: %w", gvk.Kind, o.GetName(), err))
			return
		}
		out = append(append(out, "---\n"...), data...)
	}
	c.file(name, what, out)
}

// podLogs writes the log tail of every container of pods, and of the
// previous instance of each container that restarted.
func (c *collector) podLogs(ctx context.Context, t *Target, pods []corev1.Pod) {
	for i := range pods {
		p := &pods[i]
		restarts := map[string]int32{}
		for _, s := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			restarts[s.Name] = s.RestartCount
		}
		containers := append(append([]corev1.Container(nil), p.Spec.InitContainers...), p.Spec.Containers...)
		for _, ct := range containers {
			name := path.Join("logs", p.Name, ct.Name+".log")
			what := fmt.Sprintf("log of container %s of pod %s (last %d lines)", ct.Name, p.Name, t.tailLines)
			c.podLog(ctx, t, p.Name, ct.Name, false, name, what)
			if n := restarts[ct.Name]; n > 0 {
				name := path.Join("logs", p.Name, ct.Name+".previous.log")
				what := fmt.Sprintf("log of the previous instance of container %s of pod %s (restarted %d times; last %d lines)", ct.Name, p.Name, n, t.tailLines)
				c.podLog(ctx, t, p.Name, ct.Name, true, name, what)
			}
		}
	}
}

func (c *collector) podLog(ctx context.Context, t *Target, pod, container string, previous bool, name, what string) {
	tail, limit := t.tailLines, int64(maxLogBytes)
	req := t.client.CoreV1().Pods(t.namespace).GetLogs(pod, &corev1.PodLogOptions{
		Container: container, Previous: previous, TailLines: &tail, LimitBytes: &limit,
	})
	rc, err := req.Stream(ctx)
	if apierrors.IsNotFound(err) {
		err = fmt.Errorf("the pod went away before its log was read (e.g. scaled down): %w", err)
	}
	if err != nil {
		c.miss(name, what, err)
		return
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxLogBytes))
	if err != nil {
		c.miss(name, what, fmt.Errorf("reading the log: %w (%d bytes read)", err, len(data)))
		return
	}
	c.file(name, what, data)
}

// pods lists the pods the Deployment's selector selects.
func (t *Target) pods(ctx context.Context, sel *metav1.LabelSelector) ([]corev1.Pod, error) {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, fmt.Errorf("%s: selector: %w", t.ref(), err)
	}
	list, err := t.client.CoreV1().Pods(t.namespace).List(ctx, metav1.ListOptions{LabelSelector: s.String()})
	if err != nil {
		return nil, fmt.Errorf("listing the pods of %s: %w", t.ref(), err)
	}
	return list.Items, nil
}

func podObjects(pods []corev1.Pod) []metav1.Object {
	out := make([]metav1.Object, len(pods))
	for i := range pods {
		out[i] = &pods[i]
	}
	return out
}
