package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

const (
	rulesFile     = "prometheus/rewind-rules.yaml"
	rulesTestFile = "prometheus/rewind-rules_test.yaml"
)

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []rule `json:"rules"`
	} `json:"groups"`
}

type rule struct {
	Alert       string            `json:"alert"`
	Record      string            `json:"record"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

func loadRules(t *testing.T) map[string]rule {
	t.Helper()
	data, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	rules := map[string]rule{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("%s: only alerts are expected here, not %+v", rulesFile, r)
				continue
			}
			if _, dup := rules[r.Alert]; dup {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			rules[r.Alert] = r
		}
	}
	return rules
}

// TestAlertRulesContent: every alert's PromQL parses and uses Rewind's real
// metric names, labels and label values; each has a severity and says what
// to do; the alerts HA needs are there with their conditions.
func TestAlertRulesContent(t *testing.T) {
	rules := loadRules(t)
	for name, r := range rules {
		if err := checkPromQL(r.Expr); err != nil {
			t.Errorf("%s: %s: %v", name, r.Expr, err)
		}
		if s := r.Labels["severity"]; s != "critical" && s != "warning" {
			t.Errorf("%s: severity %q, want critical or warning", name, s)
		}
		if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("%s: needs a summary and a description", name)
		}
		if r.For != "" {
			if _, err := time.ParseDuration(r.For); err != nil {
				t.Errorf("%s: for %q: %v", name, r.For, err)
			}
		}
	}
	want := []struct {
		alert, exprHas, forAtLeast string
	}{
		{"RewindSystemBlind", "rewind_system_blind", "2m"},
		{"RewindRollbackFailed", `rewind_rollbacks_total{result="failed"}`, ""},
		{"RewindNotificationsFailing", "rewind_notifications_total", "10m"},
		{"RewindNoLeader", "rewind_leader", "2m"},
		{"RewindPolicyReloadFailing", `rewind_policy_reloads_total{result="invalid"}`, ""},
		{"RewindInstanceDown", `up{job="rewind"}`, ""},
		{"RewindDown", `up{job="rewind"}`, ""},
	}
	for _, w := range want {
		r, ok := rules[w.alert]
		if !ok {
			t.Errorf("alert %s is missing", w.alert)
			continue
		}
		if !strings.Contains(r.Expr, w.exprHas) {
			t.Errorf("%s: %s does not use %s", w.alert, r.Expr, w.exprHas)
		}
		if w.forAtLeast != "" {
			min, _ := time.ParseDuration(w.forAtLeast)
			got, _ := time.ParseDuration(r.For)
			if got < min {
				t.Errorf("%s: for %q, want at least %s", w.alert, r.For, w.forAtLeast)
			}
		}
	}
}

// TestAlertRulesUnitTestsCoverEveryAlert: rewind-rules_test.yaml sees
// every alert fire at least once.
func TestAlertRulesUnitTestsCoverEveryAlert(t *testing.T) {
	rules := loadRules(t)
	data, err := os.ReadFile(rulesTestFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		RuleFiles []string `json:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				Alertname string           `json:"alertname"`
				ExpAlerts []map[string]any `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.RuleFiles, []string{filepath.Base(rulesFile)}) {
		t.Errorf("%s tests %v, want [%s]", rulesTestFile, f.RuleFiles, filepath.Base(rulesFile))
	}
	fires := map[string]bool{}
	for _, tc := range f.Tests {
		for _, a := range tc.AlertRuleTest {
			if _, ok := rules[a.Alertname]; !ok {
				t.Errorf("%s tests %s, which is no alert", rulesTestFile, a.Alertname)
			}
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	for name := range rules {
		if !fires[name] {
			t.Errorf("%s never sees %s fire", rulesTestFile, name)
		}
	}
}

// promtool returns the path of the real promtool (Debian package
// prometheus); without it the test is skipped, or fails when CI is set.
func promtool(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"promtool", "/usr/bin/promtool"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	reason := "promtool not found in PATH or /usr/bin (install the Debian package \"prometheus\")"
	if os.Getenv("CI") != "" {
		t.Fatalf("%s; CI must not skip this test", reason)
	}
	t.Skip(reason)
	return ""
}

func runPromtool(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestAlertRules runs the real promtool: `check rules` and `test rules`
// pass, and each fails on a broken copy (the checks are not vacuous).
func TestAlertRules(t *testing.T) {
	if out, err := runPromtool(t, ".", "check", "rules", rulesFile); err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", rulesFile, err, out)
	} else {
		t.Logf("promtool check rules: %s", strings.TrimSpace(out))
	}
	if out, err := runPromtool(t, "prometheus", "test", "rules", filepath.Base(rulesTestFile)); err != nil {
		t.Fatalf("promtool test rules %s: %v\n%s", rulesTestFile, err, out)
	}

	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(rulesTestFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct {
		what, old, new, cmd string
	}{
		{"an unknown function", "max by (system) (rewind_system_blind)", "maximum by (system) (rewind_system_blind)", "check"},
		{"a template error", "{{ $labels.system }} failed", "{{ $labels.system failed", "check"},
		{"the blind alert held 10m", "for: 2m\n    labels:\n      severity: critical\n    annotations:\n      summary: Rewind cannot see", "for: 10m\n    labels:\n      severity: critical\n    annotations:\n      summary: Rewind cannot see", "test"},
		{"failed rollbacks not counted", `{result="failed"}[15m]`, `{result="refused"}[15m]`, "test"},
	} {
		t.Run(m.what, func(t *testing.T) {
			if !strings.Contains(string(rules), m.old) {
				t.Fatalf("%s no longer contains %q: update this test", rulesFile, m.old)
			}
			dir := t.TempDir()
			broken := strings.Replace(string(rules), m.old, m.new, 1)
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(rulesFile)), []byte(broken), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(rulesTestFile)), tests, 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{"check", "rules", filepath.Base(rulesFile)}
			if m.cmd == "test" {
				args = []string{"test", "rules", filepath.Base(rulesTestFile)}
			}
			if out, err := runPromtool(t, dir, args...); err == nil {
				t.Fatalf("promtool %s passed with %s:\n%s", strings.Join(args, " "), m.what, out)
			}
		})
	}
}
