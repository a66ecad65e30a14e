package ui

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/chromedp/chromedp/remote"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/controller"
	"github.com/rewind-sre/rewind/internal/testenv"
	"github.com/rewind-sre/rewind/plan"
)

// browser is a tab of a headless Chromium, with what the page wrote to its
// console (exceptions, CSP violations, failed requests).
type browser struct {
	t       *testing.T
	ctx     context.Context
	alloc   context.Context
	mu      sync.Mutex
	console []string
}

// newBrowser starts Chromium (skipped without it, failing in CI) and opens
// a tab in a fresh browser context.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	c := testenv.StartChromium(t, 1280, 900)
	alloc, cancel := remote.NewAllocator(context.Background(), c.WebSocketURL)
	t.Cleanup(cancel)
	b := &browser{t: t, alloc: alloc}
	b.ctx = b.tab()
	return b
}

// tab opens a tab in a new browser context (its own cookies), whose console
// is recorded.
func (b *browser) tab() context.Context {
	ctx, cancel := chromedp.NewContext(b.alloc, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 3*time.Minute)
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		b.t.Fatalf("opening a tab: %v", err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() || m.Type == "warning" {
				b.mu.Lock()
				b.console = append(b.console, m.URL+": "+m.String())
				b.mu.Unlock()
			}
		}
	}()
	return ctx
}

func (b *browser) do(ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// click clicks and waits for the page it leads to.
func (b *browser) click(ctx context.Context, sel string) {
	b.t.Helper()
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		b.t.Fatalf("clicking %s: %v", sel, err)
	}
}

func (b *browser) eval(ctx context.Context, js string) any {
	b.t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[any](js))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// wait polls a JavaScript predicate in the page.
func (b *browser) wait(ctx context.Context, what, js string) {
	b.t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(30*time.Second), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
		b.screenshot(ctx, "failed")
		b.t.Fatalf("waiting for %s: %v\npage:\n%.3000s", what, err, text)
	}
}

func (b *browser) location(ctx context.Context) string {
	b.t.Helper()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return loc
}

// screenshot saves the whole page as a test artefact:
// $REWIND_ARTIFACTS/ui/NAME.png, else under the system's temp directory.
func (b *browser) screenshot(ctx context.Context, name string) string {
	b.t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := os.Getenv("REWIND_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "rewind-artifacts")
	}
	dir = filepath.Join(dir, "ui")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
	return path
}

// noConsoleErrors: no exception, CSP violation or failed request so far.
func (b *browser) noConsoleErrors() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.console {
		b.t.Errorf("browser console: %s", m)
	}
	b.console = nil
}

// audit checks accessibility basics on the page in the browser: every
// control has a label, every button and link a name, every chart an
// accessible name and description, one h1 and a language; and the state
// colors (each state's badge, put on the page for the check) keep a
// contrast of at least 4.5:1, as does the page's text.
const auditJS = `(() => {
  const problems = [];
  const rgb = c => { const m = c.match(/rgba?\(([^)]+)\)/); return m ? m[1].split(',').map(Number) : [255,255,255,1]; };
  const lum = c => { const [r,g,b] = rgb(c); const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126*f(r) + 0.7152*f(g) + 0.0722*f(b); };
  const bg = el => { for (; el; el = el.parentElement) { const c = getComputedStyle(el).backgroundColor; const a = rgb(c)[3]; if (c !== 'transparent' && !(a === 0)) return c; } return 'rgb(255, 255, 255)'; };
  const contrast = el => { const a = lum(getComputedStyle(el).color), b = lum(bg(el)); return (Math.max(a,b) + 0.05) / (Math.min(a,b) + 0.05); };
  if (!document.documentElement.lang) problems.push('no lang on <html>');
  if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
  document.querySelectorAll('input:not([type=hidden]), select, textarea').forEach(e => {
    if (!(e.labels && e.labels.length) && !e.getAttribute('aria-label')) problems.push('control without a label: ' + (e.id || e.name));
  });
  document.querySelectorAll('button, a[href]').forEach(e => {
    if (!e.textContent.trim() && !e.getAttribute('aria-label')) problems.push('a button or link without a name: ' + e.outerHTML.slice(0, 80));
  });
  document.querySelectorAll('svg[role=img]').forEach(s => {
    const ids = (s.getAttribute('aria-labelledby') || '').split(/\s+/).filter(Boolean);
    if (ids.length < 2 || ids.some(id => !(document.getElementById(id) || {}).textContent)) problems.push('a chart without a title and description');
  });
  const probe = document.createElement('div');
  document.body.appendChild(probe);
  ['st st-ok','st st-pending','st st-firing','st st-insufficient-data','st st-degraded','tag paused','tag blind','tag inflight',
   'rb rb-running','rb rb-succeeded','rb rb-failed','step step-done','step step-skipped','step step-failed','dl dl-delivered','dl dl-pending','dl dl-failed'].forEach(cls => {
    const s = document.createElement('span'); s.className = cls; s.textContent = cls; probe.appendChild(s);
    const r = contrast(s); if (r < 4.5) problems.push('contrast of ' + cls + ' is ' + r.toFixed(2));
  });
  probe.remove();
  document.querySelectorAll('main p, main td, main th, main a, main dt, main dd, main label, main button, main li, header a').forEach(e => {
    if (!e.textContent.trim() || e.closest('svg') || getComputedStyle(e).display === 'none') return;
    const r = contrast(e); if (r < 4.5) problems.push('contrast ' + r.toFixed(2) + ' of ' + e.tagName + ' "' + e.textContent.trim().slice(0, 30) + '"');
  });
  return problems;
})()`

func (b *browser) audit(ctx context.Context, page string) {
	b.t.Helper()
	probs, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](auditJS))
	if err != nil {
		b.t.Fatalf("audit of %s: %v", page, err)
	}
	for _, p := range probs {
		b.t.Errorf("accessibility, %s: %s", page, p)
	}
}

// TestBrowser drives the UI in Chromium: the login, the overview updating
// live (no reload) as the canary's trigger goes pending and then firing,
// the system page's charts, the rollback page, pause and a manual rollback
// through the keyboard; refused without a login; accessibility basics on
// every page; screenshots of each.
func TestBrowser(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := newBrowser(t)
	ctx := b.ctx
	base := e.srv.URL + "/"

	b.do(ctx, "opening the UI", chromedp.Navigate(base))
	if loc := b.location(ctx); !strings.Contains(loc, "/login?next=") {
		t.Fatalf("without a login the overview sent the browser to %s", loc)
	}
	b.audit(ctx, "login")
	b.screenshot(ctx, "login")
	b.do(ctx, "logging in", chromedp.SendKeys(chromedp.ID("token"), testToken), chromedp.SendKeys(chromedp.ID("name"), "alice"))
	b.click(ctx, "form button[type=submit]")
	if loc := b.location(ctx); loc != base {
		t.Fatalf("after the login: %s", loc)
	}
	b.wait(ctx, "the live stream", `document.getElementById('live').textContent === 'Live'`)
	b.eval(ctx, `window.__sameDocument = true`)

	e.stepUntil(t0.Add(45*time.Minute), "error-rate-high pending", func(s controller.SystemStatus) bool {
		return trigger(s, "error-rate-high").State == rewind.StatePending
	})
	b.wait(ctx, "error-rate-high pending on the overview", `[...document.querySelectorAll('#s-checkout tr')].some(r => r.textContent.includes('error-rate-high') && r.querySelector('.st-pending') && /pending \d+s of 2m/.test(r.textContent))`)
	b.audit(ctx, "overview")
	b.screenshot(ctx, "overview-pending")
	e.stepUntil(t0.Add(50*time.Minute), "error-rate-high firing", func(s controller.SystemStatus) bool {
		return trigger(s, "error-rate-high").State == rewind.StateFiring
	})
	b.wait(ctx, "error-rate-high firing on the overview", `!!document.querySelector('#s-checkout .st-firing')`)
	if b.eval(ctx, `window.__sameDocument === true`) != true {
		t.Error("the overview was reloaded to show the new states")
	}
	b.screenshot(ctx, "overview-firing")

	var rb *rewind.Rollback
	testenv.Eventually(t, 30*time.Second, "the rollback to finish", func() (bool, string) {
		rbs, _ := e.st.List(t.Context(), plan.ListOptions{System: "checkout"})
		if len(rbs) == 0 || rbs[0].State == rewind.RollbackRunning {
			return false, ""
		}
		rb = rbs[0]
		return true, ""
	})
	b.do(ctx, "the system page", chromedp.Navigate(base+"systems/checkout"))
	if n := b.eval(ctx, `document.querySelectorAll('svg.chart .p-firing').length`); n.(float64) < 1 {
		t.Error("the system page shades no firing period")
	}
	b.audit(ctx, "system")
	b.screenshot(ctx, "system")
	b.do(ctx, "the rollback page", chromedp.Navigate(base+"rollbacks/"+rb.ID))
	b.wait(ctx, "the post-mortem", `!!document.querySelector('article.postmortem h3')`)
	b.audit(ctx, "rollback")
	b.screenshot(ctx, "rollback")
	b.do(ctx, "the rollbacks", chromedp.Navigate(base+"rollbacks"))
	b.audit(ctx, "rollbacks")

	// Pause, then a manual rollback with the keyboard only.
	b.do(ctx, "quiet's page", chromedp.Navigate(base+"systems/quiet"))
	b.click(ctx, `form[action="systems/quiet/pause"] button`)
	b.wait(ctx, "quiet shown paused", `document.getElementById('syshead').textContent.includes('automatic rollback paused')`)
	if !paused(e, "quiet") {
		t.Error("the pause button did not pause quiet")
	}
	if b.eval(ctx, `document.getElementById('rollback-button').disabled`) != true {
		t.Error("the rollback button is enabled before the system's name is typed")
	}
	b.do(ctx, "choosing a reason", chromedp.Focus(chromedp.ID("reason")), chromedp.KeyEvent(kb.ArrowDown), chromedp.KeyEvent(kb.ArrowDown))
	if v := b.eval(ctx, `document.getElementById('reason').value`); v != "security-vulnerability" {
		t.Errorf("the reason chosen with the keyboard: %v", v)
	}
	for _, want := range []string{"reason-text", "confirm"} {
		b.do(ctx, "tab", chromedp.KeyEvent(kb.Tab))
		if got := b.eval(ctx, `document.activeElement.id`); got != want {
			t.Fatalf("Tab went to %v, want %s", got, want)
		}
	}
	b.do(ctx, "typing the name", chromedp.KeyEvent("quiet"), chromedp.KeyEvent(kb.Tab))
	if got := b.eval(ctx, `document.activeElement.id`); got != "rollback-button" {
		t.Fatalf("Tab after the confirmation went to %v, not the enabled button", got)
	}
	if _, err := chromedp.RunResponse(ctx, chromedp.KeyEvent(kb.Enter)); err != nil {
		t.Fatalf("submitting with Enter: %v", err)
	}
	if loc := b.location(ctx); !strings.Contains(loc, "/rollbacks/rb-") {
		t.Fatalf("the manual rollback led to %s", loc)
	}
	b.wait(ctx, "the manual rollback's page", `document.body.textContent.includes('security-vulnerability') && document.body.textContent.includes('manual')`)
	b.screenshot(ctx, "manual-rollback")
	b.noConsoleErrors() // none of the pages so far had a script error, a CSP violation or a failed request
	// A form posted without the page's CSRF token is refused.
	code, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch('../systems/quiet/resume', {method: 'POST', body: new URLSearchParams({csrf: 'forged'})}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil || code != 403 {
		t.Errorf("a POST with a forged CSRF token: %d %v, want 403", code, err)
	}
	if !paused(e, "quiet") {
		t.Error("a forged resume resumed quiet")
	}

	// Another browser, not logged in: sent to the login, and refused.
	anon := b.tab()
	b.do(anon, "quiet's page without a login", chromedp.Navigate(base+"systems/quiet"))
	if loc := b.location(anon); !strings.Contains(loc, "/login?next=systems%2Fquiet") {
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
