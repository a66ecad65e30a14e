package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rewind-sre/rewind/controller"
	"github.com/rewind-sre/rewind/server"
)

// POST /api/v1/systems/{name}/resume-gitops: the token is required, an
// unknown system is 404, a malformed body 400, a failed resume 502 with
// what was resumed, and success 200 with the owners.
func TestResumeGitOps(t *testing.T) {
	calls := 0
	h := server.Handler(server.Options{Token: []byte("s3cret"), ResumeGitOps: func(_ context.Context, system, who string) (any, error) {
		calls++
		if !strings.HasPrefix(who, "api:") {
			t.Errorf("requester %q", who)
		}
		switch system {
		case "checkout":
			return []string{"Flux Kustomization flux-system/apps"}, nil
		case "broken":
			return []string{}, errors.New("forbidden")
		}
		return nil, fmt.Errorf("%w: %q", controller.ErrUnknownSystem, system)
	}})
	do := func(system, token, body string) (int, string) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/systems/"+system+"/resume-gitops", strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	cases := []struct {
		system, token, body string
		code                int
		has                 string
	}{
		{"checkout", "", "", 401, "bearer token"},
		{"checkout", "wrong", "", 401, ""},
		{"checkout", "s3cret", `{"by":"alice"}`, 200, `"Flux Kustomization flux-system/apps"`},
		{"checkout", "s3cret", `{"who":"x"}`, 400, "malformed"},
		{"nope", "s3cret", "", 404, "nope"},
		{"broken", "s3cret", "", 502, "forbidden"},
	}
	for _, c := range cases {
		code, body := do(c.system, c.token, c.body)
		if code != c.code || !strings.Contains(body, c.has) {
			t.Errorf("%s with token %q body %q: %d %s, want %d with %q", c.system, c.token, c.body, code, body, c.code, c.has)
		}
	}
	if calls != 3 {
		t.Errorf("ResumeGitOps called %d times, want 3 (never without the token or with a malformed body)", calls)
	}
	if code, _ := do("checkout", "s3cret", ""); code != 200 {
		t.Errorf("no body: %d", code)
	}
}
