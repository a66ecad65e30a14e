package cli

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/daemon"
	"github.com/rewind-sre/rewind/executor/kubernetes/kubetest"
	"github.com/rewind-sre/rewind/internal/testenv"
	"github.com/rewind-sre/rewind/policy"
)

// byzantineRules alert on a ProBFT byzantine event of the canary, mapped
// to the system's byzantine-attack-detected trigger by labels. The 15s
// window resolves the alert soon after the one event.
const byzantineRules = `groups:
- name: probft
  rules:
  - alert: ProBFTByzantineAttack
    expr: sum(increase(probft_byzantine_events_detected{version="canary"}[15s])) > 0
    labels:
      severity: critical
      rewind_system: dwcp-manager
      rewind_trigger: byzantine-attack-detected
    annotations:
      summary: ProBFT detected a byzantine event on the canary
`

// TestAlertmanagerAlertRollsBack: a real Prometheus rule fires on a
// byzantine event of the canary, the real Alertmanager posts it with the
// bearer token to the daemon's webhook, and the canary is rolled back at
// once on the real control plane — once, although Alertmanager repeats the
// alert while it fires — with the alert in the rollback's record; the
// alert's resolution undoes nothing.
func TestAlertmanagerAlertRollsBack(t *testing.T) {
	e := setupRollback(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	const token = "test-token-0123456789"
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base, logs := startServe(t, "--policy", e.policy, "--listen", "127.0.0.1:0", "--store", e.store, "--evidence", e.evidence, "--token-file", tokenFile)

	// The canary's ProBFT metrics, scraped by the Prometheus that holds the rule.
	reg := prometheus.NewRegistry()
	byzantine := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "probft_byzantine_events_detected", Help: "ProBFT byzantine events detected."}, []string{"version"})
	reg.MustRegister(byzantine)
	byzantine.WithLabelValues("canary").Add(0)
	exporter := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(exporter.Close)

	am := testenv.StartAlertmanager(t, testenv.AlertmanagerConfig{WebhookURL: base + "/api/v1/alertmanager", BearerToken: token, RepeatInterval: 2 * time.Second})
	prom := testenv.StartPrometheusWithRules(t, []string{strings.TrimPrefix(exporter.URL, "http://")}, time.Second, byzantineRules, am.Addr)
	waitForSeriesIn(t, prom.URL, `probft_byzantine_events_detected{version="canary"}`)

	if code, body := call(t, "POST", base+"/api/v1/alertmanager", "wrong", `{"alerts":[]}`); code != 401 {
		t.Fatalf("the webhook without the token: %d %s", code, body)
	}

	byzantine.WithLabelValues("canary").Inc()
	var list struct{ Rollbacks []rewind.Rollback }
	pollUntil(t, 3*time.Minute, "a finished rollback", logs, func() bool {
		_, body := call(t, "GET", base+"/api/v1/rollbacks", token, "")
		_ = json.Unmarshal([]byte(body), &list)
		return len(list.Rollbacks) > 0 && list.Rollbacks[0].State != rewind.RollbackRunning
	})
	// Alertmanager repeats the firing alert, then sends its resolution.
	pollUntil(t, 2*time.Minute, "a repeated and a resolved delivery", logs, func() bool {
		_, m := call(t, "GET", base+"/metrics", "", "")
		return sampleValue(m, `rewind_alerts_received_total{result="duplicate",status="firing"}`) >= 1 &&
			sampleValue(m, `rewind_alerts_received_total{result="noted",status="resolved"}`) >= 1
	})

	_, body := call(t, "GET", base+"/api/v1/rollbacks", token, "")
	list.Rollbacks = nil
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list.Rollbacks) != 1 {
		t.Fatalf("want exactly one rollback: %v\n%s\nlogs:\n%s", err, body, logs)
	}
	rb := list.Rollbacks[0]
	if rb.State != rewind.RollbackSucceeded || rb.Requester != "rewind" || !strings.Contains(rb.Reason, "ProBFTByzantineAttack") {
		t.Fatalf("rollback: state %s, requester %q, reason %q\nlogs:\n%s", rb.State, rb.Requester, rb.Reason, logs)
	}
	d := rb.Decision
	if d == nil || len(d.Firing) != 1 || d.Firing[0] != "byzantine-attack-detected" || len(d.Triggers) != 1 {
		t.Fatalf("decision: %+v", d)
	}
	ev := d.Triggers[0]
	if ev.Severity != "critical" || !strings.Contains(ev.Observation.Reason, "summary: ProBFT detected a byzantine event") ||
		!strings.Contains(ev.Observation.Reason, "/graph?g0.expr=") ||
		len(ev.Observation.Readings) != 1 || !strings.Contains(ev.Observation.Readings[0].Query, `alertname="ProBFTByzantineAttack"`) {
		t.Fatalf("evidence: %+v", ev)
	}

	dep, err := e.cs.AppsV1().Deployments(e.ns).Get(context.Background(), "dwcp-canary", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rev := dep.Annotations["deployment.kubernetes.io/revision"]; rev != "3" || *dep.Spec.Replicas != 0 || dep.Spec.Template.Spec.Containers[0].Image != kubetest.ImageV1 {
		t.Fatalf("deployment: revision %s, replicas %d, image %s", rev, *dep.Spec.Replicas, dep.Spec.Template.Spec.Containers[0].Image)
	}
	_, m := call(t, "GET", base+"/metrics", "", "")
	if got := sampleValue(m, `rewind_alerts_received_total{result="rollback",status="firing"}`); got != 1 {
		t.Errorf("alerts that started a rollback: %v, want 1", got)
	}
	if !strings.Contains(m, `rewind_rollbacks_total{result="succeeded",system="dwcp-manager",trigger="byzantine-attack-detected"} 1`) {
		t.Errorf("/metrics lacks the rollback by the alert's trigger")
	}
	// Every delivery was accepted: the token and the answers suit Alertmanager.
	_, amMetrics := call(t, "GET", am.URL+"/metrics", "", "")
	if failed := sampleValue(amMetrics, `alertmanager_notifications_failed_total{integration="webhook"}`); failed != 0 {
		t.Errorf("Alertmanager failed %v webhook notifications:\n%s", failed, am.Output())
	}
}

// waitForSeriesIn waits until Prometheus has scraped the series.
func waitForSeriesIn(t *testing.T, url, series string) {
	t.Helper()
	src, err := daemon.NewPrometheus(policy.Prometheus{URL: url, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	pollUntil(t, time.Minute, series+" in Prometheus", nil, func() bool {
		v, err := src.Query(context.Background(), series, time.Now())
		return err == nil && len(v) == 1
	})
}

// pollUntil waits for cond, for at most `within`, with the logs on failure.
func pollUntil(t *testing.T, within time.Duration, what string, logs *testenv.Buffer, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, within, what, func() (bool, string) {
		if logs == nil {
			return cond(), ""
		}
		return cond(), "logs:\n" + logs.String()
	})
}

// sampleValue reads one sample, named with its labels sorted, from a /metrics
// text page; 0 when absent.
func sampleValue(page, sample string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindStringSubmatch(page)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}
