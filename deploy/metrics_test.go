package deploy_test

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/rewind-sre/rewind/controller"
)

// metric is one metric the dashboard and the alert rules may use: its type
// and its labels, each with the values it takes (nil: any value).
type metric struct {
	kind   string // counter, gauge, histogram
	labels map[string][]string
	from   string // where it is defined
}

// knownMetrics mirrors controller/metrics.go (TestKnownMetricsMirrorTheController
// checks that), plus the notifications' counter (notify), the leader gauge
// (leader election) and Prometheus's own `up`.
var knownMetrics = map[string]metric{
	"rewind_rollbacks_total": {kind: "counter", from: "controller", labels: map[string][]string{
		"system": nil, "trigger": nil,
		// controller/rollback.go: the rollback's state, or refused.
		"result": {"started", "running", "succeeded", "failed", "refused"}}},
	"rewind_rollback_duration_seconds": {kind: "histogram", from: "controller"},
	"rewind_detection_seconds":         {kind: "histogram", from: "controller"},
	"rewind_trigger_state": {kind: "gauge", from: "controller", labels: map[string][]string{
		"system": nil, "trigger": nil, "state": {"ok", "pending", "firing", "insufficient-data", "degraded"}}},
	"rewind_query_errors_total": {kind: "counter", from: "controller", labels: map[string][]string{"system": nil}},
	"rewind_system_blind":       {kind: "gauge", from: "controller", labels: map[string][]string{"system": nil}},
	"rewind_step_duration_seconds": {kind: "histogram", from: "controller", labels: map[string][]string{
		"step": {"suspend-gitops", "drain", "check-baseline", "undo", "scale-down", "evidence", "verify", "git-revert"}}},
	"rewind_evaluations_total":      {kind: "counter", from: "controller", labels: map[string][]string{"system": nil}},
	"rewind_policy_reloads_total":   {kind: "counter", from: "controller", labels: map[string][]string{"result": {"ok", "invalid"}}},
	"rewind_system_paused":          {kind: "gauge", from: "controller", labels: map[string][]string{"system": nil}},
	"rewind_build_info":             {kind: "gauge", from: "controller", labels: map[string][]string{"version": nil}},
	"rewind_cycle_duration_seconds": {kind: "histogram", from: "controller"},
	"rewind_cycle_queries_total":    {kind: "counter", from: "controller"},
	"rewind_cycle_overruns_total":   {kind: "counter", from: "controller"},
	"rewind_batches":                {kind: "gauge", from: "controller"},
	"rewind_panics_total": {kind: "counter", from: "controller", labels: map[string][]string{
		"stage": {"fetch", "query", "evaluate", "rollback", "hook"}}},
	// controller/watch.go: rollout-watch systems (watch.Phase values).
	"rewind_watch_rollout": {kind: "gauge", from: "controller", labels: map[string][]string{
		"system": nil, "revision": nil, "previous": nil, "phase": {"compare", "history"}}},
	"rewind_watch_rollouts_total":         {kind: "counter", from: "controller", labels: map[string][]string{"system": nil}},
	"rewind_watch_shared_incidents_total": {kind: "counter", from: "controller", labels: map[string][]string{"system": nil, "trigger": nil}},
	// notify/notify.go's Result values.
	"rewind_notifications_total": {kind: "counter", from: "notify", labels: map[string][]string{
		"notifier": nil, "result": {"delivered", "retried", "failed", "expired", "dropped"}}},
	// 1 on the replica that holds the Lease rewind-leader, 0 on the others.
	"rewind_leader": {kind: "gauge", from: "leader election"},
	"up":            {kind: "gauge", from: "prometheus"},
}

// targetLabels are attached by the scrape, to every metric.
var targetLabels = []string{"job", "instance", "namespace", "pod", "container", "service"}

// descRecorder is a prometheus.Registerer that keeps what is registered.
type descRecorder struct{ descs []*prometheus.Desc }

func (r *descRecorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		r.descs = append(r.descs, d)
	}
	return nil
}

func (r *descRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *descRecorder) Unregister(prometheus.Collector) bool { return false }

var (
	descName   = regexp.MustCompile(`fqName: "([^"]+)"`)
	descLabels = regexp.MustCompile(`variableLabels: \{([^}]*)\}`)
)

// TestKnownMetricsMirrorTheController: the list above has exactly the
// metrics controller.NewMetrics registers, with their labels, so that a
// renamed metric fails the dashboard and rules tests instead of leaving a
// panel or an alert silently empty.
func TestKnownMetricsMirrorTheController(t *testing.T) {
	rec := &descRecorder{}
	controller.NewMetrics(rec, "test")
	got := map[string][]string{}
	for _, d := range rec.descs {
		s := d.String()
		m := descName.FindStringSubmatch(s)
		if m == nil {
			t.Fatalf("cannot read the name of %s", s)
		}
		var labels []string
		if l := descLabels.FindStringSubmatch(s); l != nil && strings.TrimSpace(l[1]) != "" {
			for _, x := range strings.Split(l[1], ",") {
				labels = append(labels, strings.TrimSpace(x))
			}
		}
		sort.Strings(labels)
		got[m[1]] = labels
	}
	want := map[string][]string{}
	for name, m := range knownMetrics {
		if m.from != "controller" {
			continue
		}
		var labels []string
		for l := range m.labels {
			labels = append(labels, l)
		}
		sort.Strings(labels)
		want[name] = labels
	}
	for name, labels := range got {
		w, ok := want[name]
		if !ok {
			t.Errorf("controller registers %s%v, missing from knownMetrics", name, labels)
		} else if !slices.Equal(w, labels) {
			t.Errorf("%s: controller labels %v, knownMetrics %v", name, labels, w)
		}
	}
	for name := range want {
		if _, ok := got[name]; !ok {
			t.Errorf("knownMetrics lists %s, which controller.NewMetrics does not register", name)
		}
	}
}

var promParser = parser.NewParser(parser.Options{})

// checkPromQL parses expr and checks that every selector names a known
// metric (a histogram through _bucket, _sum or _count), matches only its
// labels or target labels, and compares a label with values it takes.
func checkPromQL(expr string) error {
	e, err := promParser.ParseExpr(expr)
	if err != nil {
		return err
	}
	if e.Type() != parser.ValueTypeVector && e.Type() != parser.ValueTypeScalar {
		return fmt.Errorf("gives a %s, not an instant vector", e.Type())
	}
	var errs []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name, m, err := lookupMetric(vs.Name)
		if err != nil {
			errs = append(errs, err.Error())
			return nil
		}
		for _, lm := range vs.LabelMatchers {
			if lm.Name == "__name__" {
				continue
			}
			if lm.Name == "le" && strings.HasSuffix(vs.Name, "_bucket") {
				continue
			}
			values, ok := m.labels[lm.Name]
			if !ok {
				if !slices.Contains(targetLabels, lm.Name) {
					errs = append(errs, fmt.Sprintf("%s has no label %q", name, lm.Name))
				}
				continue
			}
			if values == nil {
				continue
			}
			for _, v := range matcherValues(lm.Value) {
				if !slices.Contains(values, v) {
					errs = append(errs, fmt.Sprintf("%s{%s} never takes the value %q (it takes %v)", name, lm.Name, v, values))
				}
			}
		}
		return nil
	})
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// lookupMetric finds a selector's metric, allowing a histogram's series.
func lookupMetric(name string) (string, metric, error) {
	if name == "" {
		return "", metric{}, fmt.Errorf("a selector without a metric name")
	}
	if m, ok := knownMetrics[name]; ok {
		if m.kind == "histogram" {
			return "", metric{}, fmt.Errorf("%s is a histogram: use %[1]s_bucket, _sum or _count", name)
		}
		return name, m, nil
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if m, ok := knownMetrics[base]; ok && m.kind == "histogram" {
				return base, m, nil
			}
		}
	}
	return "", metric{}, fmt.Errorf("unknown metric %s", name)
}

// matcherValues splits a matcher's value into the values of a plain
// alternation ("failed|expired"); a regexp with other syntax is not checked.
func matcherValues(v string) []string {
	if strings.ContainsAny(v, `.*+?()[]{}^$\`) {
		return nil
	}
	return strings.Split(v, "|")
}

// TestCheckPromQL: the checker refuses what it must.
func TestCheckPromQL(t *testing.T) {
	for expr, ok := range map[string]bool{
		`sum(increase(rewind_rollbacks_total{result="succeeded"}[7d]))`:                        true,
		`histogram_quantile(0.95, sum by (le) (rate(rewind_detection_seconds_bucket[7d])))`:    true,
		`rate(rewind_notifications_total{result=~"failed|expired", job="rewind"}[5m]) > 0`:     true,
		`rewind_trigger_state{state=~"fir.*"} == 1`:                                            true,
		`sum(increase(rewind_rollbacks_total{result="succeeded"}[7d])`:                         false, // syntax
		`sum(increase(rewind_rollback_total[7d]))`:                                             false, // no such metric
		`rewind_rollbacks_total{outcome="failed"}`:                                             false, // no such label
		`rewind_rollbacks_total{result="success"}`:                                             false, // no such value
		`rate(rewind_notifications_total{result=~"failed|given-up"}[5m])`:                      false,
		`rate(rewind_detection_seconds[5m])`:                                                   false, // a histogram's base name
		`rewind_rollbacks_total[5m]`:                                                           false, // a range vector
		`histogram_quantile(0.9, sum by (le) (rate(rewind_step_duration_seconds_bucket[1h])))`: true,
	} {
		if err := checkPromQL(expr); (err == nil) != ok {
			t.Errorf("checkPromQL(%s) = %v; want ok=%v", expr, err, ok)
		}
	}
}
