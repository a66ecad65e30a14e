package policy

import (
	"fmt"
	"regexp"
	"strings"
)

// GitOps says how a rollback deals with the GitOps reconciler (Flux, Argo
// CD) that applies the system from Git (rollback.gitops; docs/gitops.md).
// Without the section the owner is detected from the standard markers and
// a failure to suspend it stops the plan.
type GitOps struct {
	// None: `gitops: none` — Rewind never looks for or suspends an owner.
	None bool
	// Owners are named explicitly; nil: detected from the markers on the
	// canary Deployment and the VirtualService.
	Owners []GitOpsOwner
	// ArgoCDNamespace is where Argo CD's Applications live.
	ArgoCDNamespace string
	// OnSuspendFailure: stop (the plan stops before any cluster change) or
	// proceed (the step escalates and the plan goes on).
	OnSuspendFailure SuspendFailure
	// Revert proposes the revert in Git; nil: not proposed.
	Revert *GitRevert
	// AutoResume resumes the reconciler once the Git source's revision
	// contains the revert commit.
	AutoResume bool
}

// OwnerKind is the kind of a GitOps owner.
type OwnerKind string

const (
	OwnerKustomization OwnerKind = "Kustomization" // Flux
	OwnerHelmRelease   OwnerKind = "HelmRelease"   // Flux
	OwnerApplication   OwnerKind = "Application"   // Argo CD
)

// OwnerKinds lists the kinds an owner may have.
var OwnerKinds = []OwnerKind{OwnerKustomization, OwnerHelmRelease, OwnerApplication}

// GitOpsOwner is an owner named in the policy.
type GitOpsOwner struct {
	Kind      OwnerKind
	Namespace string
	Name      string
}

// SuspendFailure is what a failed suspension does.
type SuspendFailure string

const (
	SuspendFailureStop    SuspendFailure = "stop"
	SuspendFailureProceed SuspendFailure = "proceed"
)

// GitRevert configures the revert proposed in Git.
type GitRevert struct {
	Username     string // HTTP basic user for clone and push (default "git")
	Password     Secret // the password or token; empty: anonymous
	BranchPrefix string // default "rewind/"
	AuthorName   string // default "Rewind"
	AuthorEmail  string // default "rewind@localhost"
	GitHub       *PullRequestHost
	GitLab       *PullRequestHost
	Webhook      *Webhook
}

// PullRequestHost is a GitHub repository or a GitLab project.
type PullRequestHost struct {
	API   string // REST endpoint; default the public service's
	Repo  string // GitHub OWNER/NAME, or GitLab GROUP/NAME
	Token Secret
}

// The YAML of rollback.gitops.
type gitopsSpec struct {
	keyword          string
	Owners           []gitopsOwnerSpec `yaml:"owners"`
	ArgoCDNamespace  string            `yaml:"argocdNamespace"`
	OnSuspendFailure string            `yaml:"onSuspendFailure"`
	Revert           *gitRevertSpec    `yaml:"revert"`
	AutoResume       bool              `yaml:"autoResume"`
}

// decodeKeyword takes `gitops: none`.
func (g *gitopsSpec) decodeKeyword(s string) error {
	if s != "none" {
		return fmt.Errorf("must be none or a mapping, not %q", s)
	}
	g.keyword = s
	return nil
}

type gitopsOwnerSpec struct {
	Kind      string `yaml:"kind"`
	Namespace string `yaml:"namespace"`
	Name      string `yaml:"name"`
}

type gitRevertSpec struct {
	Username     string      `yaml:"username"`
	PasswordFile string      `yaml:"passwordFile"`
	PasswordEnv  string      `yaml:"passwordEnv"`
	BranchPrefix string      `yaml:"branchPrefix"`
	Author       *authorSpec `yaml:"author"`
	PullRequest  *prSpec     `yaml:"pullRequest"`
}

type authorSpec struct {
	Name  string `yaml:"name"`
	Email string `yaml:"email"`
}

type prSpec struct {
	GitHub  *prHostSpec  `yaml:"github"`
	GitLab  *prHostSpec  `yaml:"gitlab"`
	Webhook *webhookSpec `yaml:"webhook"`
}

type prHostSpec struct {
	API       string `yaml:"api"`
	Repo      string `yaml:"repo"`
	Project   string `yaml:"project"`
	TokenFile string `yaml:"tokenFile"`
	TokenEnv  string `yaml:"tokenEnv"`
}

var (
	k8sNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)
	repoRE    = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$`)
	branchRE  = regexp.MustCompile(`^[A-Za-z0-9._/-]{1,100}$`)
	urlRE     = regexp.MustCompile(`^https?://[^\s]+$`)
)

func (c *compiler) gitops(path string, g *gitopsSpec) GitOps {
	out := GitOps{ArgoCDNamespace: "argocd", OnSuspendFailure: SuspendFailureStop}
	if g == nil {
		return out
	}
	if g.keyword == "none" {
		return GitOps{None: true}
	}
	for i, o := range g.Owners {
		p := fmt.Sprintf("%s.owners[%d]", path, i)
		kind := OwnerKind(o.Kind)
		if !oneOf(o.Kind, kindNames()...) {
			c.errf(p+".kind", "must be one of %s, not %q", strings.Join(kindNames(), ", "), o.Kind)
		}
		if !k8sNameRE.MatchString(o.Namespace) {
			c.errf(p+".namespace", "required: the owner's namespace")
		}
		if !k8sNameRE.MatchString(o.Name) {
			c.errf(p+".name", "required: the owner's name")
		}
		out.Owners = append(out.Owners, GitOpsOwner{Kind: kind, Namespace: o.Namespace, Name: o.Name})
	}
	if g.ArgoCDNamespace != "" {
		out.ArgoCDNamespace = g.ArgoCDNamespace
		if !k8sNameRE.MatchString(g.ArgoCDNamespace) {
			c.errf(path+".argocdNamespace", "must be a namespace name, not %q", g.ArgoCDNamespace)
		}
	}
	if g.OnSuspendFailure != "" {
		out.OnSuspendFailure = SuspendFailure(g.OnSuspendFailure)
		if !oneOf(g.OnSuspendFailure, string(SuspendFailureStop), string(SuspendFailureProceed)) {
			c.errf(path+".onSuspendFailure", "must be stop or proceed, not %q", g.OnSuspendFailure)
		}
	}
	out.AutoResume = g.AutoResume
	if g.Revert != nil {
		out.Revert = c.gitRevert(path+".revert", g.Revert)
	}
	if out.AutoResume && out.Revert == nil {
		c.errf(path+".autoResume", "needs revert: Rewind resumes once the revert commit it pushed is in the source")
	}
	return out
}

func kindNames() []string {
	out := make([]string, len(OwnerKinds))
	for i, k := range OwnerKinds {
		out[i] = string(k)
	}
	return out
}

func (c *compiler) gitRevert(path string, r *gitRevertSpec) *GitRevert {
	out := &GitRevert{Username: "git", BranchPrefix: "rewind/", AuthorName: "Rewind", AuthorEmail: "rewind@localhost"}
	if r.Username != "" {
		out.Username = r.Username
	}
	if r.PasswordFile != "" || r.PasswordEnv != "" {
		out.Password = Secret{File: r.PasswordFile, Env: r.PasswordEnv}
		if r.PasswordFile != "" && r.PasswordEnv != "" {
			c.errf(path, "give one of passwordFile and passwordEnv")
		}
	}
	if r.BranchPrefix != "" {
		out.BranchPrefix = r.BranchPrefix
		if !branchRE.MatchString(r.BranchPrefix) || strings.Contains(r.BranchPrefix, "..") {
			c.errf(path+".branchPrefix", "must be letters, digits, '.', '_', '-', '/' (got %q)", r.BranchPrefix)
		}
	}
	if a := r.Author; a != nil {
		if a.Name != "" {
			out.AuthorName = a.Name
		}
		if a.Email != "" {
			out.AuthorEmail = a.Email
			if !strings.Contains(a.Email, "@") {
				c.errf(path+".author.email", "must be an email address, not %q", a.Email)
			}
		}
	}
	pr := r.PullRequest
	if pr == nil {
		return out
	}
	count := 0
	if pr.GitHub != nil {
		count++
		out.GitHub = c.prHost(path+".pullRequest.github", pr.GitHub, pr.GitHub.Repo, "repo")
	}
	if pr.GitLab != nil {
		count++
		out.GitLab = c.prHost(path+".pullRequest.gitlab", pr.GitLab, pr.GitLab.Project, "project")
	}
	if w := pr.Webhook; w != nil {
		count++
		out.Webhook = &Webhook{URL: w.URL, Secret: Secret{File: w.SecretFile, Env: w.SecretEnv}}
		if !urlRE.MatchString(w.URL) {
			c.errf(path+".pullRequest.webhook.url", "must be an http:// or https:// URL")
		}
		if w.SecretFile != "" && w.SecretEnv != "" {
			c.errf(path+".pullRequest.webhook", "give one of secretFile and secretEnv")
		}
	}
	if count != 1 {
		c.errf(path+".pullRequest", "give exactly one of github, gitlab, webhook")
	}
	return out
}

func (c *compiler) prHost(path string, h *prHostSpec, repo, field string) *PullRequestHost {
	out := &PullRequestHost{API: h.API, Repo: repo, Token: Secret{File: h.TokenFile, Env: h.TokenEnv}}
	if !repoRE.MatchString(repo) {
		c.errf(path+"."+field, "required: the repository's path, e.g. owner/name (got %q)", repo)
	}
	other := map[string]string{"repo": "project", "project": "repo"}[field]
	if (other == "repo" && h.Repo != "") || (other == "project" && h.Project != "") {
		c.errf(path+"."+other, "not a field here: use %s", field)
	}
	if h.API != "" && !urlRE.MatchString(h.API) {
		c.errf(path+".api", "must be an http:// or https:// URL")
	}
	if (h.TokenFile == "") == (h.TokenEnv == "") {
		c.errf(path, "give exactly one of tokenFile and tokenEnv")
	}
	return out
}
