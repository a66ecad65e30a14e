package policy

import "testing"

func TestGitOpsCompiles(t *testing.T) {
	p, err := Load("testdata/valid/gitops.yaml")
	if err != nil {
		t.Fatal(err)
	}
	flux := p.System("flux-detected").Rollback.GitOps
	if flux.None || flux.Owners != nil || flux.OnSuspendFailure != SuspendFailureProceed || !flux.AutoResume || flux.ArgoCDNamespace != "argocd" {
		t.Errorf("flux-detected: %+v", flux)
	}
	r := flux.Revert
	if r == nil || r.Username != "rewind" || r.Password.File != "/run/secrets/git/token" || r.BranchPrefix != "rollbacks/" ||
		r.AuthorName != "Rewind Bot" || r.GitHub == nil || r.GitHub.Repo != "shop/apps" || r.GitHub.Token.File != "/run/secrets/github/token" || r.GitLab != nil {
		t.Errorf("flux-detected revert: %+v", r)
	}
	argo := p.System("argo-named").Rollback.GitOps
	if len(argo.Owners) != 1 || argo.Owners[0] != (GitOpsOwner{Kind: OwnerApplication, Namespace: "argocd", Name: "search"}) ||
		argo.ArgoCDNamespace != "gitops" || argo.OnSuspendFailure != SuspendFailureStop {
		t.Errorf("argo-named: %+v", argo)
	}
	if g := argo.Revert; g == nil || g.Username != "git" || g.BranchPrefix != "rewind/" || g.GitLab == nil || g.GitLab.Repo != "shop/search" || g.GitLab.Token.Env != "GITLAB_TOKEN" {
		t.Errorf("argo-named revert: %+v", g)
	}
	if g := p.System("no-gitops").Rollback.GitOps; !g.None {
		t.Errorf("gitops: none compiled to %+v", g)
	}
	d, err := Parse("default.yaml", Default())
	if err != nil {
		t.Fatal(err)
	}
	if g := d.Systems[0].Rollback.GitOps; g.None || g.OnSuspendFailure != SuspendFailureStop || g.Revert != nil {
		t.Errorf("without the section: %+v, want detection on, stop on failure, no revert", g)
	}
}
