// Package gitlabtest is a local GitLab REST receiver for merge requests that
// enforces the documented request and answers as GitLab does:
// POST /api/v4/projects/:id/merge_requests (id a numeric id or the
// URL-encoded path) needs the PRIVATE-TOKEN header (else 401
// {"message":"401 Unauthorized"}), source_branch, target_branch and title
// (else 400 {"error":"... is missing"}); a second open merge request from
// the same source branch answers 409 {"message":["Another open merge request
// already exists for this source branch: !IID"]}; success is 201 with iid
// and web_url. GET .../merge_requests?source_branch=B lists them.
package gitlabtest

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// MergeRequest is one the receiver holds.
type MergeRequest struct {
	IID          int    `json:"iid"`
	Title        string `json:"title"`
	Description  string `json:"description"`
	SourceBranch string `json:"source_branch"`
	TargetBranch string `json:"target_branch"`
	State        string `json:"state"`
	WebURL       string `json:"web_url"`
}

// Receiver is a running GitLab API stand-in for one project.
type Receiver struct {
	URL     string // the API base, as Client.API (…/api/v4)
	Project string // GROUP/NAME
	Token   string

	mu  sync.Mutex
	mrs []MergeRequest
}

// New starts a receiver, closed by t.Cleanup.
func New(t testing.TB, project, token string) *Receiver {
	r := &Receiver{Project: project, Token: token}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.URL = srv.URL + "/api/v4"
	return r
}

// MergeRequests returns those created.
func (r *Receiver) MergeRequests() []MergeRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]MergeRequest(nil), r.mrs...)
}

func answer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	want := "/api/v4/projects/" + url.PathEscape(r.Project) + "/merge_requests"
	if req.URL.EscapedPath() != want {
		answer(w, http.StatusNotFound, map[string]string{"message": "404 Project Not Found"})
		return
	}
	if subtle.ConstantTimeCompare([]byte(req.Header.Get("PRIVATE-TOKEN")), []byte(r.Token)) != 1 {
		answer(w, http.StatusUnauthorized, map[string]string{"message": "401 Unauthorized"})
		return
	}
	switch req.Method {
	case http.MethodGet:
		src := req.URL.Query().Get("source_branch")
		out := []MergeRequest{}
		for _, m := range r.mrs {
			if src == "" || m.SourceBranch == src {
				out = append(out, m)
			}
		}
		answer(w, http.StatusOK, out)
	case http.MethodPost:
		r.create(w, req)
	default:
		answer(w, http.StatusMethodNotAllowed, map[string]string{"message": "405 Method Not Allowed"})
	}
}

func (r *Receiver) create(w http.ResponseWriter, req *http.Request) {
	var in map[string]any
	if !strings.HasPrefix(req.Header.Get("Content-Type"), "application/json") {
		answer(w, http.StatusBadRequest, map[string]string{"error": "content type must be application/json"})
		return
	}
	if err := json.NewDecoder(io.LimitReader(req.Body, 1<<20)).Decode(&in); err != nil {
		answer(w, http.StatusBadRequest, map[string]string{"error": "invalid JSON"})
		return
	}
	for _, f := range []string{"source_branch", "target_branch", "title"} {
		if s, _ := in[f].(string); s == "" {
			answer(w, http.StatusBadRequest, map[string]string{"error": f + " is missing"})
			return
		}
	}
	src := in["source_branch"].(string)
	for _, m := range r.mrs {
		if m.SourceBranch == src && m.State == "opened" {
			answer(w, http.StatusConflict, map[string][]string{"message": {fmt.Sprintf("Another open merge request already exists for this source branch: !%d", m.IID)}})
			return
		}
	}
	desc, _ := in["description"].(string)
	n := len(r.mrs) + 1
	m := MergeRequest{IID: n, Title: in["title"].(string), Description: desc, SourceBranch: src, TargetBranch: in["target_branch"].(string),
		State: "opened", WebURL: fmt.Sprintf("https://gitlab.example.test/%s/-/merge_requests/%d", r.Project, n)}
	r.mrs = append(r.mrs, m)
	answer(w, http.StatusCreated, m)
}
