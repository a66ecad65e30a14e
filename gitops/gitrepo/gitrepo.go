// Package gitrepo proposes a rollback's revert in Git with go-git (never a
// git subprocess): it clones the GitOps owner's source repository, finds
// where the canary's image (and the VirtualService's weights) is set — a
// plain manifest, a kustomization's images: entry, or Helm values — writes
// the previous value, commits on a branch named after the rollback and
// pushes it. A re-run finds the branch it already pushed and pushes nothing.
package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Source is where the owner's manifests are in Git.
type Source struct {
	URL    string // http(s) clone URL
	Branch string // the branch the owner follows; "" or "HEAD": the remote's default
	Path   string // directory in the repository ("" or ".": the root)
}

func (s Source) String() string {
	b := s.Branch
	if b == "" {
		b = "HEAD"
	}
	return fmt.Sprintf("%s (branch %s, path %s)", s.URL, b, cleanPath(s.Path))
}

// Auth is HTTP basic authentication for clone and push (a token goes in
// Password). The caller reads it from files; it is never logged.
type Auth struct {
	Username string
	Password string
}

// Author is the commit's author and committer.
type Author struct {
	Name  string
	Email string
}

// Proposal is the revert to propose.
type Proposal struct {
	Branch  string // the new branch, e.g. rewind/rb-20260101T003130Z-3f2a91c0
	Message string // the commit message: rollback id, triggers, evidence link
	Edit    Edit
	Author  Author
	Now     time.Time
}

// Result is what Propose did.
type Result struct {
	Branch string
	Base   string // the branch the revert is proposed against
	Commit string // hash of the revert commit
	// Files maps each changed file to what changed in it.
	Files map[string][]string
	// Existed: the branch was on the remote already (a re-run); nothing
	// was pushed.
	Existed bool
}

// Limits bound what a clone may hold and what is read.
const (
	maxFileSize = 1 << 20
	maxFiles    = 5000
)

// ErrNotFound: no file under the source's path sets the image.
var ErrNotFound = errors.New("no manifest sets the image")

// Propose clones src, applies p.Edit, commits it on p.Branch and pushes it.
// If p.Branch is on the remote already it returns that branch's head with
// Existed set and changes nothing.
func Propose(ctx context.Context, src Source, auth *Auth, p Proposal) (*Result, error) {
	var ta transport.AuthMethod
	if auth != nil {
		ta = &githttp.BasicAuth{Username: auth.Username, Password: auth.Password}
	}
	existing, defaultBranch, err := remoteBranch(ctx, src.URL, ta, p.Branch)
	if err != nil {
		return nil, err
	}
	if existing != "" {
		base := src.Branch
		if base == "" || base == "HEAD" {
			base = defaultBranch
		}
		return &Result{Branch: p.Branch, Base: base, Commit: existing, Existed: true}, nil
	}
	fsys := memfs.New()
	opts := &git.CloneOptions{URL: src.URL, Auth: ta, SingleBranch: true, Depth: 1, Tags: git.NoTags}
	if src.Branch != "" && src.Branch != "HEAD" {
		opts.ReferenceName = plumbing.NewBranchReferenceName(src.Branch)
	}
	repo, err := git.CloneContext(ctx, memory.NewStorage(), fsys, opts)
	if err != nil {
		return nil, fmt.Errorf("cloning %s: %w", src, err)
	}
	head, err := repo.Head()
	if err != nil {
		return nil, err
	}
	res := &Result{Branch: p.Branch, Base: head.Name().Short(), Files: map[string][]string{}}
	if err := editTree(fsys, cleanPath(src.Path), p.Edit, res.Files); err != nil {
		return nil, err
	}
	if len(res.Files) == 0 {
		return nil, fmt.Errorf("%w %s under %s", ErrNotFound, describe(p.Edit), src)
	}
	hash, err := commit(repo, p, res.Files)
	if err != nil {
		return nil, err
	}
	res.Commit = hash.String()
	ref := plumbing.NewBranchReferenceName(p.Branch)
	if err := repo.Storer.SetReference(plumbing.NewHashReference(ref, hash)); err != nil {
		return nil, err
	}
	err = repo.PushContext(ctx, &git.PushOptions{RemoteName: "origin", Auth: ta,
		RefSpecs: []config.RefSpec{config.RefSpec(ref + ":" + ref)}})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, fmt.Errorf("pushing %s to %s: %w", p.Branch, src.URL, err)
	}
	return res, nil
}

// remoteBranch returns the hash of branch on the remote ("" if absent)
// and the remote's default branch (what HEAD points to).
func remoteBranch(ctx context.Context, url string, auth transport.AuthMethod, branch string) (hash, defaultBranch string, err error) {
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{url}})
	refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: auth})
	if err != nil {
		return "", "", fmt.Errorf("listing the branches of %s: %w", url, err)
	}
	want := plumbing.NewBranchReferenceName(branch)
	for _, r := range refs {
		switch {
		case r.Name() == want:
			hash = r.Hash().String()
		case r.Name() == plumbing.HEAD && r.Type() == plumbing.SymbolicReference:
			defaultBranch = r.Target().Short()
		}
	}
	return hash, defaultBranch, nil
}

func cleanPath(p string) string {
	p = path.Clean("/" + p)
	return strings.TrimPrefix(p, "/")
}

func describe(e Edit) string {
	var parts []string
	for _, im := range e.Images {
		parts = append(parts, im.From)
	}
	return strings.Join(parts, ", ")
}

// editTree applies e to every YAML file under dir.
func editTree(fsys billy.Filesystem, dir string, e Edit, changed map[string][]string) error {
	if dir == "" {
		dir = "."
	}
	var files []string
	var walkDir func(d string) error
	walkDir = func(d string) error {
		infos, err := fsys.ReadDir(d)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("path %s is not in the repository", d)
			}
			return err
		}
		for _, fi := range infos {
			p := path.Join(d, fi.Name())
			switch {
			case fi.IsDir() && fi.Name() != ".git":
				if err := walkDir(p); err != nil {
					return err
				}
			case !fi.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) && fi.Size() <= maxFileSize:
				if files = append(files, p); len(files) > maxFiles {
					return fmt.Errorf("more than %d manifests under %s", maxFiles, dir)
				}
			}
		}
		return nil
	}
	if err := walkDir(dir); err != nil {
		return err
	}
	sort.Strings(files)
	for _, p := range files {
		if err := editOne(fsys, p, e, changed); err != nil {
			return err
		}
	}
	return nil
}

func editOne(fsys billy.Filesystem, p string, e Edit, changed map[string][]string) error {
	f, err := fsys.Open(p)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	f.Close()
	if err != nil {
		return err
	}
	out, what, err := editFile(data, e)
	if err != nil || what == nil {
		return nil // not YAML Rewind can read: not where the image is set
	}
	w, err := fsys.OpenFile(p, os.O_WRONLY|os.O_TRUNC|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := w.Write(out); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	changed[p] = what
	return nil
}

// commit stages the changed files and commits them on HEAD's tree.
func commit(repo *git.Repository, p Proposal, files map[string][]string) (plumbing.Hash, error) {
	wt, err := repo.Worktree()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	names := make([]string, 0, len(files))
	for f := range files {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		if _, err := wt.Add(f); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("staging %s: %w", f, err)
		}
	}
	when := p.Now
	if when.IsZero() {
		when = time.Now()
	}
	sig := &object.Signature{Name: p.Author.Name, Email: p.Author.Email, When: when}
	return wt.Commit(p.Message, &git.CommitOptions{Author: sig, Committer: sig})
}
