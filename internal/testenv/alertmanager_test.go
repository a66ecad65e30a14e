package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// delivery is one webhook request Alertmanager made.
type delivery struct {
	auth string
	body struct {
		Version  string
		Receiver string
		Status   string
		Alerts   []struct {
			Status       string
			Labels       map[string]string
			StartsAt     time.Time
			GeneratorURL string
			Fingerprint  string
		}
	}
	raw []byte
}

// webhook records Alertmanager's deliveries.
func webhook(t *testing.T) (url string, got <-chan delivery) {
	t.Helper()
	ch := make(chan delivery, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var d delivery
		d.auth = r.Header.Get("Authorization")
		d.raw, _ = io.ReadAll(r.Body)
		if err := json.Unmarshal(d.raw, &d.body); err != nil {
			t.Errorf("webhook body: %v\n%s", err, d.raw)
		}
		select {
		case ch <- d:
		default:
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/hook", ch
}

// next waits for a delivery whose first alert has the status.
func next(t *testing.T, got <-chan delivery, status string, am *Alertmanager) delivery {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case d := <-got:
			if len(d.body.Alerts) > 0 && d.body.Alerts[0].Status == status {
				return d
			}
		case <-timeout:
			t.Fatalf("no %s delivery within 1m; alertmanager:\n%s", status, am.Output())
		}
	}
}

// TestAlertmanagerDeliversToWebhook: an alert posted to the real
// Alertmanager reaches the webhook with the bearer token, again after the
// repeat interval with the same fingerprint and start, and once resolved.
func TestAlertmanagerDeliversToWebhook(t *testing.T) {
	url, got := webhook(t)
	am := StartAlertmanager(t, AlertmanagerConfig{WebhookURL: url, BearerToken: "s3cret", RepeatInterval: 2 * time.Second})
	start := time.Now().UTC().Truncate(time.Millisecond)
	post := func(endsAt time.Time) {
		alert := map[string]any{"labels": map[string]string{"alertname": "TestAlert", "rewind_system": "sys"},
			"annotations": map[string]string{"summary": "it broke"}, "startsAt": start, "generatorURL": "http://prometheus.example/graph"}
		if !endsAt.IsZero() {
			alert["endsAt"] = endsAt
		}
		body, _ := json.Marshal([]any{alert})
		resp, err := http.Post(am.URL+"/api/v2/alerts", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /api/v2/alerts: %s", resp.Status)
		}
	}
	post(time.Time{})
	first := next(t, got, "firing", am)
	a := first.body.Alerts[0]
	if first.auth != "Bearer s3cret" || first.body.Version != "4" || first.body.Receiver != AlertmanagerReceiver ||
		a.Labels["alertname"] != "TestAlert" || !a.StartsAt.Equal(start) || a.Fingerprint == "" {
		t.Fatalf("first delivery: auth %q, %s", first.auth, first.raw)
	}
	again := next(t, got, "firing", am)
	if b := again.body.Alerts[0]; b.Fingerprint != a.Fingerprint || !b.StartsAt.Equal(a.StartsAt) {
		t.Fatalf("the repeat is another alert: %s", again.raw)
	}
	post(time.Now())
	if d := next(t, got, "resolved", am); d.body.Alerts[0].Fingerprint != a.Fingerprint {
		t.Fatalf("resolved: %s", d.raw)
	}
}

// TestPrometheusRulesReachAlertmanager: an alerting rule of a real
// Prometheus fires, and the real Alertmanager posts it to the webhook.
func TestPrometheusRulesReachAlertmanager(t *testing.T) {
	url, got := webhook(t)
	am := StartAlertmanager(t, AlertmanagerConfig{WebhookURL: url})
	const rules = `groups:
- name: test
  rules:
  - alert: AlwaysFiring
    expr: vector(1) > 0
    labels: {severity: critical, rewind_system: sys}
    annotations: {summary: "always firing"}
`
	prom := StartPrometheusWithRules(t, nil, time.Second, rules, am.Addr)
	d := next(t, got, "firing", am)
	a := d.body.Alerts[0]
	if a.Labels["alertname"] != "AlwaysFiring" || a.Labels["rewind_system"] != "sys" || !strings.HasPrefix(a.GeneratorURL, "http://") {
		t.Fatalf("delivery: %s\nprometheus:\n%s", d.raw, prom.Output())
	}
	if d.auth != "" {
		t.Errorf("no token configured, yet Authorization %q", d.auth)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, prom.URL+"/api/v1/rules", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `"state":"firing"`) {
		t.Errorf("rules: %s", body)
	}
}
