package cli

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rewind-sre/rewind/ui/uitest"
)

var webUI = regexp.MustCompile(`web UI: (http://\S+/)`)

// TestDemoInTheBrowser watches a real `rewind demo --keep` (the command
// line, as a child process) in Chromium: its first line is the web UI's
// address; the overview shows the canary's trigger pending, then an error
// trigger firing, without a reload; the rollback's page shows every step
// done (the GitOps ones skipped) and the post-mortem; pausing and a manual rollback are refused without the
// demo's token and work with it. Every page passes the accessibility check;
// screenshots of each are kept.
func TestDemoInTheBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo runs about a minute")
	}
	dir := t.TempDir()
	demo := startCommand(t, "demo", "demo", "--keep", "--dir", dir)
	base := waitFor(t, 30*time.Second, "the demo's web UI address", func() (string, bool) {
		b, _ := os.ReadFile(demo.log)
		first, _, _ := strings.Cut(string(b), "\n")
		if m := webUI.FindStringSubmatch(first); m != nil {
			return m[1], true
		}
		return "", false
	})
	b := uitest.New(t)
	ctx := b.Ctx
	b.Do(ctx, "the overview", chromedp.Navigate(base))
	b.Wait(ctx, "the live stream", `document.getElementById('live').textContent === 'Live'`)
	b.Eval(ctx, `window.__sameDocument = true`)
	// error-rate-high goes pending first; whichever error trigger proves the
	// fault first fires (the at-once ceiling, often, while error-rate-high's
	// hold runs).
	const trigger = `[...document.querySelectorAll('#s-dwcp-manager tr')].some(r => r.textContent.includes('%t') && r.querySelector('.st-%s'))`
	pending := strings.NewReplacer("%t", "error-rate-high", "%s", "pending").Replace(trigger)
	firing := strings.NewReplacer("%t", "error-rate", "%s", "firing").Replace(trigger)
	b.WaitFor(ctx, "error-rate-high pending", pending, 90*time.Second)
	b.Screenshot(ctx, "demo-overview-pending")
	b.WaitFor(ctx, "an error-rate trigger firing", firing, 30*time.Second)
	b.Screenshot(ctx, "demo-overview-firing")
	b.ScreenshotView(ctx, "demo-overview-view")
	if b.Eval(ctx, `window.__sameDocument === true`) != true {
		t.Error("the overview reloaded to show the states")
	}
	b.Audit(ctx, "demo overview")

	// The rollback: every step done, verified, the post-mortem rendered.
	b.Do(ctx, "the rollbacks", chromedp.Navigate(base+"rollbacks"))
	b.Wait(ctx, "the rollback in the list", `!!document.querySelector('table.list a[href^="rollbacks/rb-"]')`)
	b.Audit(ctx, "demo rollbacks")
	b.Click(ctx, `table.list a[href^="rollbacks/rb-"]`)
	// The demo's canary is a process: the GitOps steps are skipped (no
	// reconciler owns it), every other step is done.
	b.WaitFor(ctx, "every step done and the post-mortem", `document.querySelectorAll('table.steps tbody tr').length === 8 &&
		[...document.querySelectorAll('table.steps tbody tr')].every(r => r.querySelector(/gitops|git-revert/.test(r.cells[0].textContent) ? '.step-skipped' : '.step-done')) &&
		!!document.querySelector('.rb-succeeded') && !!document.querySelector('article.postmortem h3')`, 60*time.Second)
	b.Audit(ctx, "demo rollback")
	b.Screenshot(ctx, "demo-rollback")
	b.Do(ctx, "the system", chromedp.Navigate(base+"systems/dwcp-manager"))
	// The charts are range queries through the demo's engine, refreshed
	// every 30 s: a loaded machine may need a second refresh.
	b.WaitFor(ctx, "the charts", `document.querySelectorAll('svg.chart').length >= 8 && !!document.querySelector('svg.chart .p-firing')`, 75*time.Second)
	b.Audit(ctx, "demo system")
	b.Screenshot(ctx, "demo-system")
	b.ScreenshotView(ctx, "demo-system-view")
	b.NoConsoleErrors()

	// Without the token: the pages are open (the demo's --open-reads), the
	// actions are not.
	if b.Eval(ctx, `!!document.querySelector('form[action$="/pause"]')`) != false {
		t.Error("the pause form is offered without a login")
	}
	code, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch('systems/dwcp-manager/pause', {method: 'POST', body: new URLSearchParams({csrf: 'x'})}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil || code != http.StatusUnauthorized {
		t.Errorf("pause without the token: %d %v, want 401", code, err)
	}
	b.ForgetConsole() // the refused request's 401
	if paused(t, base) {
		t.Fatal("paused without the token")
	}

	// With it.
	token, err := os.ReadFile(filepath.Join(dir, "api-token"))
	if err != nil {
		t.Fatal(err)
	}
	b.Do(ctx, "the login", chromedp.Navigate(base+"login?next=systems/dwcp-manager"), chromedp.SendKeys(chromedp.ID("token"), strings.TrimSpace(string(token))),
		chromedp.SendKeys(chromedp.ID("name"), "newcomer"))
	b.Click(ctx, "form button[type=submit]")
	b.Click(ctx, `form[action$="/pause"] button`)
	b.Wait(ctx, "the system shown paused", `document.getElementById('syshead').textContent.includes('automatic rollback paused')`)
	if !paused(t, base) {
		t.Error("the pause button did not pause the system")
	}
	b.Do(ctx, "a manual rollback", chromedp.SetValue(chromedp.ID("reason"), "customer-escalation"), chromedp.SendKeys(chromedp.ID("confirm"), "dwcp-manager"))
	b.Click(ctx, "#rollback-button")
	b.WaitFor(ctx, "the manual rollback's page", `location.pathname.startsWith('/rollbacks/rb-') && document.body.textContent.includes('customer-escalation') &&
		document.body.textContent.includes('newcomer (token)')`, 30*time.Second)
	b.Screenshot(ctx, "demo-manual-rollback")
	b.NoConsoleErrors()
}

// paused asks the demo's API whether dwcp-manager is paused.
func paused(t *testing.T, base string) bool {
	t.Helper()
	resp, err := http.Get(base + "api/v1/systems")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Systems []struct {
			Name   string `json:"name"`
			Paused bool   `json:"paused"`
		} `json:"systems"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	for _, s := range body.Systems {
		if s.Name == "dwcp-manager" {
			return s.Paused
		}
	}
	t.Fatal("no dwcp-manager in the API's systems")
	return false
}
