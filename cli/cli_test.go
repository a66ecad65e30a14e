package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, &Env{Stdout: &out, Stderr: &errb, Now: func() time.Time { return time.Unix(1767229200, 0) }})
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicyDefaultValidates(t *testing.T) {
	code, out, _ := runCLI(t, "policy", "default")
	if code != 0 || !strings.Contains(out, "name: dwcp-manager") {
		t.Fatalf("policy default: %d\n%s", code, out)
	}
	p := writeFile(t, "p.yaml", out)
	if code, out, errs := runCLI(t, "validate", "--policy", p); code != 0 || !strings.Contains(out, "valid") {
		t.Fatalf("validate default: %d %s %s", code, out, errs)
	}
}

// TestValidateReportsEveryError: an unknown field, a PromQL syntax error and
// an undeclared CEL variable, all at once, each with file:line and path.
func TestValidateReportsEveryError(t *testing.T) {
	bad := strings.NewReplacer(
		"        for: 5m\n        severity: critical\n", "        for: 5m\n        severty: critical\n",
	).Replace(`apiVersion: rewind/v1
kind: Policy
systems:
  - name: dwcp-manager
    canary:   { selector: 'version="canary"' }
    baseline: { selector: 'version="baseline"' }
    triggers:
      - name: error-rate-high
        query: 'sum(rate(http_requests_total{status=~"5..", {{selector}} }[5m])) / sum(rate(http_requests_total{ {{selector}} }[5m])'
        condition: canary > baseline * 1.5
        for: 5m
        severity: critical
      - name: success-rate-low
        query: 'sum(rate(http_requests_total{ {{selector}} }[5m]))'
        condition: canry < 0.95
`)
	p := writeFile(t, "p.yaml", bad)
	code, _, stderr := runCLI(t, "validate", "--policy", p)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{
		p + ":9: systems[0].triggers[0].query: PromQL: ",
		p + ":12: systems[0].triggers[0].severty: unknown field \"severty\"",
		p + ":15: systems[0].triggers[1].condition: undeclared reference to 'canry'",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("missing %q in\n%s", want, stderr)
		}
	}
}

func TestBacktestExamples(t *testing.T) {
	const from, to = "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z"
	code, out, stderr := runCLI(t, "backtest", "--policy", "../examples/policy.yaml", "--data", "../examples/error-rate.om", "--from", from, "--to", to, "--output", "json")
	if code != ExitRollback {
		t.Fatalf("error-rate example: exit %d, want 2\n%s%s", code, out, stderr)
	}
	var rep struct {
		Systems []struct {
			System      string
			Decision    string
			RollbackAt  time.Time
			Firing      []string
			Evaluations int
			Transitions []struct {
				At               time.Time
				Trigger          string
				From, To         string
				Canary, Baseline *float64
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	s := rep.Systems[0]
	fault := time.Date(2026, 1, 1, 0, 30, 0, 0, time.UTC)
	if s.System != "dwcp-manager" || s.Decision != "rollback" || s.RollbackAt.Before(fault) || s.RollbackAt.After(fault.Add(6*time.Minute)) ||
		len(s.Firing) == 0 || s.Evaluations != 121 || len(s.Transitions) == 0 {
		t.Fatalf("unexpected report: %+v", s)
	}
	if code, out, _ := runCLI(t, "backtest", "--policy", "../examples/policy.yaml", "--data", "../examples/healthy.om", "--from", "1767225600", "--to", "1767229200"); code != ExitOK {
		t.Fatalf("healthy example: exit %d\n%s", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"nope"},
		{"validate"},
		{"backtest", "--policy", "../examples/policy.yaml", "--from", "x", "--to", "y", "--data", "f"},
		{"backtest", "--policy", "../examples/policy.yaml", "--from", "0", "--to", "1"},
		{"analyze", "--policy", "../examples/policy.yaml", "--output", "yaml"},
		{"backtest", "--policy", "../examples/policy.yaml", "--data", "/nonexistent.om", "--from", "0", "--to", "1"},
	} {
		if code, _, _ := runCLI(t, args...); code != ExitError {
			t.Errorf("%v: exit %d, want 1", args, code)
		}
	}
}

func TestParseTime(t *testing.T) {
	for in, want := range map[string]int64{"2026-01-01T00:00:00Z": 1767225600, "1767225600": 1767225600, "1767225600.5": 1767225600} {
		got, err := parseTime(in)
		if err != nil || got.Unix() != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
}

// TestValidateIsServesCheck: every policy serve (or analyze) refuses,
// validate refuses too, with the same lines (file:line: path: message);
// what serve only warns about (a missing secret file) validate reports
// unless --static.
func TestValidateIsServesCheck(t *testing.T) {
	base := func(prom, rollback, notify string) string {
		return `apiVersion: rewind/v1
kind: Policy
systems:
  - name: web
    prometheus: { url: '` + prom + `' }
    canary:   { selector: 'version="canary"' }
    baseline: { selector: 'version="baseline"' }
    triggers:
      - { name: down, expr: 'up{ {{selector}} } == 0' }
    rollback:
` + rollback + notify
	}
	dir := t.TempDir()
	store := filepath.Join(dir, "r.db")
	for _, c := range []struct {
		name, policy, want string
	}{
		{"credentials in the URL", base("http://u:p@prometheus:9090", "      mode: notify-only\n", ""),
			":5: systems[0].prometheus.url: must not contain credentials (user:password@); use basicAuth or bearerTokenFile"},
		{"automatic without an executor", base("http://prometheus:9090", "      mode: automatic\n", ""),
			":11: systems[0].rollback: mode automatic needs an executor"},
		{"interval too short", strings.Replace(base("http://prometheus:9090", "      mode: notify-only\n", ""), "  - name: web\n", "  - name: web\n    interval: 1ms\n", 1),
			":5: systems[0].interval: must be at least 1s (got 1ms)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, "p.yaml", c.policy)
			code, _, verr := runCLI(t, "validate", "--policy", p)
			if code != 1 || !strings.Contains(verr, p+c.want) {
				t.Fatalf("validate: exit %d\n%s\nwant %s%s", code, verr, p, c.want)
			}
			code, _, serr := runCLI(t, "serve", "--policy", p, "--listen", "127.0.0.1:0", "--store", store)
			if code != 1 || !strings.Contains(serr, p+c.want) {
				t.Fatalf("serve: exit %d\n%s", code, serr)
			}
		})
	}

	// A secret file this machine lacks: validate says so (not with
	// --static); serve starts anyway and shows it in /readyz.
	secret := filepath.Join(dir, "slack-url")
	p := writeFile(t, "p.yaml", base("http://127.0.0.1:1", "      mode: notify-only\n", `    notify: [chat]
notifiers:
  chat: { slack: { webhookURLFile: `+secret+` } }
`))
	want := p + ":14: notifiers.chat.slack.webhookURLFile: reading the secret file: open " + secret + ": no such file or directory"
	if code, _, verr := runCLI(t, "validate", "--policy", p); code != 1 || !strings.Contains(verr, want) {
		t.Fatalf("validate with a missing secret: exit %d\n%s\nwant %s", code, verr, want)
	}
	if code, out, verr := runCLI(t, "validate", "--policy", p, "--static"); code != 0 {
		t.Fatalf("validate --static: exit %d\n%s%s", code, out, verr)
	}
	url, logs := startServe(t, "--policy", p, "--listen", "127.0.0.1:0", "--store", store, "--open-reads")
	if code, body := call(t, "GET", url+"/readyz", "", ""); code != 503 || !strings.Contains(body, "policy files and variables") || !strings.Contains(body, "webhookURLFile") {
		t.Fatalf("readyz: %d %s", code, body)
	}
	if !strings.Contains(logs.String(), "notifiers.chat.slack.webhookURLFile") {
		t.Fatalf("serve must log what the machine lacks:\n%s", logs)
	}
	os.WriteFile(secret, []byte("https://hooks.slack.invalid/x\n"), 0o600)
	if code, _, verr := runCLI(t, "validate", "--policy", p); code != 0 {
		t.Fatalf("validate with the secret present: exit %d\n%s", code, verr)
	}
}

// TestHelpEverywhere: --help, -h and `help CMD` exit 0 on every command,
// with the usage on stdout and nothing on stderr; usage errors go to
// stderr with exit 1.
func TestHelpEverywhere(t *testing.T) {
	cmds := [][]string{{}, {"demo"}, {"validate"}, {"analyze"}, {"backtest"}, {"serve"}, {"rollback"}, {"history"},
		{"postmortem"}, {"policy"}, {"policy", "default"}, {"version"}}
	for _, c := range cmds {
		for _, help := range [][]string{{"--help"}, {"-h"}} {
			args := append(append([]string{}, c...), help...)
			code, out, errs := runCLI(t, args...)
			if code != 0 || !strings.Contains(out, "Usage:") || errs != "" {
				t.Errorf("%v: exit %d, stdout %.80q, stderr %q", args, code, out, errs)
			}
		}
		if len(c) > 0 {
			if code, out, _ := runCLI(t, append([]string{"help"}, c...)...); code != 0 || !strings.Contains(out, "Usage:") {
				t.Errorf("help %v: exit %d", c, code)
			}
		}
	}
	for _, args := range [][]string{{"nope"}, {"validate", "--nope"}, {"postmortem"}, {"postmortem", "a", "b"}, {"history", "extra"}, {"policy", "nope"}} {
		code, out, errs := runCLI(t, args...)
		if code != 1 || out != "" || !strings.HasPrefix(errs, "rewind") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 1, nothing on stdout, the error on stderr", args, code, out, errs)
		}
	}
}

// TestBacktestPrometheusURLRule: --prometheus is held to the policy's URL
// rule, with its message.
func TestBacktestPrometheusURLRule(t *testing.T) {
	code, _, errs := runCLI(t, "backtest", "--policy", "../examples/policy.yaml", "--prometheus", "http://u:p@prometheus:9090", "--from", "0", "--to", "1")
	if code != 1 || !strings.Contains(errs, "--prometheus: must not contain credentials (user:password@); use basicAuth or bearerTokenFile") || strings.Contains(errs, "u:p") {
		t.Fatalf("exit %d: %s", code, errs)
	}
}
