package ui

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/controller"
	"github.com/rewind-sre/rewind/internal/testenv"
	"github.com/rewind-sre/rewind/plan"
)

// client is a browser-like HTTP client: cookies, no redirects followed.
type client struct {
	t    *testing.T
	base string
	c    *http.Client
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: e.t, base: e.srv.URL, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) get(path string) (int, http.Header, string) {
	c.t.Helper()
	resp, err := c.c.Get(c.base + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// post submits a form as the browser would from the UI's own page, with
// the Origin header (origin "" leaves it out, others are sent as given).
func (c *client) post(path string, form url.Values, origin string) (int, http.Header, string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin == "self" {
		origin = c.base
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// login logs in with the token and returns the CSRF token of the pages.
func (c *client) login(name string) string {
	c.t.Helper()
	code, h, body := c.post("/login", url.Values{"token": {testToken}, "name": {name}}, "self")
	if code != http.StatusSeeOther {
		c.t.Fatalf("login: %d %s", code, body)
	}
	cookie := h.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(cookie, want) {
			c.t.Errorf("session cookie without %s: %s", want, cookie)
		}
	}
	_, _, page := c.get("/")
	return csrfOf(c.t, page)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", page)
	}
	return m[1]
}

// TestStory follows a canary going bad through the UI: the overview shows
// the trigger pending, then firing; the system page charts it with the
// threshold and the periods shaded; the rollback page shows the decision,
// the steps, the notices, the evidence and the post-mortem.
func TestStory(t *testing.T) {
	e := newEnv(t, envOptions{openReads: true})
	c := e.client()

	code, h, body := c.get("/")
	if code != http.StatusOK {
		t.Fatalf("overview: %d", code)
	}
	for k, want := range map[string]string{"Content-Security-Policy": "frame-ancestors 'none'", "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff"} {
		if !strings.Contains(h.Get(k), want) {
			t.Errorf("header %s = %q, want %q in it", k, h.Get(k), want)
		}
	}
	if strings.Contains(h.Get("Content-Security-Policy"), "unsafe-inline") || strings.Contains(body, "<script>") || strings.Contains(body, "style=") {
		t.Error("inline script or style: the CSP forbids them")
	}
	for _, want := range []string{`id="s-checkout"`, `id="s-quiet"`, "error-rate-high", "canary-health", `st-ok`, "insufficient-data"} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}

	// The fault at t0+30m: error-rate-high goes pending, shown with its hold.
	e.stepUntil(t0.Add(45*time.Minute), "error-rate-high pending", func(s controller.SystemStatus) bool {
		return trigger(s, "error-rate-high").State == rewind.StatePending
	})
	e.ui.live.invalidate()
	_, _, body = c.get("/")
	row := between(body, `id="s-checkout"`, "</tbody>")
	if !regexp.MustCompile(`error-rate-high</td><td><span class="st st-pending">pending</span>.*pending \d+s of 2m`).MatchString(row) {
		t.Errorf("overview: error-rate-high is not shown pending with its hold:\n%s", row)
	}
	if !strings.Contains(between(body, `id="attention"`, "</div>"), "checkout") {
		t.Error("checkout is not in the attention list while a trigger is pending")
	}

	// Then firing: the rollback is decided and runs.
	e.stepUntil(t0.Add(50*time.Minute), "error-rate-high firing", func(s controller.SystemStatus) bool {
		return trigger(s, "error-rate-high").State == rewind.StateFiring
	})
	e.ui.live.invalidate()
	_, _, body = c.get("/")
	if !strings.Contains(between(body, `id="s-checkout"`, "</tbody>"), `<span class="st st-firing">firing</span>`) {
		t.Error("overview: error-rate-high is not shown firing")
	}
	var rb *rewind.Rollback
	testenv.Eventually(t, 30*time.Second, "the rollback to finish with its post-mortem", func() (bool, string) {
		rbs, err := e.st.List(t.Context(), plan.ListOptions{System: "checkout"})
		if err != nil || len(rbs) == 0 || rbs[0].State == rewind.RollbackRunning {
			return false, "no finished rollback"
		}
		rb = rbs[0]
		_, err = e.ui.opt.Evidence.Open(t.Context(), rb.Evidence, "POSTMORTEM.md")
		return err == nil, "no post-mortem yet"
	})

	// The system page: a chart per metric trigger, with the threshold band
	// and the pending and firing periods shaded.
	code, _, body = c.get("/systems/checkout")
	if code != http.StatusOK {
		t.Fatalf("system page: %d", code)
	}
	if g := between(body, `<section aria-labelledby="gitops-h">`, "</section>"); !strings.Contains(g, "<li>Flux Kustomization flux-system/apps (found by labels on Deployment shop/checkout-canary): SUSPENDED by rollback rb-1 &lt;x&gt;</li>") {
		t.Errorf("the system page does not show the GitOps owner (escaped):\n%s", g)
	}
	fig := between(body, `<figure id="c-error-rate-high"`, "</figure>")
	for _, want := range []string{`<svg class="chart"`, `class="can"`, `class="base"`, `class="thr"`, `class="band"`, `class="p-pending"`, `class="p-firing"`, `class="mark"`, "baseline × 1.5 (minEffect)"} {
		if !strings.Contains(fig, want) {
			t.Errorf("error-rate-high's chart lacks %s:\n%s", want, fig)
		}
	}
	if !strings.Contains(body, "canary ") || !regexp.MustCompile(`canary \d+/\d+ \([\d.]+%\) vs baseline \d+/\d+`).MatchString(body) {
		t.Error("the system page does not give the judge's evidence in words")
	}
	for _, id := range []string{"c-throughput-low", "c-latency-p99-high", "c-byzantine-attack-detected"} {
		if !strings.Contains(between(body, `<figure id="`+id+`"`, "</figure>"), `<svg class="chart"`) {
			t.Errorf("no chart %s", id)
		}
	}
	if !strings.Contains(between(body, `<figure id="c-canary-health"`, "</figure>"), "no metrics to chart") {
		t.Error("the health check's figure does not say why it has no chart")
	}

	// The rollback page.
	code, _, body = c.get("/rollbacks/" + rb.ID)
	if code != http.StatusOK {
		t.Fatalf("rollback page: %d", code)
	}
	for _, want := range []string{"The decision", "error-rate-high", "Against the seed's targets", "under 2m", `class="gantt"`,
		"check-baseline", `step-done`, "Post-mortem draft", "<h3>Rollback Post-Mortem", "INDEX.md", "decision.json", "Download as Markdown"} {
		if !strings.Contains(body, want) {
			t.Errorf("rollback page lacks %q", want)
		}
	}
	testenv.Eventually(t, 20*time.Second, "the notices to be shown delivered", func() (bool, string) {
		_, _, body = c.get("/rollbacks/" + rb.ID)
		n := between(body, `id="not-h"`, "</section>")
		return strings.Contains(n, "rollback-decided") && strings.Contains(n, "rollback-completed") && strings.Contains(n, "dl-delivered"), n
	})
	code, h, md := c.get("/rollbacks/" + rb.ID + "/postmortem.md")
	if code != http.StatusOK || !strings.HasPrefix(md, "# Rollback Post-Mortem") || !strings.Contains(h.Get("Content-Disposition"), "attachment") {
		t.Errorf("post-mortem download: %d %q %.40q", code, h.Get("Content-Disposition"), md)
	}
	code, h, js := c.get("/rollbacks/" + rb.ID + "/evidence/decision.json")
	if code != http.StatusOK || !strings.Contains(js, `"firing"`) || !strings.Contains(h.Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("evidence file: %d %q", code, h.Get("Content-Security-Policy"))
	}
	_, _, body = c.get("/rollbacks")
	if !strings.Contains(body, rb.ID) {
		t.Error("the rollbacks list lacks the rollback")
	}
}
