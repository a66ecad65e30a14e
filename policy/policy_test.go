package policy

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/invalid/*.errors")

func TestDefaultPolicyIsValid(t *testing.T) {
	p, err := Parse("default.yaml", Default())
	if err != nil {
		t.Fatal(err)
	}
	s := p.Systems[0]
	if s.Name != "dwcp-manager" || s.Interval.Seconds() != 30 || len(s.Triggers) != 9 {
		t.Fatalf("unexpected default system: %s %s %d triggers", s.Name, s.Interval, len(s.Triggers))
	}
}

// TestInvalidPolicies checks every error, with file:line and path, at once.
func TestInvalidPolicies(t *testing.T) {
	files, _ := filepath.Glob("testdata/invalid/*.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(filepath.Base(f), data)
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("want policy.Errors, got %v", err)
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(f, ".yaml") + ".errors"
			if *update {
				os.WriteFile(golden, []byte(got), 0o644)
			}
			want, _ := os.ReadFile(golden)
			if got != string(want) {
				t.Errorf("errors differ\n got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestValidPolicies(t *testing.T) {
	files, _ := filepath.Glob("testdata/valid/*.yaml")
	files = append(files, "../examples/policy.yaml")
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestFloatLiterals(t *testing.T) {
	for in, want := range map[string]string{
		"canary > baseline * 2":    "canary > baseline * 2.0",
		"canary > 1.5":             "canary > 1.5",
		"canary > 1e3":             "canary > 1e3",
		"x2 > 3 && 'a 1' == 'a 1'": "x2 > 3.0 && 'a 1' == 'a 1'",
		"canary < 0.95":            "canary < 0.95",
		`"it's" == "x" || 10 < 2u`: `"it's" == "x" || 10.0 < 2u`,
	} {
		if got := floatLiterals(in); got != want {
			t.Errorf("floatLiterals(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConditionsEvaluate(t *testing.T) {
	prg, uses, err := compileCondition("canary > baseline * 1.5 && canary > 0")
	if err != nil || !uses {
		t.Fatal(err, uses)
	}
	for _, c := range []struct {
		c, b float64
		want bool
	}{{0.03, 0.01, true}, {0.01, 0.01, false}, {0, 0, false}} {
		got, err := evalCondition(prg, c.c, c.b)
		if err != nil || got != c.want {
			t.Errorf("(%g, %g) = %v, %v", c.c, c.b, got, err)
		}
	}
}

func TestAlertSplit(t *testing.T) {
	p, err := Parse("d", Default())
	if err != nil {
		t.Fatal(err)
	}
	a := p.Systems[0].Triggers[8].Alert
	if a == nil || a.Op != ">" || a.Threshold != 10 || !strings.HasPrefix(a.Vector, "sum(increase(dwcp_circuit_breaker_trips_total{version=\"canary\"}[5m]))") {
		t.Fatalf("split: %+v", a)
	}
	if !a.Keep(11) || a.Keep(10) {
		t.Fatal("keep")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Default())
	for _, g := range []string{"testdata/invalid/*.yaml", "testdata/valid/*.yaml"} {
		files, _ := filepath.Glob(g)
		for _, file := range files {
			b, _ := os.ReadFile(file)
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("f.yaml", data)
		if (p == nil) == (err == nil) {
			t.Fatalf("exactly one of policy and error: %v %v", p, err)
		}
		var errs Errors
		if err != nil && (!errors.As(err, &errs) || len(errs) == 0) {
			t.Fatalf("errors must be policy.Errors: %v", err)
		}
	})
}

// TestSequentialStepQueries: a sequential judge reads each interval's counts
// from the differences of its counters, derived from its window queries.
func TestSequentialStepQueries(t *testing.T) {
	text := `apiVersion: rewind/v1
kind: Policy
systems:
  - name: s
    interval: 1m
    canary:   { selector: 'version="canary"' }
    baseline: { selector: 'version="baseline"' }
    triggers:
      - name: errors
        judge:
          test: proportion
          bad:   'sum(increase(http_requests_total{status=~"5..", {{selector}} }[5m]))'
          total: 'sum(increase(http_requests_total{ {{selector}} }[5m] offset 1m))'
          minEffect: 1.5
          sequential: true
      - name: p99
        judge:
          test: latency
          buckets: 'sum by (le) (increase(http_request_duration_seconds_bucket{ {{selector}} }[5m]))'
          sequential: true
      - name: windowed
        judge:
          test: proportion
          bad:   'sum(increase(http_requests_total{status=~"5..", {{selector}} }[5m]))'
          total: 'sum(increase(http_requests_total{ {{selector}} }[5m]))'
          above: 0.03
`
	p, err := Parse("s.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	tr := p.Systems[0].Triggers
	j := tr[0].Judge
	if !j.Sequential || j.Step.Minutes() != 1 {
		t.Fatalf("sequential %v, step %s", j.Sequential, j.Step)
	}
	for got, want := range map[string]string{
		j.Canary.BadStep:                `sum(((http_requests_total{status=~"5..",version="canary"} - http_requests_total{status=~"5..",version="canary"} offset 1m) >= 0))`,
		j.Baseline.TotalStep:            `sum(((http_requests_total{version="baseline"} offset 1m - http_requests_total{version="baseline"} offset 2m) >= 0))`,
		tr[1].Judge.Canary.BucketsStep:  `sum by (le) (((http_request_duration_seconds_bucket{version="canary"} - http_request_duration_seconds_bucket{version="canary"} offset 1m) >= 0))`,
		tr[2].Judge.Canary.BadStep + "": "",
	} {
		if got != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
	if tr[2].Judge.Sequential {
		t.Error("sequential is off unless set")
	}
	qs := strings.Join(p.Systems[0].Queries(), "\n")
	if !strings.Contains(qs, j.Baseline.BadStep) || !strings.Contains(qs, tr[1].Judge.Baseline.BucketsStep) {
		t.Errorf("the interval queries are not among the system's queries:\n%s", qs)
	}
}
