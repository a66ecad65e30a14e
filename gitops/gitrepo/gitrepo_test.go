package gitrepo_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rewind-sre/rewind/gitops/gitrepo"
	"github.com/rewind-sre/rewind/internal/testenv"
)

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout-canary
  namespace: shop
spec:
  template:
    spec:
      containers:
        - name: app
          # the release under test
          image: "registry.test:5000/checkout:v2"
        - name: sidecar
          image: registry.test:5000/proxy:v9
`

const kustomization = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml
images:
  - name: registry.test:5000/cart
    newTag: v2 # bumped by CI
`

const values = `image:
  repository: registry.test:5000/search
  tag: v2
replicas: 3
`

const virtualService = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: checkout
spec:
  hosts: [checkout]
  http:
    - route:
        - destination: {host: checkout-baseline}
          weight: 90
        - destination: {host: checkout-canary}
          weight: 10
`

func proposal(branch string) gitrepo.Proposal {
	return gitrepo.Proposal{
		Branch:  branch,
		Message: "Revert checkout (rollback rb-1)\n\nTriggers: error-rate\nEvidence: /evidence/rb-1\n",
		Author:  gitrepo.Author{Name: "Rewind", Email: "rewind@example.test"},
		Now:     time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC),
		Edit: gitrepo.Edit{
			Images: []gitrepo.Image{
				{From: "registry.test:5000/checkout:v2", To: "registry.test:5000/checkout:v1"},
				{From: "registry.test:5000/cart:v2", To: "registry.test:5000/cart:v1"},
				{From: "registry.test:5000/search:v2", To: "registry.test:5000/search:v1"},
			},
			Weights: &gitrepo.Weights{Name: "checkout", BaselineHost: "checkout-baseline", CanaryHost: "checkout-canary"},
		},
	}
}

func TestProposeWritesThePreviousValuesOnABranchOnce(t *testing.T) {
	srv := testenv.StartGitServer(t, testenv.GitServerOptions{Username: "rewind", Password: "s3cret"})
	url := srv.CreateRepo("apps", map[string]string{
		"apps/checkout/deployment.yaml":    deployment,
		"apps/checkout/kustomization.yaml": kustomization,
		"apps/checkout/values.yaml":        values,
		"apps/checkout/vs.yaml":            virtualService,
		"other/deployment.yaml":            deployment, // outside the path: untouched
	})
	src := gitrepo.Source{URL: url, Branch: "main", Path: "./apps/checkout"}
	auth := &gitrepo.Auth{Username: "rewind", Password: "s3cret"}

	res, err := gitrepo.Propose(t.Context(), src, auth, proposal("rewind/rb-1"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Existed || res.Base != "main" || len(res.Files) != 4 {
		t.Fatalf("result %+v", res)
	}
	if got := srv.Branches("apps")["rewind/rb-1"]; got != res.Commit {
		t.Fatalf("branch rewind/rb-1 at %q, want the revert commit %s", got, res.Commit)
	}
	want := map[string][]string{
		"apps/checkout/deployment.yaml":    {`image: "registry.test:5000/checkout:v1"`, "# the release under test", "image: registry.test:5000/proxy:v9"},
		"apps/checkout/kustomization.yaml": {"newTag: v1 # bumped by CI"},
		"apps/checkout/values.yaml":        {"tag: v1\nreplicas: 3"},
		"apps/checkout/vs.yaml":            {"weight: 100", "weight: 0"},
	}
	for f, parts := range want {
		got := srv.File("apps", "rewind/rb-1", f)
		for _, p := range parts {
			if !strings.Contains(got, p) {
				t.Errorf("%s on the branch lacks %q:\n%s", f, p, got)
			}
		}
	}
	if got := srv.File("apps", "rewind/rb-1", "other/deployment.yaml"); got != deployment {
		t.Errorf("a file outside the path changed:\n%s", got)
	}
	if got := srv.File("apps", "main", "apps/checkout/deployment.yaml"); got != deployment {
		t.Errorf("main changed:\n%s", got)
	}
	if log := srv.Log("apps", "rewind/rb-1"); !strings.HasPrefix(log, "Revert checkout (rollback rb-1)\n\nTriggers: error-rate\nEvidence: /evidence/rb-1") {
		t.Errorf("commit message:\n%s", log)
	}

	again, err := gitrepo.Propose(t.Context(), src, auth, proposal("rewind/rb-1"))
	if err != nil || !again.Existed || again.Commit != res.Commit {
		t.Fatalf("re-run: %+v, %v; want the existing branch at %s", again, err, res.Commit)
	}
	if n := len(srv.BranchNames("apps")); n != 2 {
		t.Errorf("branches %v, want main and one revert branch", srv.BranchNames("apps"))
	}
}

func TestProposeFailsLoudly(t *testing.T) {
	srv := testenv.StartGitServer(t, testenv.GitServerOptions{Username: "rewind", Password: "s3cret"})
	url := srv.CreateRepo("apps", map[string]string{"deploy.yaml": deployment})
	good := &gitrepo.Auth{Username: "rewind", Password: "s3cret"}

	_, err := gitrepo.Propose(t.Context(), gitrepo.Source{URL: url, Branch: "main"}, &gitrepo.Auth{Username: "rewind", Password: "wrong"}, proposal("rewind/rb-2"))
	if err == nil {
		t.Fatal("a wrong password was accepted")
	}
	p := proposal("rewind/rb-2")
	p.Edit = gitrepo.Edit{Images: []gitrepo.Image{{From: "registry.test:5000/unknown:v2", To: "registry.test:5000/unknown:v1"}}}
	_, err = gitrepo.Propose(t.Context(), gitrepo.Source{URL: url, Branch: "main"}, good, p)
	if !errors.Is(err, gitrepo.ErrNotFound) || !strings.Contains(err.Error(), "registry.test:5000/unknown:v2") {
		t.Fatalf("an image set nowhere: %v, want ErrNotFound naming it", err)
	}
	_, err = gitrepo.Propose(t.Context(), gitrepo.Source{URL: url, Branch: "main", Path: "missing"}, good, proposal("rewind/rb-2"))
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("a missing path: %v", err)
	}
	if names := srv.BranchNames("apps"); len(names) != 1 {
		t.Errorf("branches after failures: %v, want only main", names)
	}
}

// TestStillSets: the bad image is still set at the revisions before the
// revert is merged, and no longer after — by a merge commit, or by a
// squash (a new commit with the same content); a revision the clone does
// not reach is an error, never "reverted".
func TestStillSets(t *testing.T) {
	srv := testenv.StartGitServer(t, testenv.GitServerOptions{})
	url := srv.CreateRepo("apps", map[string]string{"apps/checkout/deployment.yaml": deployment, "apps/cart/kustomization.yaml": kustomization})
	src := gitrepo.Source{URL: url, Branch: "main", Path: "apps"}
	p := proposal("rewind/rb-3")
	p.Edit.Weights = nil
	res, err := gitrepo.Propose(t.Context(), src, nil, p)
	if err != nil {
		t.Fatal(err)
	}
	before := srv.Branches("apps")["main"]
	files, err := gitrepo.StillSets(t.Context(), src, nil, p.Edit, before)
	if err != nil || strings.Join(files, ",") != "apps/cart/kustomization.yaml,apps/checkout/deployment.yaml" {
		t.Fatalf("before the merge: %v, %v", files, err)
	}
	if files, err := gitrepo.StillSets(t.Context(), src, nil, p.Edit, res.Commit); err == nil {
		t.Fatalf("the revert branch's commit is not on main: %v, %v", files, err)
	}
	srv.Commit("apps", "main", "unrelated", map[string]string{"README": "x"})
	merged := srv.Merge("apps", "rewind/rb-3", "main")
	if files, err := gitrepo.StillSets(t.Context(), src, nil, p.Edit, merged); err != nil || files != nil {
		t.Fatalf("after the merge: %v, %v", files, err)
	}
	// An older revision is still read as it was.
	if files, err := gitrepo.StillSets(t.Context(), src, nil, p.Edit, before); err != nil || len(files) != 2 {
		t.Fatalf("the revision before the merge, read again: %v, %v", files, err)
	}
	// A squash merge: the same content in a new commit of another branch.
	url2 := srv.CreateRepo("squashed", map[string]string{"apps/checkout/deployment.yaml": deployment})
	squash := srv.Commit("squashed", "main", "Revert checkout (#12)", map[string]string{"apps/checkout/deployment.yaml": strings.ReplaceAll(deployment, "checkout:v2", "checkout:v1")})
	files, err = gitrepo.StillSets(t.Context(), gitrepo.Source{URL: url2, Path: "apps/checkout"}, nil, p.Edit, squash)
	if err != nil || files != nil {
		t.Fatalf("after a squash merge: %v, %v", files, err)
	}
	if _, err := gitrepo.StillSets(t.Context(), src, nil, p.Edit, "main"); err == nil {
		t.Fatal("a branch name is not a revision")
	}
	if _, err := gitrepo.StillSets(t.Context(), gitrepo.Source{URL: url, Branch: "main", Path: "nope"}, nil, p.Edit, merged); err == nil {
		t.Fatal("a path that is not in the repository is an error")
	}
}
