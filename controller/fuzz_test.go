package controller

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/store/sqlite"
)

// answer is what the fake Prometheus serves to every query.
type answer struct {
	status int
	body   []byte
}

// FuzzCycleAndJournal feeds arbitrary Prometheus answers through the whole
// evaluation cycle of the built-in policy (the HTTP client and its
// decoder, grouped queries and their fan-out, the triggers, the judge, the
// decision) and through the journal of any rollback it decides. Nothing
// may panic (a recovered panic counts as a failure here), every value kept
// or journaled is finite, every firing trigger holds on finite evidence,
// and every decided rollback is in the journal and reads back.
func FuzzCycleAndJournal(f *testing.F) {
	vec := func(samples ...string) string {
		return `{"status":"success","data":{"resultType":"vector","result":[` + strings.Join(samples, ",") + `]}}`
	}
	s := func(labels, v string) string { return `{"metric":{` + labels + `},"value":[1767225600,"` + v + `"]}` }
	for _, seed := range []string{
		vec(),
		vec(s(`"system":"s0","version":"canary"`, "+Inf"), s(`"system":"s0","version":"baseline"`, "NaN")),
		vec(s(`"system":"s0","version":"canary"`, "5"), s(`"system":"s1","version":"canary"`, "-Inf"), s(`"system":"s2"`, "1e308")),
		vec(s(`"system":"s1","version":"canary","le":"+Inf"`, "100"), s(`"system":"s1","version":"canary","le":"0.1"`, "NaN"),
			s(`"system":"s1","version":"baseline","le":"+Inf"`, "100"), s(`"system":"s1","version":"baseline","le":"0.1"`, "90")),
		vec(s(`"system":"s2","version":"canary","le":"NaN"`, "1")),
		`{"status":"success","data":{"resultType":"scalar","result":[1767225600,"+Inf"]}}`,
		`{"status":"error","errorType":"execution","error":"boom"}`,
		`{"status":"success","warnings":["partial"],"data":{"resultType":"vector","result":[]}}`,
		`not json`, ``,
	} {
		f.Add(200, []byte(seed))
	}
	f.Add(503, []byte(`{"status":"error","errorType":"unavailable","error":"busy"}`))
	f.Add(429, []byte(""))

	h := newFuzzHarness(f)
	f.Fuzz(func(t *testing.T, status int, body []byte) { h.once(t, status, body) })
}

// TestCycleAndJournalDecides: the fuzzer's harness does reach decisions and
// the journal, and never on non-finite values alone.
func TestCycleAndJournalDecides(t *testing.T) {
	h := newFuzzHarness(t)
	sample := func(sys, v string) string {
		return `{"metric":{"system":"` + sys + `","version":"canary"},"value":[1767225600,"` + v + `"]}`
	}
	body := `{"status":"success","data":{"resultType":"vector","result":[` + sample("s0", "+Inf") + "," + sample("s1", "NaN") + `]}}`
	if n := h.once(t, 200, []byte(body)); n != 0 {
		t.Fatalf("%d rollbacks on ±Inf and NaN", n)
	}
	body = `{"status":"success","data":{"resultType":"vector","result":[` + sample("s0", "+Inf") + "," + sample("s2", "12") + `]}}`
	if n := h.once(t, 200, []byte(body)); n != 1 {
		t.Fatalf("%d rollbacks journaled, want s2's", n)
	}
}

type fuzzHarness struct {
	current atomic.Pointer[answer]
	st      *sqlite.Store
	pol     *policy.Policy
}

func newFuzzHarness(t testing.TB) *fuzzHarness {
	h := &fuzzHarness{}
	h.current.Store(&answer{200, nil})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := h.current.Load()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = w.Write(a.body)
	}))
	t.Cleanup(api.Close)
	var err error
	h.st, err = sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "rewind.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.st.Close() })
	h.pol = fleetOfBuiltIn(t, api.URL, 3)
	return h
}

// once serves status and body to every query of three cycles of the
// built-in policy for three systems, checks the invariants and returns
// how many rollbacks it journaled.
func (h *fuzzHarness) once(t *testing.T, status int, body []byte) int {
	ctx := context.Background()
	st, pol := h.st, h.pol
	before, err := st.List(ctx, plan.ListOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	{
		if status < 100 || status > 599 {
			status = 200
		}
		h.current.Store(&answer{status, body})
		metrics := NewMetrics(prometheus.NewRegistry(), "fuzz")
		c := actingController(t, pol, st, metrics, 5*time.Second)
		bs := batches(c.systems(), DefaultBatchSystems)
		at := time.Unix(1767225600, 0)
		for i := range 3 { // hold times of 0s fire at once; a few cycles exercise the states
			for _, b := range bs {
				c.cycle(ctx, b, at.Add(time.Duration(i)*30*time.Second))
			}
		}
		c.Wait()
		if n := testutil.CollectAndCount(metrics.Panics); n > 0 {
			t.Fatalf("%d panics recovered", n)
		}
		for _, s := range c.Systems() {
			for _, tr := range s.Triggers {
				for _, v := range []*float64{tr.Canary, tr.Baseline} {
					if v != nil && !rewind.IsFinite(*v) {
						t.Fatalf("%s %s keeps %g", s.Name, tr.Name, *v)
					}
				}
			}
		}
		for _, sys := range c.systems() {
			for _, ts := range sys.state.Triggers {
				if ts.State != rewind.StateFiring {
					continue
				}
				if o := ts.Last; o.Outcome != rewind.OutcomeTrue {
					t.Fatalf("%s %s firing on a %s observation", sys.cfg.Name, ts.Trigger.Name, o.Outcome)
				}
			}
		}
	}
	rbs, err := st.List(ctx, plan.ListOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, rb := range rbs {
		got, err := st.Get(ctx, rb.ID)
		if err != nil {
			t.Fatalf("rollback %s not in the journal: %v", rb.ID, err)
		}
		if _, err := json.Marshal(got); err != nil {
			t.Fatalf("rollback %s: %v", rb.ID, err)
		}
	}
	return len(rbs) - len(before)
}
