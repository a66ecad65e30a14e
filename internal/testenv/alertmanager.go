package testenv

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// Alertmanager is a running Alertmanager (Debian package
// prometheus-alertmanager) on a loopback port, without clustering.
type Alertmanager struct {
	*server // URL, Addr; Stop, Output
}

// AlertmanagerConfig is the one route and receiver of a test Alertmanager:
// every alert in a group of its own (group_by ['...']), posted with its
// resolution to a webhook.
type AlertmanagerConfig struct {
	WebhookURL     string        // the receiver's webhook_config url
	BearerToken    string        // sent as http_config.authorization (from a credentials_file); "" sends none
	GroupWait      time.Duration // 0: notify at once
	GroupInterval  time.Duration // 0: 1s
	RepeatInterval time.Duration // 0: 5s
}

// AlertmanagerReceiver is the name of the test Alertmanager's receiver.
const AlertmanagerReceiver = "rewind"

// StartAlertmanager starts a real Alertmanager posting to cfg.WebhookURL,
// stopped by t.Cleanup.
func StartAlertmanager(t testing.TB, cfg AlertmanagerConfig) *Alertmanager {
	t.Helper()
	bin := lookBinary(t, "prometheus-alertmanager", "prometheus-alertmanager")
	dir := t.TempDir()
	config := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(config, alertmanagerYAML(t, dir, cfg), 0o600); err != nil {
		t.Fatalf("writing alertmanager.yml: %v", err)
	}
	return &Alertmanager{server: startServer(t, "alertmanager", bin, dir, func(addr string) []string {
		return []string{
			"--config.file=" + config,
			"--storage.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + addr,
			"--cluster.listen-address=", // no peers, no gossip port
		}
	})}
}

// alertmanagerYAML writes the configuration (as JSON, which is YAML and
// escapes every string) and the token's credentials file.
func alertmanagerYAML(t testing.TB, dir string, cfg AlertmanagerConfig) []byte {
	t.Helper()
	if cfg.GroupInterval == 0 {
		cfg.GroupInterval = time.Second
	}
	if cfg.RepeatInterval == 0 {
		cfg.RepeatInterval = 5 * time.Second
	}
	webhook := map[string]any{"url": cfg.WebhookURL, "send_resolved": true}
	if cfg.BearerToken != "" {
		file := filepath.Join(dir, "token")
		if err := os.WriteFile(file, []byte(cfg.BearerToken), 0o600); err != nil {
			t.Fatalf("writing the token file: %v", err)
		}
		webhook["http_config"] = map[string]any{"authorization": map[string]string{"type": "Bearer", "credentials_file": file}}
	}
	doc := map[string]any{
		"route": map[string]any{
			"receiver":        AlertmanagerReceiver,
			"group_by":        []string{"..."},
			"group_wait":      model.Duration(cfg.GroupWait).String(),
			"group_interval":  model.Duration(cfg.GroupInterval).String(),
			"repeat_interval": model.Duration(cfg.RepeatInterval).String(),
		},
		"receivers": []any{map[string]any{"name": AlertmanagerReceiver, "webhook_configs": []any{webhook}}},
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatalf("encoding alertmanager.yml: %v", err)
	}
	return out
}

// StartPrometheusWithRules starts an empty Prometheus server that scrapes
// the host:port targets (job "test") every interval, evaluates the rule
// file rules (YAML, `groups: ...`) at the same interval and sends its
// alerts to the Alertmanager at alertmanagerAddr (host:port), again every
// interval while they fire; stopped by t.Cleanup.
func StartPrometheusWithRules(t testing.TB, targets []string, interval time.Duration, rules, alertmanagerAddr string) *Prometheus {
	t.Helper()
	if interval < time.Millisecond {
		t.Fatalf("StartPrometheusWithRules: interval %s is too short", interval)
	}
	bin := lookBinary(t, "prometheus", "prometheus")
	dir := t.TempDir()
	ruleFile := filepath.Join(dir, "rules.yml")
	if err := os.WriteFile(ruleFile, []byte(rules), 0o600); err != nil {
		t.Fatalf("writing rules.yml: %v", err)
	}
	every := model.Duration(interval).String()
	cfg := map[string]any{
		"global":         globalConfig{ScrapeInterval: every, ScrapeTimeout: model.Duration(min(interval, 10*time.Second)).String(), EvaluationInterval: every},
		"scrape_configs": []scrapeConfig{{JobName: "test", StaticConfigs: []staticConfig{{Targets: targets}}}},
		"rule_files":     []string{ruleFile},
		"alerting":       map[string]any{"alertmanagers": []any{map[string]any{"static_configs": []staticConfig{{Targets: []string{alertmanagerAddr}}}}}},
	}
	config, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatalf("encoding prometheus.yml: %v", err)
	}
	configFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configFile, config, 0o600); err != nil {
		t.Fatalf("writing prometheus.yml: %v", err)
	}
	return &Prometheus{server: startServer(t, "prometheus", bin, dir, func(addr string) []string {
		return []string{
			"--config.file=" + configFile,
			"--storage.tsdb.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + addr,
			// Alerts evaluated before the Alertmanager is discovered are
			// dropped; resend every interval rather than after a minute.
			"--rules.alert.resend-delay=" + every,
		}
	})}
}
