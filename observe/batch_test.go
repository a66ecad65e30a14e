package observe

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
)

// manySystems is the built-in policy copied for n systems told apart by a
// system label, as a user with many services writes it.
func manySystems(t testing.TB, n int) *policy.Policy {
	t.Helper()
	def := string(policy.Default())
	head, sys, _ := strings.Cut(def, "systems:\n")
	var b strings.Builder
	b.WriteString(head + "systems:\n")
	for i := range n {
		s := strings.Replace(sys, "name: dwcp-manager", fmt.Sprintf("name: s%d", i), 1)
		s = strings.Replace(s, `selector: 'version="canary"'`, fmt.Sprintf(`selector: 'system="s%d",version="canary"'`, i), 1)
		s = strings.Replace(s, `selector: 'version="baseline"'`, fmt.Sprintf(`selector: 'system="s%d",version="baseline"'`, i), 1)
		b.WriteString(s)
	}
	p, err := policy.Parse("many.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBatchGroupsTheBuiltInPolicy: the built-in policy copied for many
// systems costs one query per shape per cycle, whatever their number.
func TestBatchGroupsTheBuiltInPolicy(t *testing.T) {
	p := manySystems(t, 300)
	b := NewBatch(p.Systems, BatchOptions{})
	if len(b.Ungrouped) > 0 {
		t.Errorf("ungrouped: %q", b.Ungrouped)
	}
	// 12 shapes (9 windows and the sequential judges' 3 interval counts);
	// the two-sided ones have 600 members, within one query each.
	if got := len(b.Queries()); got != 12 {
		t.Errorf("%d queries per cycle for 300 systems, want 12: %q", got, b.Queries())
	}
	if got := len(NewBatch(p.Systems, BatchOptions{MaxMembers: 100}).Queries()); got != 5*3+7*6 { // 5 canary-only shapes, 7 two-sided
		t.Errorf("%d queries with at most 100 members each", got)
	}
	if got := len(NewBatch(p.Systems, BatchOptions{MaxMembers: 1}).Queries()); got != 300*len(p.Systems[0].Queries()) {
		t.Errorf("%d queries with grouping off", got)
	}
}

// regexSource answers a grouped query from a table of per-member values
// after checking the query names the members in a set matcher, and fails
// every query that names system "s3" with err.
type regexSource struct {
	err   error
	calls int
	mu    sync.Mutex
}

func (r *regexSource) Query(_ context.Context, q string, at time.Time) (rewind.Vector, error) {
	r.mu.Lock()
	r.calls++
	r.mu.Unlock()
	if strings.Contains(q, "s3") {
		return nil, r.err
	}
	var out rewind.Vector
	for i := range 8 {
		if s := fmt.Sprintf("s%d", i); strings.Contains(q, `"`+s+`"`) || strings.Contains(q, s+"|") || strings.Contains(q, "|"+s) {
			out = append(out, rewind.Sample{Labels: map[string]string{"system": s}, T: at, V: float64(i)})
		}
	}
	return out, nil
}

// TestBatchSplitsAFailingGroupedQuery: a grouped query that fails because
// of one member is split until that member alone fails; a source that is
// down or overloaded is not asked again.
func TestBatchSplitsAFailingGroupedQuery(t *testing.T) {
	var systems []*policy.System
	for i := range 8 {
		systems = append(systems, &policy.System{Name: fmt.Sprintf("s%d", i), Triggers: []*policy.Trigger{
			{Name: "x", Form: policy.FormExpr, Expr: fmt.Sprintf(`sum(x{system="s%d"})`, i)}}})
	}
	b := NewBatch(systems, BatchOptions{})
	if len(b.Queries()) != 1 {
		t.Fatalf("queries %q", b.Queries())
	}
	at := time.Unix(1e9, 0)
	src := &regexSource{err: fmt.Errorf("%w: many-to-many matching not allowed", rewind.ErrQuery)}
	ans := b.Fetch(context.Background(), src, at, 2)
	for i, s := range systems {
		o := ans.Observe(context.Background(), s, 1)[0]
		switch {
		case i == 3 && o.Outcome != rewind.OutcomeError:
			t.Errorf("s3: %s, want its own query error", o.Outcome)
		case i != 3 && (o.Outcome != rewind.OutcomeTrue || *o.Canary != float64(i)):
			t.Errorf("%s: %s %v (%s), want its own value", s.Name, o.Outcome, o.Canary, o.Reason)
		}
	}
	if src.calls != ans.Sent || src.calls > 1+2*3 {
		t.Errorf("%d queries (%d counted) to isolate one member of 8", src.calls, ans.Sent)
	}
	down := &regexSource{err: fmt.Errorf("%w: %w: 503", rewind.ErrQuery, rewind.ErrUnavailable)}
	ans = b.Fetch(context.Background(), down, at, 2)
	if down.calls != 1 {
		t.Errorf("an overloaded source was asked %d times", down.calls)
	}
	for _, s := range systems {
		if o := ans.Observe(context.Background(), s, 1)[0]; o.Outcome != rewind.OutcomeError {
			t.Errorf("%s: %s with the source down", s.Name, o.Outcome)
		}
	}
}
