// Package github opens the revert's pull request through GitHub's REST API
// (POST /repos/{owner}/{repo}/pulls), idempotently: it first looks for a
// pull request from the revert branch (GET .../pulls?head=OWNER:BRANCH&state=all)
// and, when creating answers 422 because one exists, finds that one.
package github

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/rewind-sre/rewind/gitops/pullrequest"
)

// DefaultAPI is GitHub's REST endpoint; GitHub Enterprise Server uses
// https://HOST/api/v3.
const DefaultAPI = "https://api.github.com"

// APIVersion is the REST API version Rewind speaks.
const APIVersion = "2022-11-28"

// Client opens pull requests on one repository.
type Client struct {
	API   string // default DefaultAPI
	Repo  string // OWNER/NAME
	Token string // a token allowed to open pull requests; never logged
	HTTP  *http.Client
}

var _ pullrequest.Opener = (*Client)(nil)

type pull struct {
	Number  int    `json:"number"`
	HTMLURL string `json:"html_url"`
	State   string `json:"state"`
}

func (c *Client) base() string {
	if c.API == "" {
		return DefaultAPI
	}
	return strings.TrimRight(c.API, "/")
}

func (c *Client) header() http.Header {
	return http.Header{
		"Authorization":        {"Bearer " + c.Token},
		"Accept":               {"application/vnd.github+json"},
		"X-Github-Api-Version": {APIVersion},
		"User-Agent":           {"rewind"},
	}
}

// Open returns the pull request from pr.Head, creating it if there is none.
func (c *Client) Open(ctx context.Context, pr pullrequest.PullRequest) (pullrequest.Opened, error) {
	owner, _, ok := strings.Cut(c.Repo, "/")
	if !ok {
		return pullrequest.Opened{}, fmt.Errorf("github: repo %q is not OWNER/NAME", c.Repo)
	}
	if o, found, err := c.find(ctx, owner, pr.Head); err != nil || found {
		return o, err
	}
	var created pull
	in := map[string]any{"title": pr.Title, "head": pr.Head, "base": pr.Base, "body": pr.Body, "maintainer_can_modify": true}
	status, body, err := pullrequest.Do(ctx, c.HTTP, http.MethodPost, c.base()+"/repos/"+c.Repo+"/pulls", c.header(), in, &created, c.Token)
	switch {
	case err != nil:
		return pullrequest.Opened{}, fmt.Errorf("github: opening a pull request on %s: %w", c.Repo, err)
	case status == http.StatusCreated:
		return pullrequest.Opened{Number: created.Number, URL: created.HTMLURL}, nil
	case status == http.StatusUnprocessableEntity && strings.Contains(string(body), "already exists"):
		// Opened by a request whose answer was lost: find it.
		if o, found, err := c.find(ctx, owner, pr.Head); err != nil || found {
			return o, err
		}
	}
	return pullrequest.Opened{}, fmt.Errorf("github: opening a pull request on %s answered %d: %s", c.Repo, status, pullrequest.Clip(body))
}

// find looks for a pull request from head, in any state.
func (c *Client) find(ctx context.Context, owner, head string) (pullrequest.Opened, bool, error) {
	q := url.Values{"head": {owner + ":" + head}, "state": {"all"}}
	var pulls []pull
	status, body, err := pullrequest.Do(ctx, c.HTTP, http.MethodGet, c.base()+"/repos/"+c.Repo+"/pulls?"+q.Encode(), c.header(), nil, &pulls, c.Token)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("answered %d: %s", status, pullrequest.Clip(body))
	}
	if err != nil {
		return pullrequest.Opened{}, false, fmt.Errorf("github: looking for the pull request from %s on %s: %w", head, c.Repo, err)
	}
	if len(pulls) == 0 {
		return pullrequest.Opened{}, false, nil
	}
	return pullrequest.Opened{Number: pulls[0].Number, URL: pulls[0].HTMLURL, Existed: true}, true, nil
}
