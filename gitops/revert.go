package gitops

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/gitops/gitrepo"
	"github.com/rewind-sre/rewind/gitops/pullrequest"
)

// Facts of the git-revert step.
const (
	FactBranch      = "branch"
	FactCommit      = "commit"
	FactRepository  = "repository"
	FactPullRequest = "pullRequest"
	FactFiles       = "files"
	FactBase        = "base" // the branch the revert is proposed against
)

// DefaultBranchPrefix starts the name of every revert branch.
const DefaultBranchPrefix = "rewind/"

// Revert is the git-revert executor: it proposes in Git the change the
// rollback made in the cluster — the previous image of every container the
// undo step changed (its fromImages/toImages facts), and the VirtualService
// drained — on a branch named after the rollback in the owner's source
// repository, and opens a pull request. A re-run finds the branch and the
// pull request it made.
type Revert struct {
	Finder *Finder
	Refs   []Ref
	Owners []Owner // explicit owners; nil: detected from Refs
	// Auth returns the Git credentials (read from files each time: a
	// rotated token is picked up); nil or a nil result: anonymous.
	Auth         func() (*gitrepo.Auth, error)
	Opener       pullrequest.Opener // nil: push the branch only
	BranchPrefix string             // default DefaultBranchPrefix
	Author       gitrepo.Author
	Weights      *gitrepo.Weights // the drained VirtualService, if any
	ResumeHint   string
}

var _ rewind.Executor = (*Revert)(nil)

func (r *Revert) branch(id string) string {
	p := r.BranchPrefix
	if p == "" {
		p = DefaultBranchPrefix
	}
	return p + id
}

// Plan names the branch and the repository; what changes in which file is
// known only after the undo step.
func (r *Revert) Plan(ctx context.Context, rb *rewind.Rollback) ([]rewind.Change, error) {
	src, owner, err := r.source(ctx)
	if err != nil || src == nil {
		return nil, err
	}
	pr := "no pull request (none configured)"
	if r.Opener != nil {
		pr = "open a pull request"
	}
	return []rewind.Change{{Target: "Git " + src.String(), Action: "push branch " + r.branch(rb.ID),
		Detail: fmt.Sprintf("commit the previous image of every container the undo step changes (and the drained VirtualService weights) where %s's manifests set them; %s", owner, pr)}}, nil
}

// Do proposes the revert.
func (r *Revert) Do(ctx context.Context, rb *rewind.Rollback) (rewind.StepResult, error) {
	edit := r.edit(rb)
	if len(edit.Images) == 0 {
		return rewind.StepResult{Skipped: true, Detail: "the undo step changed no image: nothing to revert in Git"}, nil
	}
	src, owner, err := r.source(ctx)
	if err != nil {
		return rewind.StepResult{}, err
	}
	if src == nil {
		return rewind.StepResult{Skipped: true, Detail: "no GitOps owner with a Git source"}, nil
	}
	var auth *gitrepo.Auth
	if r.Auth != nil {
		if auth, err = r.Auth(); err != nil {
			return rewind.StepResult{}, fmt.Errorf("reading the Git credentials: %w", err)
		}
	}
	res, err := gitrepo.Propose(ctx, *src, auth, gitrepo.Proposal{
		Branch: r.branch(rb.ID), Message: r.message(rb, owner, edit), Edit: edit, Author: r.author(),
	})
	if err != nil {
		return rewind.StepResult{}, err
	}
	facts := map[string]string{FactBranch: res.Branch, FactCommit: res.Commit, FactRepository: src.URL, FactBase: res.Base}
	var files []string
	for f, what := range res.Files {
		files = append(files, f+": "+strings.Join(what, "; "))
	}
	sort.Strings(files)
	if len(files) > 0 {
		facts[FactFiles] = strings.Join(files, "\n")
	}
	detail := fmt.Sprintf("pushed the revert on branch %s of %s", res.Branch, src.URL)
	if res.Existed {
		detail = fmt.Sprintf("the revert branch %s is on %s already", res.Branch, src.URL)
	}
	if r.Opener != nil {
		o, err := r.Opener.Open(ctx, pullrequest.PullRequest{Head: res.Branch, Base: res.Base,
			Title: title(rb, edit), Body: r.message(rb, owner, edit)})
		if err != nil {
			return rewind.StepResult{Facts: facts, Detail: detail}, err
		}
		facts[FactPullRequest] = o.URL
		detail += "; pull request " + o.URL
	}
	return rewind.StepResult{Detail: detail + "; merge it, then resume " + owner.String() + r.hint(), Facts: facts}, nil
}

func (r *Revert) hint() string {
	if r.ResumeHint == "" {
		return ""
	}
	return " (" + r.ResumeHint + ")"
}

func (r *Revert) author() gitrepo.Author {
	a := r.Author
	if a.Name == "" {
		a.Name = "Rewind"
	}
	if a.Email == "" {
		a.Email = "rewind@localhost"
	}
	return a
}

// edit reads the images the undo step changed: "name=image,..." before and after.
func (r *Revert) edit(rb *rewind.Rollback) gitrepo.Edit {
	e := gitrepo.Edit{Weights: r.Weights}
	undo := rb.Step(rewind.StepUndo)
	if undo == nil {
		return e
	}
	from, to := images(undo.Facts["fromImages"]), images(undo.Facts["toImages"])
	names := make([]string, 0, len(from))
	for n := range from {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if t, ok := to[n]; ok && t != from[n] && t != "" {
			e.Images = append(e.Images, gitrepo.Image{From: from[n], To: t})
		}
	}
	return e
}

func images(s string) map[string]string {
	m := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		if n, im, ok := strings.Cut(part, "="); ok {
			m[n] = im
		}
	}
	return m
}

func title(rb *rewind.Rollback, e gitrepo.Edit) string {
	var to []string
	for _, im := range e.Images {
		to = append(to, im.To)
	}
	return fmt.Sprintf("Revert %s to %s (Rewind rollback %s)", rb.System, strings.Join(to, ", "), rb.ID)
}

// message is the commit message and the pull request's body: the
// rollback id, the triggers and the evidence.
func (r *Revert) message(rb *rewind.Rollback, owner Owner, e gitrepo.Edit) string {
	var b strings.Builder
	b.WriteString(title(rb, e) + "\n\n")
	fmt.Fprintf(&b, "Rewind rolled %s back in the cluster and suspended %s so that it does not re-apply the bad version.\n", rb.System, owner)
	fmt.Fprintf(&b, "This commit puts the previous version back in Git; once it is merged, resume %s%s.\n\n", owner, r.hint())
	for _, im := range e.Images {
		fmt.Fprintf(&b, "- %s → %s\n", im.From, im.To)
	}
	fmt.Fprintf(&b, "\nRollback: %s\nTriggers: %s\n", rb.ID, rb.Reason)
	if rb.Evidence != "" {
		fmt.Fprintf(&b, "Evidence: %s\n", rb.Evidence)
	}
	return b.String()
}

// source finds the Git source of the first owner that has one.
func (r *Revert) source(ctx context.Context) (*gitrepo.Source, Owner, error) {
	owners := r.Owners
	if owners == nil {
		var err error
		if owners, err = r.Finder.Owners(ctx, r.Refs...); err != nil {
			return nil, Owner{}, err
		}
	}
	return firstSource(ctx, r.Finder, owners)
}

// firstSource returns the Git source of the first of owners that has one.
func firstSource(ctx context.Context, f *Finder, owners []Owner) (*gitrepo.Source, Owner, error) {
	for _, o := range owners {
		src, err := SourceOf(ctx, f, o)
		if err != nil {
			return nil, o, err
		}
		if src != nil {
			return src, o, nil
		}
	}
	return nil, Owner{}, nil
}

// SourceOf returns where o's manifests are in Git: a Kustomization's
// GitRepository (url, ref.branch) and path; an Application's source
// (repoURL, targetRevision, path; the first of spec.sources with a path);
// for a HelmRelease, the source of the Kustomization that applies it
// (its spec.values are in that Kustomization's manifests). nil: none.
func SourceOf(ctx context.Context, f *Finder, o Owner) (*gitrepo.Source, error) {
	obj, err := f.getObj(ctx, o.Kind.GVR(), o.Namespace, o.Name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", o, err)
	}
	switch o.Kind {
	case KindApplication:
		return appSource(obj), nil
	case KindHelmRelease:
		l := obj.GetLabels()
		if l[LabelKustomizeName] == "" {
			return nil, nil
		}
		return SourceOf(ctx, f, Owner{Kind: KindKustomization, Namespace: l[LabelKustomizeNamespace], Name: l[LabelKustomizeName]})
	}
	kind, _, _ := unstructured.NestedString(obj.Object, "spec", "sourceRef", "kind")
	name, _, _ := unstructured.NestedString(obj.Object, "spec", "sourceRef", "name")
	ns, _, _ := unstructured.NestedString(obj.Object, "spec", "sourceRef", "namespace")
	path, _, _ := unstructured.NestedString(obj.Object, "spec", "path")
	if kind != "GitRepository" {
		return nil, nil
	}
	if ns == "" {
		ns = o.Namespace
	}
	repo, err := f.getObj(ctx, GitRepositoryGVR, ns, name)
	if err != nil {
		return nil, fmt.Errorf("reading Flux GitRepository %s/%s: %w", ns, name, err)
	}
	url, _, _ := unstructured.NestedString(repo.Object, "spec", "url")
	branch, _, _ := unstructured.NestedString(repo.Object, "spec", "ref", "branch")
	if branch == "" {
		branch = "master" // source-controller's default
	}
	return &gitrepo.Source{URL: url, Branch: branch, Path: path}, nil
}

func appSource(app *unstructured.Unstructured) *gitrepo.Source {
	read := func(m map[string]any) *gitrepo.Source {
		url, _, _ := unstructured.NestedString(m, "repoURL")
		rev, _, _ := unstructured.NestedString(m, "targetRevision")
		path, found, _ := unstructured.NestedString(m, "path")
		if url == "" || !found {
			return nil
		}
		return &gitrepo.Source{URL: url, Branch: rev, Path: path}
	}
	if m, ok, _ := unstructured.NestedMap(app.Object, "spec", "source"); ok {
		if s := read(m); s != nil {
			return s
		}
	}
	list, _, _ := unstructured.NestedSlice(app.Object, "spec", "sources")
	for _, item := range list {
		if m, ok := item.(map[string]any); ok {
			if s := read(m); s != nil {
				return s
			}
		}
	}
	return nil
}
