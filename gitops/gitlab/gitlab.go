// Package gitlab opens the revert's merge request through GitLab's REST API
// (POST /projects/:id/merge_requests, header PRIVATE-TOKEN), idempotently:
// it first looks for a merge request from the revert branch (GET
// /projects/:id/merge_requests?source_branch=BRANCH), and when creating
// answers 409 because one exists, finds that one.
package gitlab

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/rewind-sre/rewind/gitops/pullrequest"
)

// DefaultAPI is gitlab.com's REST endpoint.
const DefaultAPI = "https://gitlab.com/api/v4"

// Client opens merge requests on one project.
type Client struct {
	API     string // default DefaultAPI
	Project string // the project's path (GROUP/NAME) or numeric id
	Token   string // never logged
	HTTP    *http.Client
}

var _ pullrequest.Opener = (*Client)(nil)

type mergeRequest struct {
	IID    int    `json:"iid"`
	WebURL string `json:"web_url"`
}

func (c *Client) base() string {
	api := c.API
	if api == "" {
		api = DefaultAPI
	}
	return strings.TrimRight(api, "/") + "/projects/" + url.PathEscape(c.Project) + "/merge_requests"
}

func (c *Client) header() http.Header {
	return http.Header{"Private-Token": {c.Token}, "User-Agent": {"rewind"}}
}

// Open returns the merge request from pr.Head, creating it if there is none.
func (c *Client) Open(ctx context.Context, pr pullrequest.PullRequest) (pullrequest.Opened, error) {
	if o, found, err := c.find(ctx, pr.Head); err != nil || found {
		return o, err
	}
	in := map[string]any{"source_branch": pr.Head, "target_branch": pr.Base, "title": pr.Title, "description": pr.Body}
	var created mergeRequest
	status, body, err := pullrequest.Do(ctx, c.HTTP, http.MethodPost, c.base(), c.header(), in, &created, c.Token)
	switch {
	case err != nil:
		return pullrequest.Opened{}, fmt.Errorf("gitlab: opening a merge request on %s: %w", c.Project, err)
	case status == http.StatusCreated:
		return pullrequest.Opened{Number: created.IID, URL: created.WebURL}, nil
	case status == http.StatusConflict:
		if o, found, err := c.find(ctx, pr.Head); err != nil || found {
			return o, err
		}
	}
	return pullrequest.Opened{}, fmt.Errorf("gitlab: opening a merge request on %s answered %d: %s", c.Project, status, pullrequest.Clip(body))
}

func (c *Client) find(ctx context.Context, head string) (pullrequest.Opened, bool, error) {
	var mrs []mergeRequest
	status, body, err := pullrequest.Do(ctx, c.HTTP, http.MethodGet, c.base()+"?"+url.Values{"source_branch": {head}, "state": {"all"}}.Encode(), c.header(), nil, &mrs, c.Token)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("answered %d: %s", status, pullrequest.Clip(body))
	}
	if err != nil {
		return pullrequest.Opened{}, false, fmt.Errorf("gitlab: looking for the merge request from %s on %s: %w", head, c.Project, err)
	}
	if len(mrs) == 0 {
		return pullrequest.Opened{}, false, nil
	}
	return pullrequest.Opened{Number: mrs[0].IID, URL: mrs[0].WebURL, Existed: true}, true, nil
}
