package gitops_test

import (
	"os"
	"path/filepath"
	"testing"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/gitops"
	"github.com/rewind-sre/rewind/policy"
)

func TestForSystem(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse("p.yaml", []byte(`apiVersion: rewind/v1
kind: Policy
systems:
  - name: detected
    prometheus: { url: http://127.0.0.1:9090 }
    canary: { selector: 'version="canary"' }
    baseline: { selector: 'version="baseline"' }
    triggers: [{ name: e, expr: 'up == 0' }]
    rollback:
      kubernetes: { namespace: shop, deployment: web-canary }
      istio: { virtualService: web, baselineHost: web-baseline, canaryHost: web-canary }
      gitops:
        onSuspendFailure: proceed
        revert: { pullRequest: { github: { repo: shop/apps, tokenFile: `+tok+` } } }
  - name: named
    prometheus: { url: http://127.0.0.1:9090 }
    canary: { selector: 'version="canary"' }
    baseline: { selector: 'version="baseline"' }
    triggers: [{ name: e, expr: 'up == 0' }]
    rollback:
      gitops: { owners: [{ kind: HelmRelease, namespace: shop, name: web }] }
  - name: off
    prometheus: { url: http://127.0.0.1:9090 }
    canary: { selector: 'version="canary"' }
    baseline: { selector: 'version="baseline"' }
    triggers: [{ name: e, expr: 'up == 0' }]
    rollback:
      kubernetes: { namespace: shop, deployment: web-canary }
      gitops: none
  - name: nothing-to-look-at
    prometheus: { url: http://127.0.0.1:9090 }
    canary: { selector: 'version="canary"' }
    baseline: { selector: 'version="baseline"' }
    triggers: [{ name: e, expr: 'up == 0' }]
`))
	if err != nil {
		t.Fatal(err)
	}
	s := gitops.ForSystem(nil, p.System("detected"))
	if s == nil || len(s.Refs) != 2 || s.Refs[1].Namespace != "shop" || s.Owners != nil || s.Weights == nil || s.Weights.CanaryHost != "web-canary" {
		t.Fatalf("detected: %+v", s)
	}
	ex := s.Executors()
	sus, ok := ex[rewind.StepSuspendGitOps].(*gitops.Suspend)
	if !ok || !sus.Proceed || sus.ResumeHint != "rewind resume-gitops --system detected" {
		t.Fatalf("suspend executor %+v", ex[rewind.StepSuspendGitOps])
	}
	if rv, ok := ex[rewind.StepGitRevert].(*gitops.Revert); !ok || rv.Opener == nil || rv.BranchPrefix != "rewind/" {
		t.Fatalf("revert executor %+v", ex[rewind.StepGitRevert])
	}
	n := gitops.ForSystem(nil, p.System("named"))
	if n == nil || len(n.Owners) != 1 || n.Owners[0].Kind != gitops.KindHelmRelease || n.Owners[0].Found != "policy" {
		t.Fatalf("named: %+v", n)
	}
	if _, ok := n.Executors()[rewind.StepGitRevert]; ok {
		t.Error("a revert executor without revert in the policy")
	}
	if s := gitops.ForSystem(nil, p.System("off")); s != nil {
		t.Errorf("gitops: none gave %+v", s)
	}
	if s := gitops.ForSystem(nil, p.System("nothing-to-look-at")); s != nil {
		t.Errorf("no target gave %+v", s)
	}
}
