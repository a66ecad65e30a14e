package gitops

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/gitops/github"
	"github.com/rewind-sre/rewind/gitops/gitlab"
	"github.com/rewind-sre/rewind/gitops/gitrepo"
	"github.com/rewind-sre/rewind/gitops/pullrequest"
	"github.com/rewind-sre/rewind/internal/secret"
	"github.com/rewind-sre/rewind/policy"
)

// The daemon's plug-in points: one system's GitOps executors, owners and
// resume, all from its policy.

// VirtualServiceGVR is the VirtualService resource read for its markers
// (v1beta1 where v1 is not served).
var VirtualServiceGVR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}

// System is one policy system's GitOps configuration.
type System struct {
	Name   string
	GitOps policy.GitOps
	Refs   []Ref   // the canary Deployment and the VirtualService
	Owners []Owner // the policy's explicit owners; nil: detected from Refs
	Finder *Finder
	// Weights is the drained VirtualService, written in Git by the revert.
	Weights *gitrepo.Weights
}

// ForSystem reads sys's policy; connect returns the cluster's client when
// a step first needs it. It returns nil when the system has `gitops: none`
// or no Kubernetes target to look at.
func ForSystem(connect func() (dynamic.Interface, error), sys *policy.System) *System {
	g := sys.Rollback.GitOps
	if g.None {
		return nil
	}
	s := &System{Name: sys.Name, GitOps: g, Finder: &Finder{Connect: connect, ArgoCDNamespace: g.ArgoCDNamespace}}
	if k := sys.Rollback.Kubernetes; k != nil {
		s.Refs = append(s.Refs, Ref{GVR: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, Kind: "Deployment", Namespace: k.Namespace, Name: k.Deployment})
	}
	if i := sys.Rollback.Istio; i != nil {
		s.Refs = append(s.Refs, Ref{GVR: VirtualServiceGVR, OtherVersions: []string{"v1beta1"}, Kind: "VirtualService", Namespace: i.Namespace, Name: i.VirtualService})
		canary := i.CanaryHost
		if canary != "" {
			s.Weights = &gitrepo.Weights{Name: i.VirtualService, BaselineHost: i.BaselineHost, CanaryHost: canary}
		}
	}
	for _, o := range g.Owners {
		s.Owners = append(s.Owners, Owner{Kind: Kind(o.Kind), Namespace: o.Namespace, Name: o.Name, Found: "policy"})
	}
	if len(s.Refs) == 0 && len(s.Owners) == 0 {
		return nil
	}
	return s
}

// ResumeHint is how people resume the system's reconciler.
func (s *System) ResumeHint() string { return "rewind resume-gitops --system " + s.Name }

// Executors returns the suspend-gitops executor and, when the policy asks
// for the revert, the git-revert executor.
func (s *System) Executors() map[rewind.StepName]rewind.Executor {
	out := map[rewind.StepName]rewind.Executor{
		rewind.StepSuspendGitOps: &Suspend{Finder: s.Finder, Refs: s.Refs, Owners: s.Owners,
			Proceed: s.GitOps.OnSuspendFailure == policy.SuspendFailureProceed, ResumeHint: s.ResumeHint()},
	}
	if r := s.GitOps.Revert; r != nil {
		out[rewind.StepGitRevert] = &Revert{Finder: s.Finder, Refs: s.Refs, Owners: s.Owners,
			Auth: gitAuth(r), Opener: opener(r), BranchPrefix: r.BranchPrefix,
			Author: gitrepo.Author{Name: r.AuthorName, Email: r.AuthorEmail}, Weights: s.Weights, ResumeHint: s.ResumeHint()}
	}
	return out
}

// FindOwners returns the system's owners: the policy's, or those the
// markers name now (for `rewind analyze`, the API and resume-gitops).
func (s *System) FindOwners(ctx context.Context) ([]Owner, error) {
	if s.Owners != nil {
		return s.Owners, nil
	}
	return s.Finder.Owners(ctx, s.Refs...)
}

// Resume resumes every owner of the system Rewind suspended.
func (s *System) Resume(ctx context.Context) ([]Resumed, error) {
	owners, err := s.FindOwners(ctx)
	if err != nil {
		return nil, err
	}
	return Resume(ctx, s.Finder, owners)
}

// gitAuth reads the Git credentials on each call (a rotated token is
// picked up); no password configured: anonymous.
func gitAuth(r *policy.GitRevert) func() (*gitrepo.Auth, error) {
	return func() (*gitrepo.Auth, error) {
		if !secret.Configured(r.Password) {
			return nil, nil
		}
		p, err := secret.Read(r.Password)
		if err != nil {
			return nil, err
		}
		return &gitrepo.Auth{Username: r.Username, Password: p}, nil
	}
}

// opener builds the pull-request client, reading its token at each call.
func opener(r *policy.GitRevert) pullrequest.Opener {
	switch {
	case r.GitHub != nil:
		h := *r.GitHub
		return openerFunc(func(ctx context.Context, pr pullrequest.PullRequest) (pullrequest.Opened, error) {
			tok, err := secret.Read(h.Token)
			if err != nil {
				return pullrequest.Opened{}, fmt.Errorf("github token: %w", err)
			}
			return (&github.Client{API: h.API, Repo: h.Repo, Token: tok}).Open(ctx, pr)
		})
	case r.GitLab != nil:
		h := *r.GitLab
		return openerFunc(func(ctx context.Context, pr pullrequest.PullRequest) (pullrequest.Opened, error) {
			tok, err := secret.Read(h.Token)
			if err != nil {
				return pullrequest.Opened{}, fmt.Errorf("gitlab token: %w", err)
			}
			return (&gitlab.Client{API: h.API, Project: h.Repo, Token: tok}).Open(ctx, pr)
		})
	case r.Webhook != nil:
		w := *r.Webhook
		return openerFunc(func(ctx context.Context, pr pullrequest.PullRequest) (pullrequest.Opened, error) {
			var key []byte
			if secret.Configured(w.Secret) {
				k, err := secret.Read(w.Secret)
				if err != nil {
					return pullrequest.Opened{}, fmt.Errorf("revert webhook secret: %w", err)
				}
				key = []byte(k)
			}
			return (&pullrequest.Webhook{URL: w.URL, Key: key}).Open(ctx, pr)
		})
	}
	return nil
}

type openerFunc func(ctx context.Context, pr pullrequest.PullRequest) (pullrequest.Opened, error)

func (f openerFunc) Open(ctx context.Context, pr pullrequest.PullRequest) (pullrequest.Opened, error) {
	return f(ctx, pr)
}
