package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/ssa"
	ssautils "github.com/fluxcd/pkg/ssa/utils"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// reconcile fetches, builds and applies one Kustomization; it returns the
// revision and a summary of the changes.
func (r *reconciler) reconcile(ctx context.Context, k *kustomizev1.Kustomization) (string, string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if k.Spec.SourceRef.Kind != sourcev1.GitRepositoryKind {
		return "", "", fmt.Errorf("sourceRef kind %q: only GitRepository", k.Spec.SourceRef.Kind)
	}
	ns := k.Spec.SourceRef.Namespace
	if ns == "" {
		ns = k.Namespace
	}
	var repo sourcev1.GitRepository
	if err := r.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: k.Spec.SourceRef.Name}, &repo); err != nil {
		return "", "", fmt.Errorf("reading GitRepository: %w", err)
	}
	if repo.Status.Artifact == nil {
		return "", "", fmt.Errorf("GitRepository %s/%s has no artifact yet", ns, repo.Name)
	}
	rev := repo.Status.Artifact.Revision
	dir, err := os.MkdirTemp("", "flux-reconciler-")
	if err != nil {
		return rev, "", err
	}
	defer os.RemoveAll(dir)
	if err := r.checkout(ctx, &repo, rev, dir); err != nil {
		return rev, "", err
	}
	objs, err := build(filepath.Join(dir, filepath.Clean("/"+k.Spec.Path)), k.Spec.TargetNamespace)
	if err != nil {
		return rev, "", err
	}
	m := ssa.NewResourceManager(r.c, r.poller, ssa.Owner{Field: "kustomize-controller", Group: kustomizev1.GroupVersion.Group})
	m.SetOwnerLabels(objs, k.Name, k.Namespace)
	cs, err := m.ApplyAllStaged(ctx, objs, ssa.DefaultApplyOptions())
	if err != nil {
		return rev, "", err
	}
	var changed []string
	for _, e := range cs.Entries {
		if e.Action != ssa.UnchangedAction {
			changed = append(changed, e.String())
		}
	}
	if len(changed) == 0 {
		return rev, "no change", nil
	}
	return rev, strings.Join(changed, "; "), nil
}

// fetch lists the GitRepository's branch head and records it in its
// status.artifact.revision, as source-controller does; it returns the
// revision when it is new, "" otherwise.
func (r *reconciler) fetch(ctx context.Context, repo *sourcev1.GitRepository) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	branch := branchOf(repo)
	auth, err := r.auth(ctx, repo)
	if err != nil {
		return "", err
	}
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{repo.Spec.URL}})
	refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: auth})
	if err != nil {
		return "", fmt.Errorf("listing %s: %w", repo.Spec.URL, err)
	}
	var head plumbing.Hash
	for _, ref := range refs {
		if ref.Name() == plumbing.NewBranchReferenceName(branch) {
			head = ref.Hash()
		}
	}
	if head.IsZero() {
		return "", fmt.Errorf("%s has no branch %s", repo.Spec.URL, branch)
	}
	rev := branch + "@sha1:" + head.String()
	if repo.Status.Artifact != nil && repo.Status.Artifact.Revision == rev {
		return "", nil
	}
	now := metav1.Now()
	// source-controller's digest is the sha256 of the artifact's tarball;
	// the stand-in keeps no tarball, so it digests the revision it names
	// (the CRD requires the field).
	sum := sha256.Sum256([]byte(rev))
	repo.Status.Artifact = &meta.Artifact{Path: "gitrepository/" + repo.Namespace + "/" + repo.Name + "/" + head.String() + ".tar.gz",
		URL: "http://flux-reconciler.invalid/" + repo.Name, Revision: rev, Digest: "sha256:" + hex.EncodeToString(sum[:]), LastUpdateTime: now}
	repo.Status.ObservedGeneration = repo.Generation
	setCondition(&repo.Status.Conditions, metav1.Condition{Type: meta.ReadyCondition, Status: metav1.ConditionTrue,
		Reason: meta.SucceededReason, Message: "stored artifact for revision '" + rev + "'", ObservedGeneration: repo.Generation})
	if err := r.c.Status().Update(ctx, repo); err != nil {
		return "", fmt.Errorf("GitRepository status update: %w", err)
	}
	return rev, nil
}

// checkout clones the GitRepository's branch into dir and checks out the
// commit of its artifact revision ("BRANCH@sha1:HASH").
func (r *reconciler) checkout(ctx context.Context, repo *sourcev1.GitRepository, rev, dir string) error {
	_, hash, ok := strings.Cut(rev, "@sha1:")
	if !ok || len(hash) != 40 {
		return fmt.Errorf("artifact revision %q is not BRANCH@sha1:HASH", rev)
	}
	auth, err := r.auth(ctx, repo)
	if err != nil {
		return err
	}
	g, err := git.PlainCloneContext(ctx, dir, false, &git.CloneOptions{URL: repo.Spec.URL, Auth: auth,
		ReferenceName: plumbing.NewBranchReferenceName(branchOf(repo)), SingleBranch: true, NoCheckout: true})
	if err != nil {
		return fmt.Errorf("cloning %s: %w", repo.Spec.URL, err)
	}
	wt, err := g.Worktree()
	if err != nil {
		return err
	}
	if err := wt.Checkout(&git.CheckoutOptions{Hash: plumbing.NewHash(hash), Force: true}); err != nil {
		return fmt.Errorf("checking out %s: %w", rev, err)
	}
	return nil
}

func branchOf(repo *sourcev1.GitRepository) string {
	if ref := repo.Spec.Reference; ref != nil && ref.Branch != "" {
		return ref.Branch
	}
	return "master"
}

// auth is basic auth from the GitRepository's secretRef, as source-controller reads it.
func (r *reconciler) auth(ctx context.Context, repo *sourcev1.GitRepository) (transport.AuthMethod, error) {
	if repo.Spec.SecretRef == nil {
		return nil, nil
	}
	var s corev1.Secret
	if err := r.c.Get(ctx, client.ObjectKey{Namespace: repo.Namespace, Name: repo.Spec.SecretRef.Name}, &s); err != nil {
		return nil, fmt.Errorf("reading the GitRepository's secret: %w", err)
	}
	return &githttp.BasicAuth{Username: string(s.Data["username"]), Password: string(s.Data["password"])}, nil
}

// build runs kustomize on dir, generating a kustomization.yaml over its
// manifests when it has none.
func build(dir, targetNamespace string) ([]*unstructured.Unstructured, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("path: %w", err)
	}
	if !hasKustomization(dir) {
		if err := generate(dir); err != nil {
			return nil, err
		}
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	res, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build: %w", err)
	}
	out, err := res.AsYaml()
	if err != nil {
		return nil, err
	}
	objs, err := ssautils.ReadObjects(strings.NewReader(string(out)))
	if err != nil {
		return nil, err
	}
	if targetNamespace != "" {
		for _, o := range objs {
			o.SetNamespace(targetNamespace)
		}
	}
	return objs, nil
}

func hasKustomization(dir string) bool {
	for _, n := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			return true
		}
	}
	return false
}

// generate writes a kustomization.yaml listing every manifest under dir.
func generate(dir string) error {
	var res []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if ext := filepath.Ext(p); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
			rel, _ := filepath.Rel(dir, p)
			res = append(res, rel)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(res) == 0 {
		return errors.New("no manifests in path")
	}
	y := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
	for _, r := range res {
		y += "- " + r + "\n"
	}
	return os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(y), 0o644)
}

func metaCondition(gen int64, failure error, rev string) metav1.Condition {
	if failure != nil {
		return metav1.Condition{Type: meta.ReadyCondition, Status: metav1.ConditionFalse, Reason: meta.ReconciliationFailedReason,
			Message: failure.Error(), ObservedGeneration: gen}
	}
	return metav1.Condition{Type: meta.ReadyCondition, Status: metav1.ConditionTrue, Reason: meta.ReconciliationSucceededReason,
		Message: "Applied revision: " + rev, ObservedGeneration: gen}
}

func setCondition(conds *[]metav1.Condition, c metav1.Condition) {
	apimeta.SetStatusCondition(conds, c)
}
