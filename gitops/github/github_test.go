package github_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/rewind-sre/rewind/gitops/github"
	"github.com/rewind-sre/rewind/gitops/github/githubtest"
	"github.com/rewind-sre/rewind/gitops/pullrequest"
)

var pr = pullrequest.PullRequest{Head: "rewind/rb-1", Base: "main", Title: "Revert checkout (rollback rb-1)", Body: "Triggers: error-rate"}

func TestOpenCreatesOncePerBranch(t *testing.T) {
	recv := githubtest.New(t, "shop/apps", "ghp_secret")
	c := &github.Client{API: recv.URL, Repo: "shop/apps", Token: "ghp_secret"}
	first, err := c.Open(t.Context(), pr)
	if err != nil || first.Existed || first.Number != 1 || !strings.Contains(first.URL, "/shop/apps/pull/1") {
		t.Fatalf("first Open: %+v, %v", first, err)
	}
	again, err := c.Open(t.Context(), pr)
	if err != nil || !again.Existed || again.Number != 1 || again.URL != first.URL {
		t.Fatalf("second Open: %+v, %v; want the same pull request", again, err)
	}
	pulls := recv.Pulls()
	if len(pulls) != 1 || pulls[0].Head != pr.Head || pulls[0].Base != "main" || pulls[0].Title != pr.Title || pulls[0].Body != pr.Body {
		t.Fatalf("pulls %+v", pulls)
	}
	if r := recv.Rejected(); len(r) != 0 {
		t.Errorf("rejected requests: %v", r)
	}
}

func TestOpenFailsLoudlyWithoutLeakingTheToken(t *testing.T) {
	recv := githubtest.New(t, "shop/apps", "ghp_secret")
	c := &github.Client{API: recv.URL, Repo: "shop/apps", Token: "ghp_wrong"}
	_, err := c.Open(t.Context(), pr)
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "Bad credentials") || strings.Contains(err.Error(), "ghp_wrong") {
		t.Fatalf("wrong token: %v", err)
	}
	c = &github.Client{API: recv.URL, Repo: "shop/other", Token: "ghp_secret"}
	if _, err := c.Open(t.Context(), pr); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("unknown repo: %v", err)
	}
	recv.Branches = func(b string) bool { return b == "main" }
	c = &github.Client{API: recv.URL, Repo: "shop/apps", Token: "ghp_secret"}
	if _, err := c.Open(t.Context(), pr); err == nil || !strings.Contains(err.Error(), "422") {
		t.Fatalf("a head branch GitHub does not have: %v", err)
	}
}

// The receiver holds the client to GitHub's documented request.
func TestReceiverEnforcesTheDocumentedRequest(t *testing.T) {
	recv := githubtest.New(t, "shop/apps", "tok")
	post := func(body, auth string) int {
		req, _ := http.NewRequest(http.MethodPost, recv.URL+"/repos/shop/apps/pulls", bytes.NewBufferString(body))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	cases := []struct {
		body, auth string
		want       int
	}{
		{`{"title":"t","head":"h","base":"main"}`, "", 401},
		{`{"title":"t","head":"h","base":"main"}`, "Bearer nope", 401},
		{`{"title":"t","base":"main"}`, "Bearer tok", 422},
		{`{"title":`, "Bearer tok", 400},
		{`{"title":"t","head":"h","base":"main"}`, "token tok", 201},
		{`{"title":"t","head":"h","base":"main"}`, "Bearer tok", 422}, // exists
	}
	for i, c := range cases {
		if got := post(c.body, c.auth); got != c.want {
			t.Errorf("case %d: %d, want %d", i, got, c.want)
		}
	}
}
