package ui

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/controller"
	"github.com/rewind-sre/rewind/internal/testenv"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/ui/uitest"
)

// TestBrowser drives the UI in Chromium: the login, the overview updating
// live (no reload) as the canary's trigger goes pending and then firing,
// the system page's charts, the rollback page, pause and a manual rollback
// through the keyboard; refused without a login; accessibility basics on
// every page; screenshots of each.
func TestBrowser(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := uitest.New(t)
	ctx := b.Ctx
	base := e.srv.URL + "/"

	b.Do(ctx, "opening the UI", chromedp.Navigate(base))
	if loc := b.Location(ctx); !strings.Contains(loc, "/login?next=") {
		t.Fatalf("without a login the overview sent the browser to %s", loc)
	}
	b.Audit(ctx, "login")
	b.Screenshot(ctx, "login")
	b.Do(ctx, "logging in", chromedp.SendKeys(chromedp.ID("token"), testToken), chromedp.SendKeys(chromedp.ID("name"), "alice"))
	b.Click(ctx, "form button[type=submit]")
	if loc := b.Location(ctx); loc != base {
		t.Fatalf("after the login: %s", loc)
	}
	b.Wait(ctx, "the live stream", `document.getElementById('live').textContent === 'Live'`)
	b.Eval(ctx, `window.__sameDocument = true`)

	e.stepUntil(t0.Add(45*time.Minute), "error-rate-high pending", func(s controller.SystemStatus) bool {
		return trigger(s, "error-rate-high").State == rewind.StatePending
	})
	b.Wait(ctx, "error-rate-high pending on the overview", `[...document.querySelectorAll('#s-checkout tr')].some(r => r.textContent.includes('error-rate-high') && r.querySelector('.st-pending') && /pending \d+s of 2m/.test(r.textContent))`)
	b.Audit(ctx, "overview")
	b.Screenshot(ctx, "overview-pending")
	e.stepUntil(t0.Add(50*time.Minute), "error-rate-high firing", func(s controller.SystemStatus) bool {
		return trigger(s, "error-rate-high").State == rewind.StateFiring
	})
	b.Wait(ctx, "error-rate-high firing on the overview", `!!document.querySelector('#s-checkout .st-firing')`)
	if b.Eval(ctx, `window.__sameDocument === true`) != true {
		t.Error("the overview was reloaded to show the new states")
	}
	b.Screenshot(ctx, "overview-firing")

	var rb *rewind.Rollback
	testenv.Eventually(t, 30*time.Second, "the rollback to finish", func() (bool, string) {
		rbs, _ := e.st.List(t.Context(), plan.ListOptions{System: "checkout"})
		if len(rbs) == 0 || rbs[0].State == rewind.RollbackRunning {
			return false, ""
		}
		rb = rbs[0]
		return true, ""
	})
	b.Do(ctx, "the system page", chromedp.Navigate(base+"systems/checkout"))
	if n := b.Eval(ctx, `document.querySelectorAll('svg.chart .p-firing').length`); n.(float64) < 1 {
		t.Error("the system page shades no firing period")
	}
	b.Audit(ctx, "system")
	b.Screenshot(ctx, "system")
	b.Do(ctx, "the rollback page", chromedp.Navigate(base+"rollbacks/"+rb.ID))
	b.Wait(ctx, "the post-mortem", `!!document.querySelector('article.postmortem h3')`)
	b.Audit(ctx, "rollback")
	b.Screenshot(ctx, "rollback")
	b.Do(ctx, "the rollbacks", chromedp.Navigate(base+"rollbacks"))
	b.Audit(ctx, "rollbacks")

	// Pause, then a manual rollback with the keyboard only.
	b.Do(ctx, "quiet's page", chromedp.Navigate(base+"systems/quiet"))
	b.Click(ctx, `form[action="systems/quiet/pause"] button`)
	b.Wait(ctx, "quiet shown paused", `document.getElementById('syshead').textContent.includes('automatic rollback paused')`)
	if !paused(e, "quiet") {
		t.Error("the pause button did not pause quiet")
	}
	if b.Eval(ctx, `document.getElementById('rollback-button').disabled`) != true {
		t.Error("the rollback button is enabled before the system's name is typed")
	}
	b.Do(ctx, "choosing a reason", chromedp.Focus(chromedp.ID("reason")), chromedp.KeyEvent(kb.ArrowDown), chromedp.KeyEvent(kb.ArrowDown))
	if v := b.Eval(ctx, `document.getElementById('reason').value`); v != "security-vulnerability" {
		t.Errorf("the reason chosen with the keyboard: %v", v)
	}
	for _, want := range []string{"reason-text", "confirm"} {
		b.Do(ctx, "tab", chromedp.KeyEvent(kb.Tab))
		if got := b.Eval(ctx, `document.activeElement.id`); got != want {
			t.Fatalf("Tab went to %v, want %s", got, want)
		}
	}
	b.Do(ctx, "typing the name", chromedp.KeyEvent("quiet"), chromedp.KeyEvent(kb.Tab))
	if got := b.Eval(ctx, `document.activeElement.id`); got != "rollback-button" {
		t.Fatalf("Tab after the confirmation went to %v, not the enabled button", got)
	}
	if _, err := chromedp.RunResponse(ctx, chromedp.KeyEvent(kb.Enter)); err != nil {
		t.Fatalf("submitting with Enter: %v", err)
	}
	if loc := b.Location(ctx); !strings.Contains(loc, "/rollbacks/rb-") {
		t.Fatalf("the manual rollback led to %s", loc)
	}
	b.Wait(ctx, "the manual rollback's page", `document.body.textContent.includes('security-vulnerability') && document.body.textContent.includes('manual')`)
	b.Screenshot(ctx, "manual-rollback")
	b.NoConsoleErrors() // none of the pages so far had a script error, a CSP violation or a failed request
	// A form posted without the page's CSRF token is refused.
	code, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch('../systems/quiet/resume', {method: 'POST', body: new URLSearchParams({csrf: 'forged'})}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil || code != 403 {
		t.Errorf("a POST with a forged CSRF token: %d %v, want 403", code, err)
	}
	if !paused(e, "quiet") {
		t.Error("a forged resume resumed quiet")
	}

	// Another browser, not logged in: sent to the login, and refused.
	anon := b.Tab()
	b.Do(anon, "quiet's page without a login", chromedp.Navigate(base+"systems/quiet"))
	if loc := b.Location(anon); !strings.Contains(loc, "/login?next=systems%2Fquiet") {
		t.Errorf("without a login: %s", loc)
	}
	code, err = chromedp.Run(anon, chromedp.Evaluate[int](`fetch('systems/quiet/resume', {method: 'POST', body: new URLSearchParams({csrf: 'x'})}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil || code != 401 {
		t.Errorf("resume without a login: %d %v, want 401", code, err)
	}
	if !paused(e, "quiet") {
		t.Error("quiet was resumed without a login")
	}
}
