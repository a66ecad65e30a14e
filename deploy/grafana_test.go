package deploy_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rewind-sre/rewind/internal/testenv"
)

const dashboardFile = "grafana/rewind-dashboard.json"

type dashboard struct {
	Inputs []struct {
		Name, Type, PluginID string
	} `json:"__inputs"`
	SchemaVersion int     `json:"schemaVersion"`
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Datasource *datasource     `json:"datasource"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Name       string      `json:"name"`
			Datasource *datasource `json:"datasource"`
			Expr       string      `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
}

type datasource struct{ Type, UID string }

type panel struct {
	ID         int                      `json:"id"`
	Type       string                   `json:"type"`
	Title      string                   `json:"title"`
	Datasource *datasource              `json:"datasource"`
	GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
	Targets    []struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

func loadDashboard(t *testing.T) (*dashboard, []panel) {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var all []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			all = append(all, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return &d, all
}

// grafanaVars are the variables the queries may use, with the values the
// checks substitute (Grafana's own, and the dashboard's $system).
var grafanaVars = map[string]string{
	"__rate_interval": "5m", "__interval": "1m", "__range": "1d", "system": ".*",
}

var grafanaVar = regexp.MustCompile(`\$\{?(\w+)(?::\w+)?\}?`)

// expand replaces the Grafana variables of expr by vars; an unknown
// variable is an error.
func expand(expr string, vars map[string]string) (string, error) {
	var unknown []string
	out := grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		name := grafanaVar.FindStringSubmatch(m)[1]
		v, ok := vars[name]
		if !ok {
			unknown = append(unknown, m)
		}
		return v
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("unknown variables %v", unknown)
	}
	return out, nil
}

const dsInput = "${DS_PROMETHEUS}"

// seedPanels are the seed's four panels, with our metric names.
var seedPanels = map[string]string{
	"Rollback Count (7d)":       `sum(increase(rewind_rollbacks_total{result="succeeded", system=~"$system"}[7d]))`,
	"Average Rollback Duration": `sum(rate(rewind_rollback_duration_seconds_sum[7d])) / sum(rate(rewind_rollback_duration_seconds_count[7d]))`,
	"Rollback Success Rate": `sum(increase(rewind_rollbacks_total{result="succeeded", system=~"$system"}[7d]))
		/ sum(increase(rewind_rollbacks_total{result=~"succeeded|failed", system=~"$system"}[7d]))`,
	"Time to Detection (p95)": `histogram_quantile(0.95, sum by (le) (rate(rewind_detection_seconds_bucket[7d])))`,
}

// TestDashboard: the dashboard imports with a Prometheus datasource input,
// every query parses and uses only Rewind's real metrics, labels and label
// values, the layout has no overlaps, and the seed's four panels and the
// states, blind, paused, notifications and step panels are there.
func TestDashboard(t *testing.T) {
	d, panels := loadDashboard(t)
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d, want >= 36", d.SchemaVersion)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: both needed for provisioning", d.UID, d.Title)
	}
	if len(d.Inputs) != 1 || d.Inputs[0].Name != "DS_PROMETHEUS" || d.Inputs[0].Type != "datasource" || d.Inputs[0].PluginID != "prometheus" {
		t.Errorf("__inputs %+v, want one Prometheus datasource input DS_PROMETHEUS", d.Inputs)
	}
	checkDS := func(what string, ds *datasource) {
		if ds == nil || ds.Type != "prometheus" || ds.UID != dsInput {
			t.Errorf("%s: datasource %+v, want {prometheus %s}", what, ds, dsInput)
		}
	}
	checkExpr := func(what, expr string) {
		e, err := expand(expr, grafanaVars)
		if err == nil {
			err = checkPromQL(e)
		}
		if err != nil {
			t.Errorf("%s: %s: %v", what, expr, err)
		}
	}

	used := map[string]bool{}
	metricRef := regexp.MustCompile(`\b(rewind_[a-z_]+|up)\b`)
	ids := map[int]string{}
	titles := map[string]panel{}
	type cell struct{ x, y int }
	taken := map[cell]string{}
	for _, p := range panels {
		if prev, dup := ids[p.ID]; dup || p.ID == 0 {
			t.Errorf("panel %q: id %d (also %q)", p.Title, p.ID, prev)
		}
		ids[p.ID] = p.Title
		titles[p.Title] = p
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24 columns", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := taken[cell{x, y}]; ok {
					t.Errorf("panels %q and %q overlap at %d,%d", other, p.Title, x, y)
				}
				taken[cell{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		checkDS("panel "+p.Title, p.Datasource)
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource != nil {
				checkDS("panel "+p.Title+" query "+tg.RefID, tg.Datasource)
			}
			checkExpr("panel "+p.Title+" query "+tg.RefID, tg.Expr)
			for _, m := range metricRef.FindAllString(tg.Expr, -1) {
				used[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")] = true
			}
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			checkDS("annotation "+a.Name, a.Datasource)
			checkExpr("annotation "+a.Name, a.Expr)
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((\w+),\s*(\w+)\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		checkDS("variable "+v.Name, v.Datasource)
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("variable %s: %q is not label_values(metric, label)", v.Name, v.Definition)
			continue
		}
		if km, ok := knownMetrics[m[1]]; !ok {
			t.Errorf("variable %s: unknown metric %s", v.Name, m[1])
		} else if _, ok := km.labels[m[2]]; !ok {
			t.Errorf("variable %s: %s has no label %s", v.Name, m[1], m[2])
		}
		if !strings.Contains(string(v.Query), v.Definition) {
			t.Errorf("variable %s: query %s is not its definition %q", v.Name, v.Query, v.Definition)
		}
	}

	for title, want := range seedPanels {
		p, ok := titles[title]
		if !ok {
			t.Errorf("the seed's panel %q is missing", title)
			continue
		}
		if len(p.Targets) != 1 || !sameExpr(t, p.Targets[0].Expr, want) {
			t.Errorf("panel %q: %+v\nwant %s", title, p.Targets, want)
		}
	}
	for _, title := range []string{"Trigger States", "Current Trigger States", "Blind Systems", "Paused Systems",
		"Blind and Paused Systems", "Notifications by Result", "Rollback Step Duration (p95)", "Leaders"} {
		if _, ok := titles[title]; !ok {
			t.Errorf("panel %q is missing", title)
		}
	}
	for name := range knownMetrics {
		if !used[name] {
			t.Errorf("no panel shows %s", name)
		}
	}
}

// sameExpr compares two queries by their parsed form.
func sameExpr(t *testing.T, a, b string) bool {
	t.Helper()
	pa, err := promParser.ParseExpr(mustExpand(t, a))
	if err != nil {
		return false
	}
	pb, err := promParser.ParseExpr(mustExpand(t, b))
	if err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return pa.String() == pb.String()
}

func mustExpand(t *testing.T, expr string) string {
	t.Helper()
	e, err := expand(expr, grafanaVars)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestDashboardAgainstRealPrometheus loads 8 days of Rewind's metrics, as
// two replicas would have exported them, into a real Prometheus and
// evaluates every panel there: each shows data, and the seed's four panels
// and the health panels show the values the history implies.
func TestDashboardAgainstRealPrometheus(t *testing.T) {
	_, panels := loadDashboard(t)
	end := time.Now().Add(-time.Hour).Truncate(time.Hour)
	start := end.Add(-8 * 24 * time.Hour)
	const step = 30 * time.Minute
	day := 24 * time.Hour
	a := map[string]string{"job": "rewind", "instance": "10.0.0.1:8080"}
	b := map[string]string{"job": "rewind", "instance": "10.0.0.2:8080"}
	with := func(base map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	// steps: a counter that is 0 before each time and one more after it.
	count := func(at time.Time, times ...time.Time) float64 {
		n := 0.0
		for _, x := range times {
			if !at.Before(x) {
				n++
			}
		}
		return n
	}
	succeeded := []time.Time{end.Add(-6 * day), end.Add(-3 * day), end.Add(-1 * day)}
	failed := []time.Time{end.Add(-2 * day)}
	old := []time.Time{end.Add(-7*day - 12*time.Hour)} // before the 7-day window, on the other replica
	durations := []float64{10, 20, 30, 100}            // the four rollbacks above, in time order
	rollbackTimes := []time.Time{succeeded[0], failed[0], succeeded[1], succeeded[2]}
	detectBounds := []float64{0, 15, 30, 60, 120, 180, 300, 420, 600, 900, 1800}
	durBounds := []float64{1, 2, 5, 10, 20, 30, 60, 120, 300, 600}
	stepBounds := []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120}
	var fastDetections []time.Time // 19 detections of 45 s within the window, and one of 400 s (below)
	for i := range 19 {
		fastDetections = append(fastDetections, end.Add(-6*day+time.Duration(i)*6*time.Hour))
	}

	var om testenv.OpenMetrics
	for at := start; !at.After(end); at = at.Add(step) {
		sys := with(a, "system", "dwcp-manager")
		om.Counter("rewind_rollbacks_total", with(sys, "trigger", "error-rate-high", "result", "succeeded"), at, count(at, succeeded...))
		om.Counter("rewind_rollbacks_total", with(sys, "trigger", "error-rate-high", "result", "failed"), at, count(at, failed...))
		om.Counter("rewind_rollbacks_total", with(b, "system", "dwcp-manager", "trigger", "manual", "result", "succeeded"), at, count(at, old...))
		// The four rollbacks' durations.
		buckets, n, sum := map[float64]float64{}, 0.0, 0.0
		for i, rt := range rollbackTimes {
			if !at.Before(rt) {
				n, sum = n+1, sum+durations[i]
				for _, le := range durBounds {
					if durations[i] <= le {
						buckets[le]++
					}
				}
			}
		}
		for _, le := range durBounds {
			buckets[le] += 0
		}
		om.Histogram("rewind_rollback_duration_seconds", a, at, buckets, n, sum)
		fast, slow := count(at, fastDetections...), count(at, end.Add(-12*time.Hour))
		detections := map[float64]float64{}
		for _, le := range detectBounds {
			detections[le] = 0
			if le >= 60 {
				detections[le] += fast
			}
			if le >= 420 {
				detections[le] += slow
			}
		}
		om.Histogram("rewind_detection_seconds", a, at, detections, fast+slow, fast*45+slow*400)
		steps := map[float64]float64{}
		for _, le := range stepBounds {
			steps[le] = 0
			if le >= 2 {
				steps[le] = n
			}
		}
		om.Histogram("rewind_step_duration_seconds", with(a, "step", "undo"), at, steps, n, n*1.5)
		for _, r := range []map[string]string{a, b} {
			for _, s := range []string{"dwcp-manager", "payments"} {
				blind := 0.0
				if s == "payments" && !at.Before(end.Add(-time.Hour)) {
					blind = 1
				}
				om.Gauge("rewind_system_blind", with(r, "system", s), at, blind)
				om.Gauge("rewind_system_paused", with(r, "system", s), at, 0)
				om.Counter("rewind_evaluations_total", with(r, "system", s), at, float64(at.Sub(start)/(30*time.Second)))
				om.Counter("rewind_query_errors_total", with(r, "system", s), at, 0)
				for _, tr := range []string{"error-rate-high", "latency-p99-high"} {
					state := "ok"
					switch {
					case s == "dwcp-manager" && tr == "error-rate-high" && !at.Before(end.Add(-30*time.Minute)):
						state = "firing"
					case s == "dwcp-manager" && tr == "latency-p99-high" && !at.Before(end.Add(-30*time.Minute)):
						state = "pending"
					case s == "payments":
						state = "degraded"
					}
					for _, st := range knownMetrics["rewind_trigger_state"].labels["state"] {
						v := 0.0
						if st == state {
							v = 1
						}
						om.Gauge("rewind_trigger_state", with(r, "system", s, "trigger", tr, "state", st), at, v)
					}
				}
			}
			leader := 0.0
			if r["instance"] == a["instance"] {
				leader = 1
			}
			// The evaluation load and a rollout-watch system.
			cycles := at.Sub(start) / (30 * time.Second)
			durations := map[float64]float64{}
			for _, le := range []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60} {
				if le >= 0.25 {
					durations[le] = float64(cycles)
				} else {
					durations[le] = 0
				}
			}
			om.Histogram("rewind_cycle_duration_seconds", r, at, durations, float64(cycles), 0.2*float64(cycles))
			om.Counter("rewind_cycle_queries_total", r, at, 12*float64(cycles))
			om.Counter("rewind_cycle_overruns_total", r, at, 0)
			om.Gauge("rewind_batches", r, at, 1)
			om.Counter("rewind_panics_total", with(r, "stage", "evaluate"), at, 0)
			om.Gauge("rewind_watch_rollout", with(r, "system", "checkout", "revision", "8b6d5c7f9", "previous", "5c9d7f6b8", "phase", "history"), at, 1)
			om.Counter("rewind_watch_rollouts_total", with(r, "system", "checkout"), at, 1)
			om.Counter("rewind_watch_shared_incidents_total", with(r, "system", "checkout", "trigger", "error-rate-high"), at, 0)
			om.Gauge("rewind_leader", r, at, leader)
			om.Gauge("up", r, at, 1)
			om.Gauge("rewind_build_info", with(r, "version", "v0.1.0"), at, 1)
			om.Counter("rewind_policy_reloads_total", with(r, "result", "ok"), at, 1)
			om.Counter("rewind_notifications_total", with(r, "notifier", "slack", "result", "delivered"), at, count(at, rollbackTimes...))
		}
	}
	prom := testenv.StartPrometheus(t, om.Bytes())

	// The backfilled samples are 30 minutes apart: windows must hold two.
	vars := map[string]string{"__rate_interval": "1h", "__interval": "1h", "__range": "1d", "system": ".*"}
	results := map[string][]float64{}
	for _, p := range panels {
		for _, tg := range p.Targets {
			expr, err := expand(tg.Expr, vars)
			if err != nil {
				t.Fatal(err)
			}
			vals, err := instantQuery(prom.URL, expr, end)
			if err != nil {
				t.Errorf("panel %q query %s: %v", p.Title, tg.RefID, err)
				continue
			}
			if len(vals) == 0 {
				t.Errorf("panel %q query %s shows nothing: %s", p.Title, tg.RefID, expr)
			}
			if len(p.Targets) == 1 {
				results[p.Title] = vals
			}
		}
	}
	// increase() over 7 days extrapolates the 7d-30m that the samples span
	// to the window: within 1 %.
	for title, want := range map[string]float64{
		"Rollback Count (7d)":       3,
		"Average Rollback Duration": 40,   // (10+20+30+100)/4
		"Rollback Success Rate":     0.75, // 3 of 4
		"Time to Detection (p95)":   60,   // the 19th of 20 detections is in (30, 60]
		"Blind Systems":             1,
		"Paused Systems":            0,
		"Leaders":                   1,
		"Replicas Up":               2,
	} {
		got := results[title]
		if len(got) != 1 || math.Abs(got[0]-want) > 0.01*math.Max(1, want) {
			t.Errorf("panel %q = %v, want %g", title, got, want)
		}
	}
	// Firing (2) and pending (1) for dwcp-manager, degraded (4) for payments.
	if got := results["Trigger States"]; len(got) != 4 {
		t.Errorf("Trigger States: %v, want 4 triggers", got)
	} else if sum := got[0] + got[1] + got[2] + got[3]; sum != 2+1+4+4 {
		t.Errorf("Trigger States: %v, want the codes 2, 1, 4, 4", got)
	}
}

// instantQuery evaluates expr at t through the HTTP API.
func instantQuery(base, expr string, at time.Time) ([]float64, error) {
	resp, err := http.Get(base + "/api/v1/query?" + url.Values{"query": {expr}, "time": {strconv.FormatInt(at.Unix(), 10)}}.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status, Error string
		Data          struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("%s", body.Error)
	}
	if body.Data.ResultType == "scalar" {
		var s [2]any
		if err := json.Unmarshal(body.Data.Result, &s); err != nil {
			return nil, err
		}
		v, err := strconv.ParseFloat(s[1].(string), 64)
		return []float64{v}, err
	}
	var vec []struct {
		Value [2]any `json:"value"`
	}
	if err := json.Unmarshal(body.Data.Result, &vec); err != nil {
		return nil, err
	}
	var out []float64
	for _, s := range vec {
		v, err := strconv.ParseFloat(s.Value[1].(string), 64)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
