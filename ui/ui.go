// Package ui is Rewind's web UI for the people on call: every system with
// its trigger states live, a system's canary-versus-baseline charts with the
// threshold and the pending and firing periods, the rollbacks with their
// decision, steps, notices, evidence and post-mortem, and the operator's
// actions (pause, resume, manual rollback) for a logged-in user.
//
// Pages are rendered on the server (html/template, charts as SVG); the
// stylesheet and one small script are embedded. Every URL is relative, so the
// UI works behind `kubectl port-forward` and under a path prefix, offline.
// It reads through narrow interfaces of the controller, the rollback store,
// the notification outbox and the evidence bundles.
package ui

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/controller"
	"github.com/rewind-sre/rewind/notify"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/policy"
)

// Controller is what the UI reads from, and asks of, the controller
// (*controller.Controller implements it).
type Controller interface {
	Systems() []controller.SystemStatus
	// Lookup returns a system's policy and its metrics source.
	Lookup(name string) (*policy.System, rewind.Source, error)
	SetPaused(name string, paused bool) error
	RequestRollback(ctx context.Context, name, reason, requester string) (string, error)
}

// Rollbacks is the read half of the rollback store (plan.Store).
type Rollbacks interface {
	Get(ctx context.Context, id string) (*rewind.Rollback, error)
	List(ctx context.Context, opts plan.ListOptions) ([]*rewind.Rollback, error)
	Journal(ctx context.Context, id string) ([]plan.JournalEntry, error)
}

// Notices lists the outbox's notices (notify.Store); the UI asks for those of
// one rollback (Filter.RollbackID).
type Notices interface {
	Notices(ctx context.Context, f notify.Filter) ([]notify.Notice, error)
}

// Revision is one revision of a rollout-watch system's workload, newest
// first.
type Revision struct {
	Name    string
	Image   string
	Created time.Time
	Current bool
	Note    string
}

// Options configure the UI.
type Options struct {
	Controller Controller // required
	Rollbacks  Rollbacks  // required
	Notices    Notices    // nil: the rollback page says notices are not available
	// Evidence reads the bundles; default DirEvidence (the bundle directory
	// named in the rollback record).
	Evidence Evidence
	// History feeds the charts' pending and firing periods; nil: only those
	// recorded with a rollback's decision are shaded.
	History *History
	// Revisions lists a rollout-watch system's revisions; nil, or an empty
	// answer, leaves the section out.
	Revisions func(ctx context.Context, system string) ([]Revision, error)
	// GitOps describes a system's GitOps owners (Flux, Argo CD), one line
	// each, as last looked at; nil, or no lines, leaves the section out.
	GitOps func(system string) []string

	// Token is the API token: a user logs in with it. Empty: no token login.
	Token []byte
	// IdentityHeader names the header in which an authenticating proxy (an
	// OIDC proxy such as oauth2-proxy) passes the user's identity, e.g.
	// X-Forwarded-Email. Only set it when every request reaches Rewind
	// through that proxy: anyone who can reach the listener directly can set
	// the header.
	IdentityHeader string
	// OpenReads serves the read-only pages without a login.
	OpenReads bool
	// Audit receives every action (who, what, which system, the outcome)
	// and every refused one.
	Audit *slog.Logger
	Log   *slog.Logger
	Now   func() time.Time
	// Version is shown in the footer.
	Version string
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// UI is the web UI's handler.
type UI struct {
	opt      Options
	mux      *http.ServeMux
	pages    map[string]*template.Template
	frags    *template.Template
	sessions *sessions
	key      [32]byte // signs CSRF tokens; new at every start
	live     *live
	static   http.Handler
	// rangeSlots bound the charts' range queries in flight, UI-wide.
	rangeSlots chan struct{}
}

// New builds the UI's handler; mount it at "/" of the API's listener.
func New(opt Options) (*UI, error) {
	if opt.Controller == nil || opt.Rollbacks == nil {
		return nil, errors.New("ui: a controller and a rollback store are required")
	}
	if opt.Evidence == nil {
		opt.Evidence = DirEvidence{}
	}
	if opt.Audit == nil {
		opt.Audit = slog.New(slog.DiscardHandler)
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	u := &UI{opt: opt, sessions: newSessions(maxSessions, sessionTTL), rangeSlots: make(chan struct{}, maxRangeQueries)}
	if _, err := rand.Read(u.key[:]); err != nil {
		return nil, err
	}
	if err := u.parseTemplates(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	u.static = http.StripPrefix("/static/", http.FileServerFS(static))
	u.live = newLive(u)
	u.routes()
	return u, nil
}

func (u *UI) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", u.read(u.overview))
	m.HandleFunc("GET /events", u.read(u.events))
	m.HandleFunc("GET /systems/{name}", u.read(u.system))
	m.HandleFunc("GET /systems/{name}/charts", u.read(u.charts))
	m.HandleFunc("POST /systems/{name}/pause", u.act(u.pause(true)))
	m.HandleFunc("POST /systems/{name}/resume", u.act(u.pause(false)))
	m.HandleFunc("POST /systems/{name}/rollback", u.act(u.rollback))
	m.HandleFunc("GET /rollbacks", u.read(u.rollbacks))
	m.HandleFunc("GET /rollbacks/{id}", u.read(u.rollbackPage))
	m.HandleFunc("GET /rollbacks/{id}/live", u.read(u.rollbackLive))
	m.HandleFunc("GET /rollbacks/{id}/postmortem.md", u.read(u.postMortemFile))
	m.HandleFunc("GET /rollbacks/{id}/evidence/{file...}", u.read(u.evidenceFile))
	m.HandleFunc("GET /login", u.loginPage)
	m.HandleFunc("POST /login", u.checkOrigin(u.login))
	m.HandleFunc("POST /logout", u.act(u.logout))
	m.HandleFunc("GET /static/", u.serveStatic)
	u.mux = m
}

// ServeHTTP serves every UI path, with the security headers on every answer.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	u.mux.ServeHTTP(w, r)
}

// csp allows only the UI's own script and stylesheet: no inline script or
// style, no framing, forms only to the UI itself.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'self'"

func (u *UI) serveStatic(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	u.static.ServeHTTP(w, r)
}

// page is what every page template gets.
type page struct {
	Title   string
	Base    string // the UI's root, relative to this page ("./", "../")
	Nav     string
	User    string
	CSRF    string
	CanAct  bool // logged in: the actions are shown
	Login   bool // a login is possible (token or proxy configured)
	Flash   string
	Error   string
	Version string
	Data    any
}

// newPage fills the parts of page common to every page.
func (u *UI) newPage(r *http.Request, title, base, nav string, data any) *page {
	who := u.identify(r)
	p := &page{Title: title, Base: base, Nav: nav, Data: data, Version: u.opt.Version,
		Login: len(u.opt.Token) > 0 || u.opt.IdentityHeader != ""}
	if who.ok {
		p.User, p.CanAct, p.CSRF = who.name, true, u.csrfToken(who)
	}
	return p
}

// render executes a page into a buffer first, so that a template error is a
// clean 500 and never half a page, then writes it (gzipped when accepted).
func (u *UI) render(w http.ResponseWriter, r *http.Request, code int, name string, p *page) {
	var buf bytes.Buffer
	if err := u.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		u.opt.Log.Error("ui: rendering a page", "page", name, "err", err)
		http.Error(w, "the page could not be rendered; see the log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	writeBody(w, r, code, buf.Bytes())
}

// fragment renders one named fragment (for live updates).
func (u *UI) fragment(w http.ResponseWriter, r *http.Request, name string, data any) {
	var buf bytes.Buffer
	if err := u.frags.ExecuteTemplate(&buf, name, data); err != nil {
		u.opt.Log.Error("ui: rendering a fragment", "fragment", name, "err", err)
		http.Error(w, "the fragment could not be rendered; see the log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	writeBody(w, r, http.StatusOK, buf.Bytes())
}

// writeBody writes b, gzipped when the client accepts it and it is worth it.
func writeBody(w http.ResponseWriter, r *http.Request, code int, b []byte) {
	w.Header().Add("Vary", "Accept-Encoding")
	if len(b) < 1024 || !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		w.WriteHeader(code)
		_, _ = w.Write(b)
		return
	}
	w.Header().Set("Content-Encoding", "gzip")
	w.WriteHeader(code)
	zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	_, _ = zw.Write(b)
	_ = zw.Close()
}

// errorPage answers with a page that says what went wrong.
func (u *UI) errorPage(w http.ResponseWriter, r *http.Request, code int, base, msg string) {
	p := u.newPage(r, http.StatusText(code), base, "", nil)
	p.Error = msg
	u.render(w, r, code, "error", p)
}

// seeOther redirects with a relative Location, resolved by the browser
// against the request's own URL, so that a path prefix in front of the UI
// is kept (http.Redirect would make it absolute).
func seeOther(w http.ResponseWriter, location string) {
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusSeeOther)
}
