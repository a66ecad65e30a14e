// Package policy loads Rewind's policy file (version 1, docs/policy.md):
// strict YAML with line numbers → defaults → validation → compiled triggers.
// Every error is reported at once as FILE:LINE: path: message.
package policy

import (
	"fmt"
	"regexp"
	"time"

	"cel.dev/cel-go/cel"

	rewind "github.com/rewind-sre/rewind"
)

// Policy is a loaded, validated and compiled policy.
type Policy struct {
	File      string
	Hash      string // sha256 of the file's bytes, hex, first 16 characters
	Systems   []*System
	Notifiers map[string]Notifier

	lines map[string]int // field path → line, for errors found after loading
}

// At is an error about the field at path (e.g. "systems[0].rollback"),
// with the line of its value in the file, as the loader reports errors:
// checks made after loading (the environment, the platform) use it so
// that every message has the same form.
func (p *Policy) At(path, format string, args ...any) FieldError {
	return FieldError{File: p.File, Line: lineOf(p.lines, path), Path: path, Msg: fmt.Sprintf(format, args...)}
}

// System returns the named system, or nil.
func (p *Policy) System(name string) *System {
	for _, s := range p.Systems {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// System is one canary/baseline pair and its triggers.
type System struct {
	Name             string
	Interval         time.Duration
	Prometheus       Prometheus
	CanarySelector   string
	BaselineSelector string
	Traffic          *Traffic // nil: no traffic guard
	Triggers         []*Trigger
	Rollback         Rollback
	Notify           []string
	path             string // systems[i]
	// Watch is set on a rollout-watch system (watch.go): its triggers are
	// templates, instantiated per rollout by Instantiate.
	Watch *Watch
}

// Path is the system's field path in the policy, e.g. "systems[2]".
func (s *System) Path() string { return s.path }

// MaxFor is the longest hold time of the system's triggers.
func (s *System) MaxFor() time.Duration {
	var m time.Duration
	for _, t := range s.Triggers {
		m = max(m, t.For)
	}
	return m
}

// Queries lists every distinct PromQL string one evaluation cycle may run.
func (s *System) Queries() []string {
	seen := map[string]bool{}
	var out []string
	add := func(qs ...string) {
		for _, q := range qs {
			if q != "" && !seen[q] {
				seen[q] = true
				out = append(out, q)
			}
		}
	}
	if s.Traffic != nil {
		add(s.Traffic.Query)
	}
	for _, t := range s.Triggers {
		add(t.queries()...)
	}
	return out
}

// Prometheus is how a system's metrics are read.
type Prometheus struct {
	URL                string
	Timeout            time.Duration
	BearerTokenFile    string
	BasicAuthUsername  string
	BasicAuthPassword  string // a file path, never the secret
	CAFile             string
	InsecureSkipVerify bool
	// MaxInFlight bounds the queries in flight to this endpoint, shared by
	// every system that reads it (URL and credentials): the controller
	// sends no more at once, whatever the number of systems.
	MaxInFlight int
}

// DefaultMaxInFlight is prometheus.maxInFlight when the policy gives none.
const DefaultMaxInFlight = 8

// Endpoint identifies the Prometheus server as Rewind reaches it: the URL,
// the credentials and the TLS settings. Systems with the same Endpoint
// share one connection pool and one bound on queries in flight.
func (p Prometheus) Endpoint() string {
	return fmt.Sprintf("%s|%s|%s|%s|%s|%t", p.URL, p.BearerTokenFile, p.BasicAuthUsername, p.BasicAuthPassword, p.CAFile, p.InsecureSkipVerify)
}

// Traffic is the guard: below AtLeast canary requests per second, guarded
// triggers are insufficient-data and never roll back.
type Traffic struct {
	Query   string // resolved with the canary selector
	AtLeast float64
}

// Form is the shape of a trigger.
type Form string

const (
	FormQuery    Form = "query"    // one template, {{selector}} resolved per side
	FormExplicit Form = "explicit" // full PromQL for canary (and baseline)
	FormExpr     Form = "expr"     // alert form: holds while the PromQL returns a sample; {{selector}} is the canary
	FormJudge    Form = "judge"    // statistical test on request counts
	FormProbe    Form = "probe"    // HTTP health check of a canary endpoint
)

// OnNoData says what missing data means for a trigger.
type OnNoData string

const (
	NoDataIgnore OnNoData = "ignore"
	NoDataFire   OnNoData = "fire"
)

// Trigger is one compiled rollback trigger.
type Trigger struct {
	Name      string
	Form      Form
	Canary    string // resolved PromQL (query, explicit)
	Baseline  string // resolved PromQL (query, explicit; may be empty in explicit)
	Expr      string // alert form, as written
	Alert     *AlertCompare
	Judge     *Judge
	Probe     *Probe
	Condition string
	For       time.Duration
	Severity  string
	Action    rewind.Action
	OnNoData  OnNoData
	Guarded   bool // subject to the system's traffic guard

	program cel.Program
}

// AlertCompare splits an alert-form `vector OP number` so that "no series"
// (insufficient data) can be told apart from "no series above threshold" (ok).
type AlertCompare struct {
	Vector    string
	Op        string // ">", ">=", "<", "<=", "==", "!="
	Threshold float64
}

// Keep reports whether a sample value passes the comparison filter.
func (a *AlertCompare) Keep(v float64) bool {
	switch a.Op {
	case ">":
		return v > a.Threshold
	case ">=":
		return v >= a.Threshold
	case "<":
		return v < a.Threshold
	case "<=":
		return v <= a.Threshold
	case "==":
		return v == a.Threshold
	case "!=":
		return v != a.Threshold
	}
	return false
}

// Judge is a compiled judge-form trigger.
type Judge struct {
	Test      string // proportion | latency
	Canary    JudgeQueries
	Baseline  JudgeQueries // empty for one-sample proportion (Above set)
	Quantile  float64
	MinEffect float64
	Above     *float64
	Alpha     float64
	Direction string // increase | decrease
	// Sequential judges prove a canary worse with an anytime-valid test on
	// the counts of each evaluation interval (the Step queries, whose
	// interval is Step), accumulated over the trigger's episode of active
	// runs; the windowed queries give only the seed's measure (the point
	// estimate). Window is the longest range of those queries.
	Sequential bool
	Step       time.Duration
	Window     time.Duration
}

// Probe is an HTTP health check of a canary endpoint: the trigger holds
// while the answer is wrong (status, latency, body) or does not come.
type Probe struct {
	URL          string
	ExpectStatus []int // empty: any 2xx or 3xx
	MaxLatency   time.Duration
	BodyMatch    *regexp.Regexp
	Timeout      time.Duration
}

// JudgeQueries are one side's resolved count queries: over the window (the
// policy's queries), and for a sequential judge over one interval.
type JudgeQueries struct {
	Bad, Total, Buckets             string
	BadStep, TotalStep, BucketsStep string
}

func (t *Trigger) queries() []string {
	switch t.Form {
	case FormExpr:
		if t.Alert != nil {
			return []string{t.Alert.Vector}
		}
		return []string{t.Expr}
	case FormProbe:
		return nil
	case FormJudge:
		j := t.Judge
		return []string{j.Canary.Bad, j.Canary.Total, j.Canary.Buckets, j.Baseline.Bad, j.Baseline.Total, j.Baseline.Buckets,
			j.Canary.BadStep, j.Canary.TotalStep, j.Canary.BucketsStep, j.Baseline.BadStep, j.Baseline.TotalStep, j.Baseline.BucketsStep}
	default:
		return []string{t.Canary, t.Baseline}
	}
}

// Mode says whether a system's decided rollbacks are carried out.
type Mode string

const (
	// ModeAutomatic: a decided rollback runs the plan.
	ModeAutomatic Mode = "automatic"
	// ModeNotifyOnly: a decided rollback is announced and logged, nothing
	// is changed; no executor is needed (an operator's rollback uses the
	// executors when some are configured).
	ModeNotifyOnly Mode = "notify-only"
)

// Rollback is what to do once a rollback is decided.
type Rollback struct {
	Mode       Mode
	Kubernetes *Kubernetes
	Istio      *Istio
	Drain      Drain
	// Exec and Webhook are generic executors per step (drain, undo,
	// scale-down, evidence) for platforms without Kubernetes or Istio.
	Exec     map[string]Exec
	Webhook  map[string]Webhook
	Verify   Verify
	Evidence Evidence
	GitOps   GitOps // rollback.gitops (policy/gitops.go)
}

// Exec runs an argument vector (never a shell) for a step.
type Exec struct {
	Command []string
	Timeout time.Duration
}

// Drain says how the drain step is verified: the canary's request rate
// (Query resolved with the canary selector) must fall to Below within Within.
type Drain struct {
	Query  string
	Below  float64
	Within time.Duration
}

// Kubernetes names the canary Deployment.
type Kubernetes struct {
	Namespace   string
	Deployment  string
	ScaleToZero bool
	Kubeconfig  string
}

// Istio names the VirtualService that splits canary and baseline traffic.
type Istio struct {
	Namespace      string
	VirtualService string
	BaselineHost   string
	CanaryHost     string
}

// Verify is the post-rollback validator: Condition over `baseline` (the
// Query resolved with the baseline selector) must hold For, within Timeout.
type Verify struct {
	Query     string
	Condition string
	For       time.Duration
	Timeout   time.Duration
	program   cel.Program
}

// Holds evaluates the verify condition on a baseline value.
func (v *Verify) Holds(baseline float64) (bool, error) {
	return evalCondition(v.program, 0, baseline)
}

// Evidence says what to keep after a rollback.
type Evidence struct {
	LogTailLines int
	Dir          string
}

// Notifier is one notification channel; secrets are file paths or env names.
type Notifier struct {
	Name      string
	Slack     *Secret
	PagerDuty *PagerDuty
	Email     *Email
	Webhook   *Webhook
}

// Secret names where a secret is read from: a file, or an environment variable.
type Secret struct {
	File string
	Env  string
}

// PagerDuty is an Events API v2 integration.
type PagerDuty struct {
	RoutingKey Secret
	URL        string
}

// Email is an SMTP submission target.
type Email struct {
	SMTP     string
	From     string
	To       []string
	Username string
	Password Secret
}

// Webhook is a generic JSON webhook signed with HMAC-SHA256: a notifier,
// or a rollback step's executor (then with a Timeout).
type Webhook struct {
	URL     string
	Secret  Secret
	Timeout time.Duration
}

// Holds evaluates the trigger's CEL condition.
func (t *Trigger) Holds(canary, baseline float64) (bool, error) {
	return evalCondition(t.program, canary, baseline)
}
