package cli

import (
	"context"
	"encoding/json"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/executor/kubernetes"
	"github.com/rewind-sre/rewind/executor/kubernetes/kubetest"
)

// child is `rewind serve` as a child process (the test binary, see TestMain).
type child struct {
	id  string
	cmd *osexec.Cmd
	log string
}

func startDaemon(t *testing.T, id string, args ...string) *child {
	t.Helper()
	return startCommand(t, id, append([]string{"serve"}, args...)...)
}

// startCommand runs the command line args as a child process (see
// TestMain), its output in a log file; the test's end kills it.
func startCommand(t *testing.T, id string, args ...string) *child {
	t.Helper()
	a, _ := json.Marshal(args)
	d := &child{id: id, cmd: osexec.Command(os.Args[0], "-test.run=^$"), log: filepath.Join(t.TempDir(), id+".log")}
	f, err := os.Create(d.log)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Env = append(os.Environ(), "REWIND_CLI_CHILD="+string(a))
	d.cmd.Stdout, d.cmd.Stderr = f, f
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		if d.cmd.ProcessState == nil {
			_ = d.cmd.Wait()
		}
		f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(d.log)
			t.Logf("---- daemon %s ----\n%s", id, b)
		}
	})
	return d
}

// TestTwoDaemonsOneRollbackLeaderKilled: two replicas with leader election
// on the real control plane; the canary turns bad; the leader is killed with
// SIGKILL as soon as it has fenced the Deployment; the other replica takes
// the Lease, adopts the rollback from the fence and finishes it, with
// exactly one undo.
func TestTwoDaemonsOneRollbackLeaderKilled(t *testing.T) {
	e := setupRollback(t)
	text, _ := os.ReadFile(e.policy)
	if err := os.WriteFile(e.policy, []byte(strings.Replace(string(text), "interval: 30s", "interval: 2s", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	daemons := map[string]*child{}
	for _, id := range []string{"replica-a", "replica-b"} {
		daemons[id] = startDaemon(t, id, "--policy", e.policy, "--listen", "127.0.0.1:0",
			"--store", filepath.Join(t.TempDir(), id+".db"), "--evidence", e.evidence,
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
	t.Logf("killed %s while rollback %s held the fence", leader, fenced)

	waitFor(t, 2*time.Minute, "the other replica to finish the rollback", func() (string, bool) {
		d, err := e.cs.AppsV1().Deployments(e.ns).Get(ctx, "dwcp-canary", metav1.GetOptions{})
		if err != nil || d.Annotations[kubernetes.AnnotationRollbackState] != kubernetes.FenceDone {
			return "", false
		}
		return "", true
	})
	d, err := e.cs.AppsV1().Deployments(e.ns).Get(ctx, "dwcp-canary", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rev, id := d.Annotations["deployment.kubernetes.io/revision"], d.Annotations[kubernetes.AnnotationRollback]; rev != "3" || id != fenced ||
		*d.Spec.Replicas != 0 || d.Spec.Template.Spec.Containers[0].Image != kubetest.ImageV1 {
		t.Fatalf("revision %s (want 3: one undo), fence %s (want %s), replicas %d", rev, id, fenced, *d.Spec.Replicas)
	}
	l, _ := e.cs.CoordinationV1().Leases(e.ns).Get(ctx, "rewind-leader", metav1.GetOptions{})
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == leader {
		t.Fatalf("the killed replica still holds the Lease")
	}
}

// waitFor polls cond every 100 ms until it holds or the bound passes.
func waitFor(t *testing.T, bound time.Duration, what string, cond func() (string, bool)) string {
	t.Helper()
	deadline := time.Now().Add(bound)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		if v, ok := cond(); ok {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", bound, what)
		}
	}
	return ""
}

// baseURL waits for the child's "listening on" line and returns its URL.
func (c *child) baseURL(t *testing.T) string {
	t.Helper()
	return waitFor(t, 30*time.Second, c.id+" listening", func() (string, bool) {
		b, _ := os.ReadFile(c.log)
		if m := listening.FindStringSubmatch(string(b)); m != nil {
			return m[1], true
		}
		return "", false
	})
}

// TestServeSIGTERMMidRollback: SIGTERM to `rewind serve` in the middle of
// an operator's rollback on the real control plane: the process says so
// and exits well within the shipped grace period (60 s), the rollback
// stays in the journal, and the next process on the store resumes and
// finishes it, with exactly one undo.
func TestServeSIGTERMMidRollback(t *testing.T) {
	e := setupRollback(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	const token = "test-token-0123456789"
	os.WriteFile(tokenFile, []byte(token), 0o600)
	args := []string{"--policy", e.policy, "--listen", "127.0.0.1:0", "--store", e.store, "--evidence", e.evidence, "--token-file", tokenFile}
	first := startDaemon(t, "first", args...)
	base := first.baseURL(t)
	if code, body := call(t, "POST", base+"/api/v1/rollbacks", token, `{"system":"dwcp-manager","reason":"customer-escalation"}`); code != 202 {
		t.Fatalf("manual rollback: %d %s", code, body)
	}
	// The drain waits for the canary's traffic to fall: mid-rollback.
	waitFor(t, time.Minute, "a step under way", func() (string, bool) {
		_, body := call(t, "GET", base+"/api/v1/rollbacks", token, "")
		var list struct{ Rollbacks []rewind.Rollback }
		_ = json.Unmarshal([]byte(body), &list)
		if len(list.Rollbacks) != 1 {
			return "", false
		}
		s := list.Rollbacks[0].Step(rewind.StepDrain)
		return "", s != nil && s.State == rewind.StepRunning
	})
	sent := time.Now()
	if err := first.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- first.cmd.Wait() }()
	select {
	case <-exited:
	case <-time.After(60 * time.Second):
		t.Fatal("rewind serve did not exit within the 60 s grace period after SIGTERM")
	}
	took := time.Since(sent)
	t.Logf("exited %s after SIGTERM", took.Round(time.Millisecond))
	if took > 30*time.Second {
		t.Errorf("exit took %s: not well within the 60 s grace period", took)
	}
	log, _ := os.ReadFile(first.log)
	if !strings.Contains(string(log), "shutting down mid-rollback") || !strings.Contains(string(log), "terminated") {
		t.Errorf("the log must say that it stops mid-rollback, and why:\n%s", log)
	}
	_, hist, _ := live("history", "--store", e.store)
	if !strings.Contains(hist, "running") {
		t.Fatalf("the rollback must stay in the journal, running:\n%s", hist)
	}

	second := startDaemon(t, "second", args...)
	base = second.baseURL(t)
	waitFor(t, 2*time.Minute, "the resumed rollback to finish", func() (string, bool) {
		_, body := call(t, "GET", base+"/api/v1/rollbacks", token, "")
		return "", strings.Contains(body, `"state": "succeeded"`)
	})
	d, err := e.cs.AppsV1().Deployments(e.ns).Get(context.Background(), "dwcp-canary", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rev := d.Annotations["deployment.kubernetes.io/revision"]; rev != "3" || d.Spec.Template.Spec.Containers[0].Image != kubetest.ImageV1 {
		t.Fatalf("revision %s, image %s: want exactly one undo to %s", rev, d.Spec.Template.Spec.Containers[0].Image, kubetest.ImageV1)
	}
	_, hist, _ = live("history", "--store", e.store)
	if n := strings.Count(hist, "rb-"); n != 1 {
		t.Fatalf("%d rollbacks in the journal, want 1:\n%s", n, hist)
	}
}
