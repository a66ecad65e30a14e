package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"
)

// searchDepth bounds how far back from the branch's head StillSets looks
// for the revision it is asked about: the commits it fetches.
const searchDepth = 50

// ErrRevisionNotFound: the revision is not among the last commits of the
// branch (the reconciler has not caught up yet, or it follows another
// branch).
var ErrRevisionNotFound = errors.New("revision not among the branch's last commits")

var hashRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// StillSets reports which manifests under src.Path still set one of e's
// images (the bad ones, Image.From) at revision, a commit of src.Branch
// among its last searchDepth: nil when none does — the revert is in,
// however it was merged (merge commit, squash, rebase, or a later release
// that replaced the image). It clones only those commits, in memory, and
// reads at most maxFiles manifests of at most maxFileSize each.
func StillSets(ctx context.Context, src Source, auth *Auth, e Edit, revision string) ([]string, error) {
	if !hashRE.MatchString(revision) {
		return nil, fmt.Errorf("revision %q is not a commit hash", revision)
	}
	opts := &git.CloneOptions{URL: src.URL, SingleBranch: true, NoCheckout: true, Depth: searchDepth, Tags: git.NoTags}
	if auth != nil {
		opts.Auth = &githttp.BasicAuth{Username: auth.Username, Password: auth.Password}
	}
	if src.Branch != "" && src.Branch != "HEAD" {
		opts.ReferenceName = plumbing.NewBranchReferenceName(src.Branch)
	}
	repo, err := git.CloneContext(ctx, memory.NewStorage(), nil, opts)
	if err != nil {
		return nil, fmt.Errorf("cloning %s: %w", src, err)
	}
	c, err := repo.CommitObject(plumbing.NewHash(revision))
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, fmt.Errorf("%s: %w (%d)", src, ErrRevisionNotFound, searchDepth)
	}
	if err != nil {
		return nil, err
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, err
	}
	return setters(ctx, tree, cleanPath(src.Path), Edit{Images: e.Images})
}

// setters returns the YAML files under dir of tree that e would change.
func setters(ctx context.Context, tree *object.Tree, dir string, e Edit) ([]string, error) {
	if dir != "" && dir != "." {
		sub, err := tree.Tree(dir)
		if err != nil {
			return nil, fmt.Errorf("path %s is not in the repository: %w", dir, err)
		}
		tree = sub
	}
	var out []string
	n := 0
	err := tree.Files().ForEach(func(f *object.File) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !strings.HasSuffix(f.Name, ".yaml") && !strings.HasSuffix(f.Name, ".yml") || f.Size > maxFileSize {
			return nil
		}
		if n++; n > maxFiles {
			return fmt.Errorf("more than %d manifests under %s", maxFiles, dir)
		}
		r, err := f.Reader()
		if err != nil {
			return err
		}
		data, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
		r.Close()
		if err != nil {
			return err
		}
		if _, what, err := editFile(data, e); err == nil && what != nil {
			out = append(out, path.Join(dir, f.Name))
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}
