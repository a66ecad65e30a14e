package ui

import (
	"strings"
	"testing"

	rewind "github.com/rewind-sre/rewind"
)

// TestRowsEscape: whatever text reaches the overview's rows comes out as
// text, never markup (names are validated by the policy, but the rows do
// not rely on it).
func TestRowsEscape(t *testing.T) {
	evil := `"><script>alert(1)</script><x a='`
	v := &sysView{Name: evil, Mode: evil, InFlight: evil, Paused: true, Blind: true, Attention: []string{evil},
		Triggers: []trigView{{Name: evil, State: rewind.TriggerState(evil), Canary: evil, Baseline: evil, Hold: evil, HoldNow: 1, HoldMax: 2}}}
	got := string(rowsHTML(v))
	for _, bad := range []string{"<script", "<x ", "'"} {
		if strings.Contains(got, bad) {
			t.Errorf("rows carry %q unescaped:\n%s", bad, got)
		}
	}
	if !strings.Contains(got, "&lt;script&gt;") {
		t.Errorf("the text is not in the rows, escaped:\n%s", got)
	}
	empty := string(rowsHTML(&sysView{Name: "a"}))
	if !strings.Contains(empty, `rowspan="1"`) || !strings.Contains(empty, "no triggers") {
		t.Errorf("a system without triggers: %s", empty)
	}
}
