package demo

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/demo/service"
	"github.com/rewind-sre/rewind/policy"
)

// TestExamplePolicyIsTheDemoPolicy: examples/demo-policy.yaml is the
// policy the demo runs.
func TestExamplePolicyIsTheDemoPolicy(t *testing.T) {
	b, err := os.ReadFile("../examples/demo-policy.yaml")
	if err != nil || string(b) != PolicyText() {
		t.Fatalf("examples/demo-policy.yaml differs from demo/policy.yaml (%v)", err)
	}
	if _, err := policy.Parse("demo", []byte(strings.ReplaceAll(PolicyText(), "{{sink}}", "http://127.0.0.1:1/"))); err != nil {
		t.Fatal(err)
	}
}

// safeBuffer collects a run's output from its goroutines.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// TestScenarios runs every scenario end to end, as `rewind demo` does:
// detection within the scaled hold time plus one interval and the scaled
// window (the time the window needs to see the fault), the drain verified by the
// canary's traffic, the evidence bundle and post-mortem present, notices
// received by the sink; "none" never rolls back.
func TestScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("each scenario runs about a minute")
	}
	pol, err := policy.Parse("demo", []byte(strings.ReplaceAll(PolicyText(), "{{sink}}", "http://127.0.0.1:1/")))
	if err != nil {
		t.Fatal(err)
	}
	sys := pol.Systems[0]
	hold := map[string]time.Duration{}
	for _, tr := range sys.Triggers {
		hold[tr.Name] = tr.For
	}
	// The scaled 5-minute window (20 s): a window test (the at-once error
	// ceiling at α = 0.001 against 3 %) may need all of it to see the fault
	// before its share is significantly past the threshold.
	const window = 20 * time.Second
	for _, f := range service.Faults() {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			out := &safeBuffer{}
			res, err := Run(context.Background(), Options{Scenario: string(f), Dir: t.TempDir(), Out: out})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if t.Failed() {
					t.Logf("output:\n%s", out.b.String())
				}
			}()
			if err := res.Check(string(f)); err != nil {
				t.Fatal(err)
			}
			if f == service.FaultNone {
				return
			}
			rb := res.Rollback
			bound := time.Duration(0)
			for _, name := range rb.Decision.Firing {
				bound = max(bound, hold[name])
			}
			if bound += sys.Interval + window; res.Detection > bound {
				t.Errorf("detected %s after the fault, later than %s", res.Detection, bound)
			}
			if drain := rb.Step(rewind.StepDrain); drain.State != rewind.StepDone || !strings.Contains(drain.Detail, "canary traffic below") {
				t.Errorf("drain not verified by the canary's traffic: %+v", drain)
			}
			if res.CanaryAfter > 5 {
				t.Errorf("%d requests reached the canary after the drain", res.CanaryAfter)
			}
			for _, f := range []string{"INDEX.md", "POSTMORTEM.md", "metrics.json", "decision.json"} {
				if _, err := os.Stat(filepath.Join(res.Evidence, f)); err != nil {
					t.Errorf("evidence: %v", err)
				}
			}
			for _, k := range []rewind.EventKind{rewind.EventRollbackDecided, rewind.EventRollbackCompleted} {
				if !slices.Contains(res.Notices, string(k)) {
					t.Errorf("the sink did not receive %s: %v", k, res.Notices)
				}
			}
			t.Logf("%s: detected %s after the fault by %v, rolled back and verified in %s", f, res.Detection.Round(time.Second), rb.Decision.Firing, rb.Ended.Sub(rb.Started).Round(time.Millisecond))
		})
	}
}

func TestPaintColorsStatesOnATerminal(t *testing.T) {
	got := paint("error-rate-high            pending → firing  canary=0.05")
	if !strings.Contains(got, "\x1b[1;31mfiring\x1b[0m") || strings.Contains(paint("plain"), "\x1b") {
		t.Fatalf("paint: %q", got)
	}
}
