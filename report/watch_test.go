package report

import (
	"strings"
	"testing"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
)

// TestRolloutSystem: a watch system's evidence and impact read the
// revisions its undo named, not the template's placeholders.
func TestRolloutSystem(t *testing.T) {
	p, err := policy.Parse("w.yaml", policy.DefaultWatch())
	if err != nil {
		t.Fatal(err)
	}
	sys := p.Systems[0]
	rb := &rewind.Rollback{Steps: []rewind.StepRecord{{Name: rewind.StepUndo, State: rewind.StepDone,
		Facts: map[string]string{"undoneHash": "7d9f8c6b5", "restoredHash": "5f6d7c8b9"}}}}
	got := rolloutSystem(sys, rb)
	q := strings.Join(got.Queries(), "\n")
	if !strings.Contains(q, `pod_template_hash="7d9f8c6b5"`) || !strings.Contains(q, `pod_template_hash="5f6d7c8b9"`) || strings.Contains(q, "<new revision>") {
		t.Fatalf("queries:\n%s", q)
	}
	if rolloutSystem(sys, &rewind.Rollback{}) != sys {
		t.Fatal("without the undo's facts, the template")
	}
}
