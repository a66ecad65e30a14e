package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientset "k8s.io/client-go/kubernetes"

	"github.com/rewind-sre/rewind/daemon"
	"github.com/rewind-sre/rewind/executor/kubernetes/kubetest"
	"github.com/rewind-sre/rewind/internal/testenv"
	"github.com/rewind-sre/rewind/policy"
)

// imageV3 is the bad release of TestServeWatchUndoesABadRollout.
const imageV3 = "registry.example/web:v3"

// watchPolicy is a rollout-watch policy for Deployment ns/checkout, with
// the built-in watch policy's error triggers on 30-second windows (the test
// has minutes, not hours), its history the minute before the rollout.
func watchPolicy(ns, promURL, kubeconfig, hook string) string {
	sel := fmt.Sprintf(`namespace="%s",app="checkout"`, ns)
	return `apiVersion: rewind/v1
kind: Policy
systems:
  - name: checkout
    interval: 2s
    prometheus: { url: '` + promURL + `', timeout: 5s }
    watch:
      namespace: ` + ns + `
      deployment: checkout
      selector: '` + sel + `'
      duration: 10m
      discovery: kubernetes
      history: { window: 1m, seasons: [], minSeasons: 0 }
    traffic:
      query: 'sum(rate(http_requests_total{ {{selector}} }[30s]))'
      atLeast: 0.05
    triggers:
      - name: error-rate-high
        judge:
          test: proportion
          bad:   'sum(increase(http_requests_total{status=~"5..", {{selector}} }[30s]))'
          total: 'sum(increase(http_requests_total{ {{selector}} }[30s]))'
          minEffect: 1.5
          alpha: 0.01
        for: 4s
      - name: error-rate-ceiling
        judge:
          test: proportion
          bad:   'sum(increase(http_requests_total{status=~"5..", {{selector}} }[30s]))'
          total: 'sum(increase(http_requests_total{ {{selector}} }[30s]))'
          above: 0.03
          alpha: 0.001
        for: 0s
    rollback:
      mode: automatic
      kubernetes: { kubeconfig: '` + kubeconfig + `' }
      verify:
        query: |
          sum(rate(http_requests_total{status!~"5..", {{selector}} }[10s]))
            / sum(rate(http_requests_total{ {{selector}} }[10s]))
        condition: baseline >= 0.99
        for: 3s
        timeout: 1m
      evidence: { logTailLines: 100 }
    notify: [hook]
notifiers:
  hook:
    webhook: { url: '` + hook + `' }
`
}

// TestServeWatchUndoesABadRollout: `rewind serve` watches a plain
// Deployment on the real control plane (kwok). Its pods' metrics are
// served by a test exporter keyed by pod_template_hash and scraped by the
// real Prometheus. The Deployment is rolled to an image whose requests
// fail; the daemon finds the rollout from the API server, shows it in the
// API and /metrics, and undoes the Deployment to the previous revision
// through the durable plan — once, with evidence, verification and notices.
func TestServeWatchUndoesABadRollout(t *testing.T) {
	kube := testenv.StartKube(t)
	cs, err := clientset.NewForConfig(kube.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	ns := kubetest.Namespace(t, cs)
	// checkout at revision 2 (v2), 3 replicas, Ready by kwok.
	kubetest.CanaryDeployment(t, cs, ns, "checkout", kubetest.Canary{Replicas: 3})
	exporter := testenv.StartPodExporter(t, cs, ns, "app=checkout", 40)
	exporter.SetErrorRate(kubetest.ImageV2, 0.002)
	exporter.SetErrorRate(imageV3, 0.25)
	prom := testenv.StartPrometheusScraping(t, []string{exporter.Addr}, time.Second)
	src, err := daemon.NewPrometheus(policy.Prometheus{URL: prom.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// The minute before the rollout is its history: wait until Prometheus has it.
	testenv.Eventually(t, 2*time.Minute, "a minute of the service's requests in Prometheus", func() (bool, string) {
		v, err := src.Query(context.Background(), fmt.Sprintf(`sum(increase(http_requests_total{namespace=%q,app="checkout"}[1m]))`, ns), time.Now())
		return err == nil && len(v) == 1 && v[0].V > 40*50, fmt.Sprint(v, err)
	})

	hook := newReceiver(t)
	dir := t.TempDir()
	pol := filepath.Join(dir, "watch.yaml")
	if err := os.WriteFile(pol, []byte(watchPolicy(ns, prom.URL, kube.Kubeconfig(), hook.URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "token")
	const token = "test-token-0123456789"
	os.WriteFile(tokenFile, []byte(token+"\n"), 0o600)
	evidence := filepath.Join(dir, "evidence")
	base, logs := startServe(t, "--policy", pol, "--listen", "127.0.0.1:0", "--store", filepath.Join(dir, "rewind.db"), "--evidence", evidence, "--token-file", tokenFile, "--open-reads")

	// Idle before the release: no rollout being watched, nothing decided.
	testenv.Eventually(t, 30*time.Second, "a first evaluation", func() (bool, string) {
		_, body := call(t, "GET", base+"/api/v1/systems", token, "")
		return strings.Contains(body, `"lastEvaluation"`), body
	})

	// The bad release.
	kubetest.SetImage(t, cs, ns, "checkout", imageV3)
	type status struct {
		Systems []struct {
			Name  string
			Watch *struct {
				Rollout *struct{ Revision, Previous string }
				Phase   string
				Ended   string
				Watches int
			}
		}
	}
	var rollbacks struct {
		Rollbacks []struct{ ID, State, Reason string }
	}
	testenv.Eventually(t, 2*time.Minute, "a finished rollback", func() (bool, string) {
		_, body := call(t, "GET", base+"/api/v1/rollbacks", token, "")
		_ = json.Unmarshal([]byte(body), &rollbacks)
		_, sys := call(t, "GET", base+"/api/v1/systems", token, "")
		return len(rollbacks.Rollbacks) > 0 && rollbacks.Rollbacks[0].State != "running", "systems:\n" + sys + "\nlogs:\n" + logs.String()
	})
	_, detail := call(t, "GET", base+"/api/v1/rollbacks/"+rollbacks.Rollbacks[0].ID, token, "")
	if len(rollbacks.Rollbacks) != 1 || rollbacks.Rollbacks[0].State != "succeeded" || !strings.Contains(rollbacks.Rollbacks[0].Reason, "rollout of "+ns+"/checkout to revision") {
		t.Fatalf("rollbacks: %+v\n%s\nlogs:\n%s", rollbacks, detail, logs)
	}
	// Undone to the previous revision (v2), as revision 4; nothing scaled down, nothing drained.
	d, err := cs.AppsV1().Deployments(ns).Get(context.Background(), "checkout", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rev := d.Annotations["deployment.kubernetes.io/revision"]; rev != "4" || *d.Spec.Replicas != 3 || d.Spec.Template.Spec.Containers[0].Image != kubetest.ImageV2 {
		t.Fatalf("deployment: revision %s, replicas %d, image %s", rev, *d.Spec.Replicas, d.Spec.Template.Spec.Containers[0].Image)
	}
	var rb struct {
		Rollback struct {
			Steps []struct{ Name, State, Detail string }
		}
	}
	_ = json.Unmarshal([]byte(detail), &rb)
	steps := map[string]string{}
	for _, s := range rb.Rollback.Steps {
		steps[s.Name] = s.State
	}
	for name, want := range map[string]string{"drain": "skipped", "check-baseline": "skipped", "undo": "done", "scale-down": "skipped", "evidence": "done", "verify": "done"} {
		if steps[name] != want {
			t.Errorf("step %s: %s, want %s\n%s", name, steps[name], want, detail)
		}
	}
	if entries, _ := os.ReadDir(evidence); len(entries) == 0 {
		t.Error("no evidence bundle")
	}

	// The API and /metrics show the rollout and its end.
	var st status
	_, body := call(t, "GET", base+"/api/v1/systems", token, "")
	// Two watches: the release to v2 a minute before serve started (still in
	// its watch), then the bad one, from v2.
	rss, err := cs.AppsV1().ReplicaSets(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hashes := map[string]string{}
	for _, rs := range rss.Items {
		hashes[rs.Spec.Template.Spec.Containers[0].Image] = rs.Labels["pod-template-hash"]
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil || len(st.Systems) != 1 || st.Systems[0].Watch == nil || st.Systems[0].Watch.Rollout == nil ||
		st.Systems[0].Watch.Ended != "rolled back" || st.Systems[0].Watch.Watches != 2 ||
		st.Systems[0].Watch.Rollout.Revision != hashes[imageV3] || st.Systems[0].Watch.Rollout.Previous != hashes[kubetest.ImageV2] {
		t.Fatalf("systems (revisions by image %v): %s", hashes, body)
	}
	// The web UI's system page lists the revisions: 4 (v2 again: current,
	// the revision before the rollout), 3 (v3: the rollout rolled back), 1.
	_, page := call(t, "GET", base+"/systems/checkout", "", "")
	for _, want := range []string{"4 (" + hashes[kubetest.ImageV2] + ")", "<code>" + imageV3 + "</code>", "rollout rolled back", "the revision before the rollout", "current"} {
		if !strings.Contains(page, want) {
			t.Errorf("the system page lacks %q:\n%s", want, page)
		}
	}
	_, metrics := call(t, "GET", base+"/metrics", "", "")
	for _, want := range []string{`rewind_watch_rollouts_total{system="checkout"} 2`, `rewind_rollbacks_total{result="succeeded",system="checkout",trigger=`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	testenv.Eventually(t, 30*time.Second, "the rollback's notices", func() (bool, string) {
		got := hook.notices()
		return strings.Contains(got, "rollback-decided checkout") && strings.Contains(got, "rollback-completed checkout"), got
	})

	// Once: the daemon keeps evaluating and decides nothing more.
	before := st.Systems[0].Watch.Rollout.Revision
	testenv.Eventually(t, 30*time.Second, "ten more evaluations", func() (bool, string) {
		_, m := call(t, "GET", base+"/metrics", "", "")
		return evaluations(m) >= 10+evaluations(metrics), m
	})
	_, body = call(t, "GET", base+"/api/v1/rollbacks", token, "")
	_ = json.Unmarshal([]byte(body), &rollbacks)
	if len(rollbacks.Rollbacks) != 1 {
		t.Fatalf("a second rollback: %s", body)
	}
	t.Logf("rolled back %s (revision %s): %s", ns+"/checkout", before, rollbacks.Rollbacks[0].Reason)
}

// evaluations reads rewind_evaluations_total of system checkout.
func evaluations(metrics string) int {
	for _, l := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(l, `rewind_evaluations_total{system="checkout"} `); ok {
			var n int
			fmt.Sscan(v, &n)
			return n
		}
	}
	return 0
}
