package gitrepo

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"
)

// maxHistory bounds how many commits Contains walks back from the head.
const maxHistory = 10000

// errFound stops the history walk.
var errFound = errors.New("found")

// Contains reports whether branch of url (its head now) contains commit:
// the revert was merged (by a merge commit, or fast-forward). A squash or
// rebase merge makes a new commit: then the revert is in when the file
// contents match, which Contains cannot see; Resume by hand.
func Contains(ctx context.Context, url string, auth *Auth, branch, commit string) (bool, error) {
	opts := &git.CloneOptions{URL: url, SingleBranch: true, NoCheckout: true, Tags: git.NoTags}
	if auth != nil {
		opts.Auth = &githttp.BasicAuth{Username: auth.Username, Password: auth.Password}
	}
	if branch != "" && branch != "HEAD" {
		opts.ReferenceName = plumbing.NewBranchReferenceName(branch)
	}
	repo, err := git.CloneContext(ctx, memory.NewStorage(), nil, opts)
	if err != nil {
		return false, fmt.Errorf("cloning %s: %w", url, err)
	}
	head, err := repo.Head()
	if err != nil {
		return false, err
	}
	iter, err := repo.Log(&git.LogOptions{From: head.Hash()})
	if err != nil {
		return false, err
	}
	defer iter.Close()
	n := 0
	err = iter.ForEach(func(c *object.Commit) error {
		if n++; n > maxHistory {
			return fmt.Errorf("commit %s not within the last %d commits of %s", commit, maxHistory, branch)
		}
		if c.Hash.String() == commit {
			return errFound
		}
		return ctx.Err()
	})
	if errors.Is(err, errFound) {
		return true, nil
	}
	return false, err
}
