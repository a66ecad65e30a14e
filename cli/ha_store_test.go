package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/evidence/s3"
	"github.com/rewind-sre/rewind/executor/kubernetes"
	"github.com/rewind-sre/rewind/internal/testenv"
	kstore "github.com/rewind-sre/rewind/store/kubernetes"
)

// keyReceiver is a webhook receiver that counts deliveries per notice key.
type keyReceiver struct {
	mu   sync.Mutex
	keys []string
}

func (k *keyReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var p struct{ Key string }
	if json.Unmarshal(body, &p) != nil || p.Key == "" {
		http.Error(w, "bad payload", http.StatusBadRequest)
		return
	}
	k.mu.Lock()
	k.keys = append(k.keys, p.Key)
	k.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (k *keyReceiver) got() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.keys)
}

// TestTwoReplicasSharedStateLeaderKilled: two `rewind serve` replicas with
// leader election, the kubernetes store and evidence in a real MinIO, on the
// real control plane. The canary turns bad; the leader is killed with
// SIGKILL mid-rollback and its local state directory deleted; the other
// replica finishes the rollback from the shared journal (exactly one undo).
// `rewind history` and the Rollback object show it succeeded, the evidence
// is readable from the bucket, and each notice reached the receiver once.
func TestTwoReplicasSharedStateLeaderKilled(t *testing.T) {
	e := setupRollback(t)
	m := testenv.StartMinIO(t)
	m.CreateBucket("evidence")
	accessKey, secretKey := m.WriteCredentials()
	rcv := &keyReceiver{}
	hook := httptest.NewServer(rcv)
	defer hook.Close()
	text, _ := os.ReadFile(e.policy)
	fast := strings.Replace(string(text), "interval: 30s", "interval: 2s", 1)
	fast = strings.Replace(fast, "      evidence: { logTailLines: 10000 }\n", "      evidence: { logTailLines: 10000 }\n    notify: [hook]\n", 1)
	fast += "notifiers:\n  hook:\n    webhook: { url: '" + hook.URL + "' }\n"
	if err := os.WriteFile(e.policy, []byte(fast), 0o644); err != nil {
		t.Fatal(err)
	}
	storeAt := "kubernetes:" + e.ns
	daemons, stateDirs := map[string]*child{}, map[string]string{}
	for _, id := range []string{"replica-a", "replica-b"} {
		stateDirs[id] = t.TempDir()
		daemons[id] = startDaemon(t, id, "--policy", e.policy, "--listen", "127.0.0.1:0",
			"--store", storeAt, "--store-kubeconfig", e.kubeconfig, "--evidence", filepath.Join(stateDirs[id], "evidence"),
			"--evidence-bucket", "s3://evidence/rewind/", "--evidence-endpoint", m.Endpoint, "--evidence-insecure",
			"--evidence-access-key-file", accessKey, "--evidence-secret-key-file", secretKey,
			"--leader-elect", "--lease-namespace", e.ns, "--lease-kubeconfig", e.kubeconfig, "--identity", id,
			"--lease-duration", "3s", "--renew-deadline", "2s", "--retry-period", "500ms")
	}
	ctx := context.Background()
	leader := waitFor(t, time.Minute, "a leader", func() (string, bool) {
		l, err := e.cs.CoordinationV1().Leases(e.ns).Get(ctx, "rewind-leader", metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return "", false
		}
		return *l.Spec.HolderIdentity, true
	})
	t.Logf("%s leads", leader)

	e.mesh.SetErrorRate("canary", 0.5)
	fenced := waitFor(t, 2*time.Minute, "the leader to fence the Deployment", func() (string, bool) {
		d, err := e.cs.AppsV1().Deployments(e.ns).Get(ctx, "dwcp-canary", metav1.GetOptions{})
		if err != nil || d.Annotations[kubernetes.AnnotationRollbackState] != kubernetes.FenceActive {
			return "", false
		}
		return d.Annotations[kubernetes.AnnotationRollback], true
	})
	_ = daemons[leader].cmd.Process.Kill() // SIGKILL, mid-rollback
	_ = daemons[leader].cmd.Wait()
	if err := os.RemoveAll(stateDirs[leader]); err != nil { // the pod and its emptyDir are gone
		t.Fatal(err)
	}
	t.Logf("killed %s while rollback %s held the fence, and deleted its state directory", leader, fenced)

	cfg, err := clientcmd.BuildConfigFromFlags("", e.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kstore.New(cfg, e.ns, kstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var rb *rewind.Rollback
	waitFor(t, 3*time.Minute, "the other replica to finish the rollback in the shared store", func() (string, bool) {
		rb, err = st.Get(ctx, fenced)
		return "", err == nil && rb.State != rewind.RollbackRunning
	})
	if rb.State != rewind.RollbackSucceeded {
		t.Fatalf("rollback %s: %s (%s)", rb.ID, rb.State, rb.Error)
	}
	j, _ := st.Journal(ctx, fenced)
	resumed := slices.ContainsFunc(j, func(e rewind.JournalEntry) bool { return e.Detail == "resumed" })
	if !resumed {
		t.Errorf("the journal does not show the rollback resumed by the other replica: %+v", j)
	}
	d, err := e.cs.AppsV1().Deployments(e.ns).Get(ctx, "dwcp-canary", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rev := d.Annotations["deployment.kubernetes.io/revision"]; rev != "3" || *d.Spec.Replicas != 0 ||
		d.Annotations[kubernetes.AnnotationRollbackState] != kubernetes.FenceDone {
		t.Fatalf("revision %s (want 3: one undo), replicas %d, fence %s", rev, *d.Spec.Replicas, d.Annotations[kubernetes.AnnotationRollbackState])
	}

	// rewind history on any machine with access to the cluster.
	t.Setenv("KUBECONFIG", e.kubeconfig)
	if code, out, errOut := live("history", "--store", storeAt); code != 0 || !strings.Contains(out, fenced) || !strings.Contains(out, "succeeded") {
		t.Errorf("rewind history --store %s: %d\n%s%s", storeAt, code, out, errOut)
	}
	if code, out, errOut := live("postmortem", fenced, "--store", storeAt); code != 0 || !strings.Contains(out, "s3://evidence/rewind/"+fenced) {
		t.Errorf("rewind postmortem: %d\n%s%s", code, out, errOut)
	}

	// The evidence is in the bucket, the post-mortem draft with it.
	if want := "s3://evidence/rewind/" + fenced + "/"; rb.Evidence != want {
		t.Errorf("Rollback.Evidence = %q, want %q", rb.Evidence, want)
	}
	bucket, err := s3.New(s3.Config{Endpoint: m.Endpoint, Bucket: "evidence", Prefix: "rewind/", Insecure: true, AccessKeyFile: accessKey, SecretKeyFile: secretKey})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the post-mortem draft in the bucket", func() (string, bool) {
		files, err := bucket.Files(ctx, fenced)
		return "", err == nil && slices.Contains(files, "INDEX.md") && slices.Contains(files, "decision.json") && slices.Contains(files, "POSTMORTEM.md")
	})

	// Each notice once: decided (by the killed leader, most likely) and
	// completed (by the other).
	waitFor(t, 2*time.Minute, "the completion notice (after the killed leader's claim, if any, expired)", func() (string, bool) {
		return "", slices.Contains(rcv.got(), "rollback-completed/"+fenced)
	})
	got := rcv.got()
	for _, k := range []string{"rollback-decided/" + fenced, "rollback-completed/" + fenced} {
		if n := count(got, k); n != 1 {
			t.Errorf("%s delivered %d times, want once (all: %v)", k, n, got)
		}
	}
}

func count(ss []string, s string) int {
	n := 0
	for _, x := range ss {
		if x == s {
			n++
		}
	}
	return n
}
