// Package githubtest is a local GitHub REST receiver for pull requests that
// enforces the documented request and answers as GitHub does:
// POST /repos/{owner}/{repo}/pulls needs "Authorization: Bearer TOKEN" (or
// "token TOKEN"; else 401 "Bad credentials"), a JSON body with title, head
// and base (else 422 "Validation Failed"), a head branch that exists (else
// 422 with field head "invalid"); a second pull request from the same head
// answers 422 "A pull request already exists for OWNER:HEAD."; success is
// 201 with number and html_url. GET /repos/{owner}/{repo}/pulls?head=OWNER:HEAD&state=all
// lists them. Unknown repositories answer 404 "Not Found".
package githubtest

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Pull is a pull request the receiver holds.
type Pull struct {
	Number int
	Title  string
	Head   string // branch name
	Base   string
	Body   string
	URL    string
	State  string // open
}

// wire is a pull request as GitHub's API shows it (head and base are objects).
func (r *Receiver) wire(p Pull) map[string]any {
	owner, _, _ := strings.Cut(r.Repo, "/")
	ref := func(b string) map[string]any { return map[string]any{"ref": b, "label": owner + ":" + b} }
	return map[string]any{"number": p.Number, "title": p.Title, "body": p.Body, "state": p.State,
		"html_url": p.URL, "head": ref(p.Head), "base": ref(p.Base)}
}

// Receiver is a running GitHub API stand-in for one repository.
type Receiver struct {
	URL   string // the API base, as Client.API
	Repo  string // OWNER/NAME
	Token string

	// Branches reports whether a head branch exists (GitHub checks);
	// nil: every branch exists.
	Branches func(name string) bool

	mu       sync.Mutex
	pulls    []Pull
	requests int
	rejected []string // why each rejected request was rejected
}

// New starts a receiver, closed by t.Cleanup.
func New(t testing.TB, repo, token string) *Receiver {
	r := &Receiver{Repo: repo, Token: token}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// Pulls returns the pull requests created.
func (r *Receiver) Pulls() []Pull {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Pull(nil), r.pulls...)
}

// Rejected returns why requests were rejected.
func (r *Receiver) Rejected() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.rejected...)
}

func (r *Receiver) answer(w http.ResponseWriter, status int, v any) {
	if status >= 400 {
		r.rejected = append(r.rejected, fmt.Sprint(status, " ", v))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type apiError struct {
	Message string           `json:"message"`
	Errors  []map[string]any `json:"errors,omitempty"`
	DocURL  string           `json:"documentation_url"`
}

const docURL = "https://docs.github.com/rest/pulls/pulls#create-a-pull-request"

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if req.URL.Path != "/repos/"+r.Repo+"/pulls" {
		r.answer(w, http.StatusNotFound, apiError{Message: "Not Found", DocURL: docURL})
		return
	}
	if !r.authorized(req) {
		r.answer(w, http.StatusUnauthorized, apiError{Message: "Bad credentials", DocURL: docURL})
		return
	}
	if a := req.Header.Get("Accept"); a != "" && !strings.Contains(a, "json") {
		r.answer(w, http.StatusUnsupportedMediaType, apiError{Message: "Unsupported 'Accept' header", DocURL: docURL})
		return
	}
	switch req.Method {
	case http.MethodGet:
		r.list(w, req)
	case http.MethodPost:
		r.create(w, req)
	default:
		r.answer(w, http.StatusNotFound, apiError{Message: "Not Found", DocURL: docURL})
	}
}

func (r *Receiver) authorized(req *http.Request) bool {
	h := req.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		tok, ok = strings.CutPrefix(h, "token ")
	}
	return ok && subtle.ConstantTimeCompare([]byte(tok), []byte(r.Token)) == 1
}

func (r *Receiver) list(w http.ResponseWriter, req *http.Request) {
	owner, _, _ := strings.Cut(r.Repo, "/")
	head := req.URL.Query().Get("head")
	state := req.URL.Query().Get("state")
	out := []map[string]any{}
	for _, p := range r.pulls {
		if head != "" && head != owner+":"+p.Head {
			continue
		}
		if state != "all" && state != "" && state != p.State {
			continue
		}
		out = append(out, r.wire(p))
	}
	r.answer(w, http.StatusOK, out)
}

func (r *Receiver) create(w http.ResponseWriter, req *http.Request) {
	if ct := req.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		r.answer(w, http.StatusUnsupportedMediaType, apiError{Message: "Unsupported Media Type", DocURL: docURL})
		return
	}
	var in struct {
		Title *string `json:"title"`
		Head  *string `json:"head"`
		Base  *string `json:"base"`
		Body  string  `json:"body"`
		MCM   *bool   `json:"maintainer_can_modify"`
		Draft *bool   `json:"draft"`
	}
	dec := json.NewDecoder(io.LimitReader(req.Body, 1<<20))
	if err := dec.Decode(&in); err != nil {
		r.answer(w, http.StatusBadRequest, apiError{Message: "Problems parsing JSON", DocURL: docURL})
		return
	}
	var missing []map[string]any
	for field, v := range map[string]*string{"title": in.Title, "head": in.Head, "base": in.Base} {
		if v == nil || *v == "" {
			missing = append(missing, map[string]any{"resource": "PullRequest", "field": field, "code": "missing_field"})
		}
	}
	if len(missing) > 0 {
		r.answer(w, http.StatusUnprocessableEntity, apiError{Message: "Validation Failed", Errors: missing, DocURL: docURL})
		return
	}
	if r.Branches != nil && (!r.Branches(*in.Head) || !r.Branches(*in.Base)) {
		r.answer(w, http.StatusUnprocessableEntity, apiError{Message: "Validation Failed",
			Errors: []map[string]any{{"resource": "PullRequest", "field": "head", "code": "invalid"}}, DocURL: docURL})
		return
	}
	owner, _, _ := strings.Cut(r.Repo, "/")
	for _, p := range r.pulls {
		if p.Head == *in.Head && p.State == "open" {
			r.answer(w, http.StatusUnprocessableEntity, apiError{Message: "Validation Failed",
				Errors: []map[string]any{{"resource": "PullRequest", "code": "custom", "message": "A pull request already exists for " + owner + ":" + *in.Head + "."}}, DocURL: docURL})
			return
		}
	}
	n := len(r.pulls) + 1
	p := Pull{Number: n, Title: *in.Title, Head: *in.Head, Base: *in.Base, Body: in.Body, State: "open",
		URL: fmt.Sprintf("https://github.example.test/%s/pull/%d", r.Repo, n)}
	r.pulls = append(r.pulls, p)
	r.answer(w, http.StatusCreated, r.wire(p))
}
