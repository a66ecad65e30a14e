package kubernetes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/rewind-sre/rewind/executor/kubernetes/kubetest"
	"github.com/rewind-sre/rewind/policy"
)

func policy0(ns, name string) policy.Kubernetes {
	return policy.Kubernetes{Namespace: ns, Deployment: name}
}

func entry(idx *Index, path string) *IndexEntry {
	for i := range idx.Files {
		if idx.Files[i].Path == path {
			return &idx.Files[i]
		}
	}
	return nil
}

// testEvidence: the bundle after undo and evidence holds the objects, every
// container's log (and the previous one's after a restart) of the pods
// before the undo and now, events in time order, the decision, and an
// index that lists every file with its size — and what it could not get.
func (e *env) testEvidence(t *testing.T) {
	ns := kubetest.Namespace(t, e.admin)
	kubetest.CanaryDeployment(t, e.admin, ns, "web", kubetest.Canary{Containers: []string{"web", "proxy"}})
	ctx := ctxFor(t, time.Minute)
	badPod := e.restartFirstPod(t, ns, "web")
	// A pod of the canary on a node that is gone: its logs cannot be had.
	stray := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-stray", Namespace: ns, Labels: map[string]string{"app": "web", "track": "canary"}},
		Spec: corev1.PodSpec{NodeName: "ghost-node",
			Containers: []corev1.Container{{Name: "web", Image: kubetest.ImageV2}}},
	}
	if _, err := e.admin.CoreV1().Pods(ns).Create(ctx, stray, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	tg, dir := e.target(t, ns, "web")
	rb := rollback()
	if _, err := tg.Undo().Do(ctx, rb); err != nil {
		t.Fatalf("Undo: %v", err)
	}
	res, err := tg.Evidence().Do(ctx, rb)
	if err != nil {
		t.Fatalf("Evidence: %v", err)
	}
	t.Logf("evidence: %s", res.Detail)
	bundle := filepath.Join(dir, rb.ID)
	if res.Facts["bundle"] != bundle || res.Skipped {
		t.Fatalf("result %+v; want bundle %s", res, bundle)
	}
	idx, err := ReadIndex(bundle)
	if err != nil {
		t.Fatal(err)
	}

	// Every file is in the index with its size, and every indexed file exists.
	listed := map[string]IndexEntry{}
	for _, f := range idx.Files {
		listed[f.Path] = f
	}
	err = filepath.WalkDir(bundle, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(bundle, p)
		rel = filepath.ToSlash(rel)
		if rel == IndexFile || rel == IndexMarkdown {
			return nil
		}
		info, _ := d.Info()
		if f, ok := listed[rel]; !ok || f.Missing || f.Bytes != info.Size() || f.What == "" {
			t.Errorf("file %s (%d bytes) indexed as %+v", rel, info.Size(), f)
		}
		delete(listed, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, f := range listed {
		if !f.Missing {
			t.Errorf("indexed %s does not exist", p)
		}
	}

	mustContain := func(rel string, want ...string) {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(bundle, rel))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return
		}
		for _, w := range want {
			if !strings.Contains(string(data), w) {
				t.Errorf("%s does not contain %q:\n%s", rel, w, data)
			}
		}
	}
	mustContain("deployment.yaml", "kind: Deployment", "image: "+kubetest.ImageV1, AnnotationUndo)
	mustContain("replicasets.yaml", "kind: ReplicaSet", kubetest.ImageV1, kubetest.ImageV2)
	mustContain("pods.yaml", "kind: Pod", kubetest.ImageV1)
	mustContain("decision.json", `"firing": [`, "error-rate")
	mustContain("events.yaml", "kind: Event", "ScalingReplicaSet")
	mustContain(PreUndoDir+"/pods.yaml", kubetest.ImageV2, badPod)
	for _, c := range []string{"web", "proxy"} {
		mustContain(PreUndoDir+"/logs/"+badPod+"/"+c+".log", "container started")
	}
	mustContain(PreUndoDir+"/logs/"+badPod+"/web.previous.log", "previous container exited")
	if data, _ := os.ReadFile(filepath.Join(bundle, "INDEX.md")); !strings.Contains(string(data), "## Not collected") {
		t.Errorf("INDEX.md does not say what was not collected:\n%s", data)
	}
	// The running pods' logs are there; the stray pod's are noted missing.
	pods, _ := e.admin.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	for _, p := range pods.Items {
		rel := "logs/" + p.Name + "/web.log"
		if p.Name == stray.Name {
			if f := entry(idx, rel); f == nil || !f.Missing || f.Error == "" {
				t.Errorf("the stray pod's log is indexed as %+v; want missing with the error", f)
			}
			continue
		}
		if p.DeletionTimestamp == nil {
			mustContain(rel, "container started")
		}
	}
	// Events are in time order.
	txt, _ := os.ReadFile(filepath.Join(bundle, "events.txt"))
	var prev string
	for _, line := range strings.Split(strings.TrimSpace(string(txt)), "\n") {
		ts, _, _ := strings.Cut(line, "\t")
		if ts < prev {
			t.Errorf("events out of order: %s after %s", ts, prev)
		}
		prev = ts
	}

	again, err := tg.Evidence().Do(ctx, rb)
	if err != nil || !again.Skipped {
		t.Errorf("second Do = %+v, %v; want skipped", again, err)
	}
}

// restartFirstPod marks container "web" of one of the Deployment's pods
// restarted once (kwok then serves the previous log) and returns its name.
func (e *env) restartFirstPod(t *testing.T, ns, app string) string {
	t.Helper()
	ctx := ctxFor(t, time.Minute)
	pods, err := e.admin.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("pods of %s: %v", app, err)
	}
	name := pods.Items[0].Name
	err = retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		p, err := e.admin.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for i := range p.Status.ContainerStatuses {
			if p.Status.ContainerStatuses[i].Name == "web" {
				p.Status.ContainerStatuses[i].RestartCount = 1
			}
		}
		_, err = e.admin.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("marking pod %s restarted: %v", name, err)
	}
	return name
}
