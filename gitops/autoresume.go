package gitops

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/gitops/gitrepo"
)

// SourceRevision is the commit of its Git source that o applies as soon as
// it is resumed, as its reconciler last saw it: for a Kustomization its
// GitRepository's status.artifact.revision (source-controller goes on
// fetching while the Kustomization is suspended); for a HelmRelease, the
// status.lastAppliedRevision of the Kustomization that applies it (its
// values are in that Kustomization's manifests); for an Argo CD
// Application its status.sync.revision (the application controller goes
// on comparing with Git while automated sync is off). A reconciler that
// has not seen a commit yet is an error.
func SourceRevision(ctx context.Context, f *Finder, o Owner) (string, error) {
	obj, err := f.getObj(ctx, o.Kind.GVR(), o.Namespace, o.Name)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", o, err)
	}
	switch o.Kind {
	case KindApplication:
		return appRevision(obj)
	case KindHelmRelease:
		l := obj.GetLabels()
		if l[LabelKustomizeName] == "" || l[LabelKustomizeNamespace] == "" {
			return "", fmt.Errorf("%s is not applied by a Flux Kustomization: its Git revision is unknown", o)
		}
		k := Owner{Kind: KindKustomization, Namespace: l[LabelKustomizeNamespace], Name: l[LabelKustomizeName]}
		kobj, err := f.getObj(ctx, KustomizationGVR, k.Namespace, k.Name)
		if err != nil {
			return "", fmt.Errorf("reading %s: %w", k, err)
		}
		rev, _, _ := unstructured.NestedString(kobj.Object, "status", "lastAppliedRevision")
		return commitOf(rev, k.String()+" status.lastAppliedRevision")
	}
	kind, _, _ := unstructured.NestedString(obj.Object, "spec", "sourceRef", "kind")
	name, _, _ := unstructured.NestedString(obj.Object, "spec", "sourceRef", "name")
	ns, _, _ := unstructured.NestedString(obj.Object, "spec", "sourceRef", "namespace")
	if kind != "GitRepository" {
		return "", fmt.Errorf("%s: source kind %q is not a GitRepository", o, kind)
	}
	if ns == "" {
		ns = o.Namespace
	}
	repo, err := f.getObj(ctx, GitRepositoryGVR, ns, name)
	if err != nil {
		return "", fmt.Errorf("reading Flux GitRepository %s/%s: %w", ns, name, err)
	}
	rev, _, _ := unstructured.NestedString(repo.Object, "status", "artifact", "revision")
	return commitOf(rev, "Flux GitRepository "+ns+"/"+name+" status.artifact.revision")
}

// appRevision reads an Application's synced-to revision: status.sync.revision,
// or for several sources the revision of the one appSource reads.
func appRevision(app *unstructured.Unstructured) (string, error) {
	if rev, _, _ := unstructured.NestedString(app.Object, "status", "sync", "revision"); rev != "" {
		return commitOf(rev, "Argo CD Application status.sync.revision")
	}
	revs, _, _ := unstructured.NestedStringSlice(app.Object, "status", "sync", "revisions")
	list, _, _ := unstructured.NestedSlice(app.Object, "spec", "sources")
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			continue
		}
		if _, found, _ := unstructured.NestedString(m, "path"); found && i < len(revs) {
			return commitOf(revs[i], fmt.Sprintf("Argo CD Application status.sync.revisions[%d]", i))
		}
	}
	return "", errors.New("the Argo CD Application has no status.sync.revision yet")
}

var commitRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// commitOf reads the commit of a revision as Flux and Argo CD write it:
// "main@sha1:HASH" (Flux v1), "main/HASH" (Flux v1beta2), "HASH".
func commitOf(rev, where string) (string, error) {
	h := rev
	if i := strings.LastIndexAny(h, ":/"); i >= 0 {
		h = h[i+1:]
	}
	if !commitRE.MatchString(h) {
		return "", fmt.Errorf("%s is %q, not a Git commit (not fetched yet?)", where, rev)
	}
	return h, nil
}

// AutoResult is what one automatic-resume check did.
type AutoResult struct {
	Resumed []Resumed // the owners resumed now; nil: none
	// Revision is the source revision that no longer sets the bad image.
	Revision string
	// Waiting says why nothing was resumed yet; "" when the owners were
	// resumed or rb suspended none (any more).
	Waiting string
}

// AutoResume resumes the owners that rb suspended once the revision of
// their Git source that they would apply (SourceRevision) no longer sets
// any image the undo step rolled back from: the revert is in, however it
// was merged (merge commit, squash, rebase, or a later release replacing
// the image). Until then it resumes nothing and says why in Waiting. It
// does nothing while rb runs, nor unless the policy says autoResume.
func (s *System) AutoResume(ctx context.Context, rb *rewind.Rollback) (AutoResult, error) {
	switch {
	case !s.GitOps.AutoResume || s.GitOps.Revert == nil:
		return AutoResult{Waiting: "automatic resume is off (rollback.gitops.autoResume)"}, nil
	case rb.State == rewind.RollbackRunning:
		return AutoResult{Waiting: "the rollback is still running"}, nil
	}
	edit := (&Revert{}).edit(rb)
	if len(edit.Images) == 0 {
		return AutoResult{Waiting: "the undo step changed no image: resume by hand (" + s.ResumeHint() + ")"}, nil
	}
	owners, err := s.FindOwners(ctx)
	if err != nil {
		return AutoResult{}, err
	}
	var mine []Owner
	for _, o := range owners {
		by, err := SuspendedBy(ctx, s.Finder, o)
		if err != nil {
			return AutoResult{}, err
		}
		if by == rb.ID {
			mine = append(mine, o)
		}
	}
	if len(mine) == 0 {
		return AutoResult{}, nil
	}
	src, owner, err := firstSource(ctx, s.Finder, owners)
	if err != nil {
		return AutoResult{}, err
	}
	if src == nil {
		return AutoResult{Waiting: "no owner with a Git source: resume by hand (" + s.ResumeHint() + ")"}, nil
	}
	rev, err := SourceRevision(ctx, s.Finder, owner)
	if err != nil {
		return AutoResult{}, err
	}
	auth, err := gitAuth(s.GitOps.Revert)()
	if err != nil {
		return AutoResult{}, fmt.Errorf("reading the Git credentials: %w", err)
	}
	files, err := gitrepo.StillSets(ctx, *src, auth, edit, rev)
	if errors.Is(err, gitrepo.ErrRevisionNotFound) {
		return AutoResult{Waiting: fmt.Sprintf("%s is at %s, which is not among the last commits of %s", owner, short(rev), src)}, nil
	}
	if err != nil {
		return AutoResult{}, err
	}
	if len(files) > 0 {
		return AutoResult{Revision: rev, Waiting: fmt.Sprintf("%s at %s still sets %s (%s): the revert is not merged yet",
			owner, short(rev), describeImages(edit), strings.Join(files, ", "))}, nil
	}
	resumed, err := Resume(ctx, s.Finder, mine)
	return AutoResult{Resumed: resumed, Revision: rev}, err
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

func describeImages(e gitrepo.Edit) string {
	var from []string
	for _, im := range e.Images {
		from = append(from, im.From)
	}
	return strings.Join(from, ", ")
}
