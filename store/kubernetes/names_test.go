package kubernetes

import (
	"strings"
	"testing"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation"

	rewind "github.com/rewind-sre/rewind"
)

func TestNames(t *testing.T) {
	seen := map[string]string{}
	for _, sys := range []string{"checkout", "Checkout", "checkout_eu", "checkout-eu", "dwcp.manager", "a/b", "ÄÖÜ", strings.Repeat("long-system-name-", 10), "-x-", "9lives"} {
		name := rollbackName(sys, 12345)
		if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
			t.Errorf("rollbackName(%q) = %q: %v", sys, name, errs)
		}
		if other, ok := seen[name]; ok {
			t.Errorf("%q and %q share the name %q", sys, other, name)
		}
		seen[name] = sys
		if errs := validation.IsValidLabelValue(labelValue(sys)); len(errs) > 0 {
			t.Errorf("labelValue(%q) = %q: %v", sys, labelValue(sys), errs)
		}
	}
	if got := rollbackName("checkout", 7); got != "checkout-7" {
		t.Errorf("rollbackName(checkout, 7) = %q", got)
	}
	if errs := validation.IsDNS1123Subdomain(noticeName("chat|rollback-decided/rb-1")); len(errs) > 0 {
		t.Error(errs)
	}
}

func TestClip(t *testing.T) {
	s := strings.Repeat("é", 3000) // 6000 bytes
	c, cut := clip(s, maxText)
	if !cut || len(c) > maxText || !utf8.ValidString(c) || !strings.HasSuffix(c, "[shortened; whole in the evidence bundle]") {
		t.Errorf("clip: %d bytes, cut %v, valid %v", len(c), cut, utf8.ValidString(c))
	}
	if c, cut := clip("short", maxText); cut || c != "short" {
		t.Errorf("clip(short) = %q, %v", c, cut)
	}
}

// A huge status is brought under the budget, and the runner's record it
// came from is left as it was.
func TestBoundStatus(t *testing.T) {
	rb := &rewind.Rollback{ID: "rb-1", System: "s", State: rewind.RollbackRunning}
	rb.Steps = []rewind.StepRecord{{Name: rewind.StepVerify, State: rewind.StepRunning, Detail: strings.Repeat("d", 100_000)}}
	var journal []journalEntry
	for i := range 1000 {
		journal = append(journal, journalEntry{Seq: int64(i + 1), State: "running", Detail: strings.Repeat("x", 5000)})
	}
	st := statusOf(rb, journal, 0)
	boundStatus(&st, DefaultMaxObjectBytes/2)
	if n := size(st); n > DefaultMaxObjectBytes/2 {
		t.Errorf("bounded status is %d bytes", n)
	}
	if len(rb.Steps[0].Detail) != 100_000 {
		t.Error("bounding changed the runner's record")
	}
	if st.Journal[0].Seq != 1 || st.Journal[len(st.Journal)-1].Seq != 1000 || st.JournalElided != 1000-1-keepJournalEnd || st.Truncated == "" {
		t.Errorf("journal %d entries (first %d, last %d), elided %d, truncated %q", len(st.Journal), st.Journal[0].Seq, st.Journal[len(st.Journal)-1].Seq, st.JournalElided, st.Truncated)
	}
}
