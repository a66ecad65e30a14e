// Package uitest drives the web UI in a real browser for tests: Debian's
// headless Chromium (internal/testenv.StartChromium) through chromedp, with
// an accessibility check of a page, its console errors and screenshots kept
// as test artefacts.
package uitest

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/remote"

	"github.com/rewind-sre/rewind/internal/testenv"
)

// Browser is a headless Chromium driven through chromedp, with what its
// pages wrote to their consoles (exceptions, CSP violations, failed
// requests). Its methods fail the test on error.
type Browser struct {
	t       *testing.T
	Ctx     context.Context // the first tab
	alloc   context.Context
	mu      sync.Mutex
	console []string
}

// New starts Chromium (the test is skipped without it, and fails in CI)
// and opens a first tab (Ctx) in a fresh browser context.
func New(t *testing.T) *Browser {
	t.Helper()
	c := testenv.StartChromium(t, 1280, 900)
	alloc, cancel := remote.NewAllocator(context.Background(), c.WebSocketURL)
	t.Cleanup(cancel)
	b := &Browser{t: t, alloc: alloc}
	b.Ctx = b.Tab()
	return b
}

// Tab opens a tab in a new browser context (its own cookies), whose console
// is recorded.
func (b *Browser) Tab() context.Context {
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

// Do runs actions.
func (b *Browser) Do(ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// Click clicks and waits for the page it leads to.
func (b *Browser) Click(ctx context.Context, sel string) {
	b.t.Helper()
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		b.t.Fatalf("clicking %s: %v", sel, err)
	}
}

// Eval evaluates JavaScript in the page.
func (b *Browser) Eval(ctx context.Context, js string) any {
	b.t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[any](js))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// Wait polls a JavaScript predicate in the page for up to 30 s.
func (b *Browser) Wait(ctx context.Context, what, js string) {
	b.t.Helper()
	b.WaitFor(ctx, what, js, 30*time.Second)
}

// WaitFor polls a JavaScript predicate in the page for up to bound; on
// failure the page's text and a screenshot ("failed") are kept.
func (b *Browser) WaitFor(ctx context.Context, what, js string, bound time.Duration) {
	b.t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(bound), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
		b.Screenshot(ctx, "failed")
		b.t.Fatalf("waiting for %s: %v\npage:\n%.3000s", what, err, text)
	}
}

// Location is the page's URL.
func (b *Browser) Location(ctx context.Context) string {
	b.t.Helper()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return loc
}

// Screenshot saves the whole page as a test artefact:
// $REWIND_ARTIFACTS/ui/NAME.png, else under the system's temp directory.
func (b *Browser) Screenshot(ctx context.Context, name string) string {
	b.t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	return b.save(name, png)
}

func (b *Browser) save(name string, png []byte) string {
	b.t.Helper()
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

// ForgetConsole drops what the pages wrote to their consoles so far: after
// a request the test expects to fail.
func (b *Browser) ForgetConsole() {
	b.mu.Lock()
	b.console = nil
	b.mu.Unlock()
}

// ScreenshotView saves what the window shows (not the whole page), as
// Screenshot does: the pictures for the documentation.
func (b *Browser) ScreenshotView(ctx context.Context, name string) string {
	b.t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	return b.save(name, png)
}

// NoConsoleErrors: no exception, CSP violation or failed request so far.
func (b *Browser) NoConsoleErrors() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.console {
		b.t.Errorf("browser console: %s", m)
	}
	b.console = nil
}

// auditJS checks accessibility basics on the page in the browser: every
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

// Audit runs the accessibility check (auditJS) on the page; every problem
// fails the test.
func (b *Browser) Audit(ctx context.Context, page string) {
	b.t.Helper()
	probs, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](auditJS))
	if err != nil {
		b.t.Fatalf("audit of %s: %v", page, err)
	}
	for _, p := range probs {
		b.t.Errorf("accessibility, %s: %s", page, p)
	}
}
