package gitlab_test

import (
	"strings"
	"testing"

	"github.com/rewind-sre/rewind/gitops/gitlab"
	"github.com/rewind-sre/rewind/gitops/gitlab/gitlabtest"
	"github.com/rewind-sre/rewind/gitops/pullrequest"
)

func TestOpenCreatesOncePerBranch(t *testing.T) {
	recv := gitlabtest.New(t, "shop/apps", "glpat-secret")
	c := &gitlab.Client{API: recv.URL, Project: "shop/apps", Token: "glpat-secret"}
	pr := pullrequest.PullRequest{Head: "rewind/rb-1", Base: "main", Title: "Revert", Body: "Triggers: error-rate"}
	first, err := c.Open(t.Context(), pr)
	if err != nil || first.Existed || first.Number != 1 || !strings.HasSuffix(first.URL, "/shop/apps/-/merge_requests/1") {
		t.Fatalf("first Open: %+v, %v", first, err)
	}
	again, err := c.Open(t.Context(), pr)
	if err != nil || !again.Existed || again.URL != first.URL {
		t.Fatalf("second Open: %+v, %v", again, err)
	}
	mrs := recv.MergeRequests()
	if len(mrs) != 1 || mrs[0].SourceBranch != pr.Head || mrs[0].TargetBranch != "main" || mrs[0].Description != pr.Body {
		t.Fatalf("merge requests %+v", mrs)
	}
	bad := &gitlab.Client{API: recv.URL, Project: "shop/apps", Token: "glpat-wrong"}
	if _, err := bad.Open(t.Context(), pr); err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "glpat-wrong") {
		t.Fatalf("wrong token: %v", err)
	}
	missing := &gitlab.Client{API: recv.URL, Project: "shop/apps", Token: "glpat-secret"}
	if _, err := missing.Open(t.Context(), pullrequest.PullRequest{Head: "rewind/rb-2", Base: "main"}); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("no title: %v", err)
	}
}
