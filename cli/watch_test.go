package cli

import (
	"strings"
	"testing"
)

func TestPolicyDefaultWatchValidates(t *testing.T) {
	code, out, _ := runCLI(t, "policy", "default", "--watch")
	if code != 0 || !strings.Contains(out, "deployment: dwcp-manager") || !strings.Contains(out, `selector: 'namespace="dwcp",app="dwcp-manager"'`) {
		t.Fatalf("policy default --watch: %d\n%s", code, out)
	}
	p := writeFile(t, "p.yaml", out)
	if code, out, errs := runCLI(t, "validate", "--policy", p); code != 0 || !strings.Contains(out, "valid") {
		t.Fatalf("validate default --watch: %d %s %s", code, out, errs)
	}
	if code, _, errs := runCLI(t, "policy", "default", "--canary"); code != ExitError || !strings.Contains(errs, "[--watch]") {
		t.Fatalf("unknown flag: %d %s", code, errs)
	}
}
