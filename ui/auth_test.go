package ui

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/internal/testenv"
)

// TestReadsNeedALoginUnlessOpen: without --open-reads every page sends the
// browser to the login form, and the event stream and fragments are 401.
func TestReadsNeedALoginUnlessOpen(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client()
	for _, path := range []string{"/", "/systems/checkout", "/rollbacks", "/rollbacks/rb-x"} {
		code, h, _ := c.get(path)
		if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "login?next=") {
			t.Errorf("GET %s without a login: %d, Location %q", path, code, h.Get("Location"))
		}
	}
	if code, h, _ := c.get("/systems/checkout"); h.Get("Location") != "../login?next=systems%2Fcheckout" {
		t.Errorf("the login redirect is not relative to the page: %d %q", code, h.Get("Location"))
	}
	for _, path := range []string{"/events", "/systems/checkout/charts", "/rollbacks/rb-x/live"} {
		if code, _, _ := c.get(path); code != http.StatusUnauthorized {
			t.Errorf("GET %s without a login: %d, want 401", path, code)
		}
	}
	// The login page itself, and the static files, are open.
	for _, path := range []string{"/login", "/static/app.css", "/static/app.js"} {
		if code, _, _ := c.get(path); code != http.StatusOK {
			t.Errorf("GET %s: %d", path, code)
		}
	}
	// A wrong token is refused and audited; the right one opens the pages.
	if code, _, body := c.post("/login", url.Values{"token": {"wrong"}}, "self"); code != http.StatusUnauthorized || !strings.Contains(body, "not the API token") {
		t.Errorf("wrong token: %d", code)
	}
	if !strings.Contains(e.audit.String(), "login refused") {
		t.Error("a refused login is not in the audit log")
	}
	code, h, _ := c.post("/login", url.Values{"token": {testToken}, "name": {"alice"}, "next": {"systems/checkout"}}, "self")
	if code != http.StatusSeeOther || h.Get("Location") != "./systems/checkout" {
		t.Fatalf("login: %d %q", code, h.Get("Location"))
	}
	if code, _, body := c.get("/systems/checkout"); code != http.StatusOK || !strings.Contains(body, "Signed in as <strong>alice (token)</strong>") {
		t.Errorf("after the login: %d", code)
	}
	// An open redirect is not followed.
	for _, next := range []string{"//evil.example/", "https://evil.example/", "/abs", "../up", `\evil`} {
		_, h, _ := c.post("/login", url.Values{"token": {testToken}, "next": {next}}, "self")
		if h.Get("Location") != "./" {
			t.Errorf("next=%q led to %q", next, h.Get("Location"))
		}
	}
}

// TestActions: pause, resume and a manual rollback work for a logged-in user
// with the page's CSRF token, from the UI's own origin, with the system's
// name as confirmation; every other way is refused, and all of it audited.
func TestActions(t *testing.T) {
	e := newEnv(t, envOptions{openReads: true})
	anon := e.client()
	_, _, page := anon.get("/systems/quiet")
	if strings.Contains(page, `action="systems/quiet/rollback"`) || !strings.Contains(page, "Log in</a> to pause") {
		t.Error("the actions are offered without a login")
	}
	if code, _, _ := anon.post("/systems/quiet/pause", url.Values{"csrf": {"x"}}, "self"); code != http.StatusUnauthorized {
		t.Errorf("pause without a login: %d, want 401", code)
	}
	if code, _, _ := anon.post("/systems/quiet/rollback", url.Values{"reason": {"team-consensus"}, "confirm": {"quiet"}}, "self"); code != http.StatusUnauthorized {
		t.Errorf("rollback without a login: %d, want 401", code)
	}

	c := e.client()
	csrf := c.login("alice")
	_, _, page = c.get("/systems/quiet")
	for _, want := range []string{`action="systems/quiet/pause"`, `action="systems/quiet/rollback"`, `<label for="reason">`, `<label for="confirm">`, "customer-escalation"} {
		if !strings.Contains(page, want) {
			t.Errorf("the system page lacks %s for a logged-in user", want)
		}
	}
	// Refused: no CSRF token, another site's origin, no origin at all.
	if code, _, _ := c.post("/systems/quiet/pause", url.Values{}, "self"); code != http.StatusForbidden {
		t.Errorf("pause without the CSRF token: %d, want 403", code)
	}
	if code, _, _ := c.post("/systems/quiet/pause", url.Values{"csrf": {csrf}}, "https://evil.example"); code != http.StatusForbidden {
		t.Errorf("pause from another origin: %d, want 403", code)
	}
	if code, _, _ := c.post("/systems/quiet/pause", url.Values{"csrf": {csrf}}, ""); code != http.StatusForbidden {
		t.Errorf("pause without an Origin or Referer: %d, want 403", code)
	}
	if paused(e, "quiet") {
		t.Fatal("a refused pause paused the system")
	}
	// Pause and resume.
	code, h, _ := c.post("/systems/quiet/pause", url.Values{"csrf": {csrf}}, "self")
	if code != http.StatusSeeOther || h.Get("Location") != "../quiet?done=paused" || !paused(e, "quiet") {
		t.Fatalf("pause: %d %q paused=%v", code, h.Get("Location"), paused(e, "quiet"))
	}
	_, _, page = c.get("/systems/quiet?done=paused")
	if !strings.Contains(page, "automatic rollback paused") || !strings.Contains(page, "Resume automatic rollback") {
		t.Error("the page does not show the system paused")
	}
	if code, _, _ := c.post("/systems/quiet/resume", url.Values{"csrf": {csrf}}, "self"); code != http.StatusSeeOther || paused(e, "quiet") {
		t.Errorf("resume: %d", code)
	}

	// A manual rollback needs the name typed and a reason.
	if code, _, body := c.post("/systems/quiet/rollback", url.Values{"csrf": {csrf}, "reason": {"team-consensus"}, "confirm": {"Quiet"}}, "self"); code != http.StatusBadRequest || !strings.Contains(body, "type the system") {
		t.Errorf("rollback with a wrong confirmation: %d", code)
	}
	if code, _, _ := c.post("/systems/quiet/rollback", url.Values{"csrf": {csrf}, "reason": {"other"}, "reason_text": {"  "}, "confirm": {"quiet"}}, "self"); code != http.StatusBadRequest {
		t.Errorf("rollback without a reason: %d", code)
	}
	if code, _, _ := c.post("/systems/quiet/rollback", url.Values{"csrf": {csrf}, "reason": {"made-up-reason"}, "confirm": {"quiet"}}, "self"); code != http.StatusBadRequest {
		t.Errorf("rollback with an unknown reason: %d", code)
	}
	code, h, body := c.post("/systems/quiet/rollback", url.Values{"csrf": {csrf}, "reason": {"other"}, "reason_text": {"the new cache\x00 corrupts sessions"}, "confirm": {"quiet"}}, "self")
	if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "../../rollbacks/rb-") {
		t.Fatalf("rollback: %d %q %s", code, h.Get("Location"), body)
	}
	id := strings.TrimPrefix(h.Get("Location"), "../../rollbacks/")
	// Followed at once, the redirect finds the rollback (journaled, or
	// still starting), never a 404.
	if code, _, body := c.get("/rollbacks/" + id); code != http.StatusOK || !strings.Contains(body, id) {
		t.Errorf("the new rollback's page right away: %d", code)
	}
	if code, _, _ := c.get("/rollbacks/" + id + "/live"); code != http.StatusOK {
		t.Errorf("the new rollback's live fragment right away: %d", code)
	}
	var rb *rewind.Rollback
	testenv.Eventually(t, 20*time.Second, "the manual rollback to finish", func() (bool, string) {
		r, err := e.st.Get(t.Context(), id)
		rb = r
		return err == nil && r.State != rewind.RollbackRunning, "not finished"
	})
	if rb.Reason != "the new cache corrupts sessions" || !strings.HasPrefix(rb.Requester, "ui:alice (token)@127.0.0.1:") {
		t.Errorf("the rollback's reason %q, requester %q", rb.Reason, rb.Requester)
	}
	_, _, page = c.get("/rollbacks/" + id)
	if !strings.Contains(page, "manual") || !strings.Contains(page, "the new cache corrupts sessions") || !strings.Contains(page, "Request → recovery verified") {
		t.Error("the manual rollback's page lacks its kind or reason")
	}

	audit := e.audit.String()
	for _, want := range []string{"action refused: not logged in", "action refused: missing or wrong CSRF token", "request refused: not from this site",
		"automatic rollback pause", "automatic rollback resume", "manual rollback refused", "manual rollback requested", "rollback=" + id, "logged in"} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit log lacks %q", want)
		}
	}
	if strings.Contains(audit, testToken) {
		t.Error("the token is in the audit log")
	}

	// Logged out: the session is gone.
	if code, _, _ := c.post("/logout", url.Values{"csrf": {csrf}}, "self"); code != http.StatusSeeOther {
		t.Errorf("logout: %d", code)
	}
	if code, _, _ := c.post("/systems/quiet/pause", url.Values{"csrf": {csrf}}, "self"); code != http.StatusUnauthorized {
		t.Errorf("pause after logout: %d, want 401", code)
	}
}

// TestProxyIdentity: with an authenticating proxy's header configured, its
// identity can act (with the CSRF token bound to it); without the setting
// the header means nothing.
func TestProxyIdentity(t *testing.T) {
	e := newEnv(t, envOptions{header: "X-Forwarded-Email"})
	get := func(who string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/systems/quiet", nil)
		req.Header.Set("X-Forwarded-Email", who)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		return resp.StatusCode, b.String()
	}
	code, page := get("bob@example.com")
	if code != http.StatusOK || !strings.Contains(page, "Signed in as <strong>bob@example.com</strong>") {
		t.Fatalf("with the proxy's header: %d", code)
	}
	csrf := csrfOf(t, page)
	post := func(who, token string) int {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/systems/quiet/pause", strings.NewReader(url.Values{"csrf": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", e.srv.URL)
		req.Header.Set("X-Forwarded-Email", who)
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("mallory@example.com", csrf); code != http.StatusForbidden {
		t.Errorf("bob's CSRF token used by another identity: %d, want 403", code)
	}
	if code := post("bob@example.com", csrf); code != http.StatusSeeOther || !paused(e, "quiet") {
		t.Errorf("pause by the proxy's user: %d", code)
	}
	if !strings.Contains(e.audit.String(), "who=ui:bob@example.com@") {
		t.Errorf("the audit log does not name the proxy's user:\n%s", e.audit.String())
	}

	plain := newEnv(t, envOptions{})
	req, _ := http.NewRequest(http.MethodGet, plain.srv.URL+"/", nil)
	req.Header.Set("X-Forwarded-Email", "bob@example.com")
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the header without the setting: %d, want the login redirect", resp.StatusCode)
	}
}

// TestEvidenceStaysInTheBundle: a file name cannot leave the bundle.
func TestEvidenceStaysInTheBundle(t *testing.T) {
	e := newEnv(t, envOptions{openReads: true})
	c := e.client()
	csrf := c.login("alice")
	_, h, _ := c.post("/systems/quiet/rollback", url.Values{"csrf": {csrf}, "reason": {"team-consensus"}, "confirm": {"quiet"}}, "self")
	id := strings.TrimPrefix(h.Get("Location"), "../../rollbacks/")
	testenv.Eventually(t, 20*time.Second, "the rollback's bundle", func() (bool, string) {
		rb, err := e.st.Get(t.Context(), id)
		return err == nil && rb.Evidence != "" && rb.State != rewind.RollbackRunning, ""
	})
	if code, _, _ := c.get("/rollbacks/" + id + "/evidence/rollback.json"); code != http.StatusOK {
		t.Fatalf("a bundle file: %d", code)
	}
	for _, p := range []string{"../../rewind.db", "..%2F..%2Frewind.db", "%2e%2e/x", "/etc/passwd", "sub/../../x", "nonexistent.json"} {
		if code, _, body := c.get("/rollbacks/" + id + "/evidence/" + p); code == http.StatusOK {
			t.Errorf("evidence/%s was served: %.80q", p, body)
		}
	}
}

func paused(e *env, name string) bool {
	for _, s := range e.ctl.Systems() {
		if s.Name == name {
			return s.Paused
		}
	}
	return false
}
