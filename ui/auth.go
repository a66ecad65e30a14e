package ui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Sessions: at most maxSessions at once (the oldest goes first), each valid
// for sessionTTL after the login.
const (
	maxSessions   = 1024
	sessionTTL    = 12 * time.Hour
	sessionCookie = "rewind_session"
	maxNameLen    = 64
)

type session struct {
	id      string
	user    string
	expires time.Time
}

// sessions are the logged-in browsers, in memory: a restart logs everyone out.
type sessions struct {
	mu   sync.Mutex
	byID map[string]*session
	max  int
	ttl  time.Duration
}

func newSessions(max int, ttl time.Duration) *sessions {
	return &sessions{byID: map[string]*session{}, max: max, ttl: ttl}
}

func (s *sessions) create(user string, now time.Time) (*session, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	ss := &session{id: base64.RawURLEncoding.EncodeToString(b[:]), user: user, expires: now.Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byID) >= s.max {
		var oldest *session
		for _, o := range s.byID {
			if o.expires.Before(now) {
				delete(s.byID, o.id)
				continue
			}
			if oldest == nil || o.expires.Before(oldest.expires) {
				oldest = o
			}
		}
		if len(s.byID) >= s.max && oldest != nil {
			delete(s.byID, oldest.id)
		}
	}
	s.byID[ss.id] = ss
	return ss, nil
}

func (s *sessions) get(id string, now time.Time) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.byID[id]
	if ss == nil {
		return nil
	}
	if now.After(ss.expires) {
		delete(s.byID, id)
		return nil
	}
	return ss
}

func (s *sessions) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
}

// identity is who makes a request.
type identity struct {
	ok      bool
	name    string // for the page and the audit log
	via     string // "session" or "proxy"
	session string // session id, or the proxy's identity: what the CSRF token is bound to
}

// identify finds the request's user: the authenticating proxy's header when
// configured, else the session cookie.
func (u *UI) identify(r *http.Request) identity {
	if h := u.opt.IdentityHeader; h != "" {
		if v := strings.TrimSpace(r.Header.Get(h)); v != "" && len(v) <= 256 {
			return identity{ok: true, name: clean(v, 256), via: "proxy", session: "proxy\x00" + v}
		}
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || len(u.opt.Token) == 0 {
		return identity{}
	}
	ss := u.sessions.get(c.Value, time.Now())
	if ss == nil {
		return identity{}
	}
	return identity{ok: true, name: ss.user, via: "session", session: "session\x00" + ss.id}
}

// requester names the user in the audit log and the rollback record.
func requester(who identity, r *http.Request) string {
	return "ui:" + who.name + "@" + r.RemoteAddr
}

// csrfToken is bound to the session (or the proxy's identity): an HMAC under
// a key made at start, so it needs no storage and dies with the session.
func (u *UI) csrfToken(who identity) string {
	m := hmac.New(sha256.New, u.key[:])
	m.Write([]byte("csrf\x00" + who.session))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// read guards the read-only pages: open when configured, else a login.
func (u *UI) read(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if u.opt.OpenReads || u.identify(r).ok {
			h(w, r)
			return
		}
		if r.URL.Path == "/events" || strings.HasSuffix(r.URL.Path, "/live") || strings.HasSuffix(r.URL.Path, "/charts") {
			http.Error(w, "log in first", http.StatusUnauthorized)
			return
		}
		seeOther(w, rootOf(r.URL.Path)+"login?next="+url.QueryEscape(strings.TrimPrefix(r.URL.Path, "/")))
	}
}

// act guards the actions: a logged-in user, a request from the UI's own
// origin, and the form's CSRF token. Refusals are audited.
func (u *UI) act(h func(http.ResponseWriter, *http.Request, identity)) http.HandlerFunc {
	return u.checkOrigin(func(w http.ResponseWriter, r *http.Request) {
		who := u.identify(r)
		if !who.ok {
			u.opt.Audit.Warn("ui: action refused: not logged in", "path", r.URL.Path, "remote", r.RemoteAddr)
			u.errorPage(w, r, http.StatusUnauthorized, rootOf(r.URL.Path), "Log in to act: pausing, resuming and rolling back need the API token (or your identity from the login proxy).")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		want := u.csrfToken(who)
		if got := r.PostFormValue("csrf"); subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			u.opt.Audit.Warn("ui: action refused: missing or wrong CSRF token", "who", who.name, "path", r.URL.Path, "remote", r.RemoteAddr)
			u.errorPage(w, r, http.StatusForbidden, rootOf(r.URL.Path), "This form has expired (or did not come from this page). Go back, reload the page and try again.")
			return
		}
		h(w, r, who)
	})
}

// checkOrigin refuses a POST whose Origin (or, without one, Referer) is not
// this host: the browser says where a form came from.
func (u *UI) checkOrigin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		from := r.Header.Get("Origin")
		if from == "" || from == "null" {
			from = r.Header.Get("Referer")
		}
		o, err := url.Parse(from)
		if from == "" || err != nil || o.Host == "" || !strings.EqualFold(o.Host, r.Host) {
			u.opt.Audit.Warn("ui: request refused: not from this site's pages", "path", r.URL.Path, "origin", r.Header.Get("Origin"),
				"referer", r.Header.Get("Referer"), "host", r.Host, "remote", r.RemoteAddr)
			http.Error(w, "refused: this request did not come from Rewind's own pages (Origin check)", http.StatusForbidden)
			return
		}
		h(w, r)
	}
}

type loginData struct {
	Next       string
	TokenLogin bool
	Proxy      string
	Failed     bool
}

func (u *UI) loginPage(w http.ResponseWriter, r *http.Request) {
	d := loginData{Next: safeNext(r.URL.Query().Get("next")), TokenLogin: len(u.opt.Token) > 0, Proxy: u.opt.IdentityHeader}
	u.render(w, r, http.StatusOK, "login", u.newPage(r, "Log in", "./", "login", d))
}

// login exchanges the API token for a session cookie (HttpOnly,
// SameSite=Strict; Secure over TLS, or behind a proxy that says the browser
// came over https). The token is compared in constant time.
func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	tok := strings.TrimSpace(r.PostFormValue("token"))
	name := clean(r.PostFormValue("name"), maxNameLen)
	next := safeNext(r.PostFormValue("next"))
	if !u.tokenOK(tok) {
		u.opt.Audit.Warn("ui: login refused: wrong token", "remote", r.RemoteAddr, "name", name)
		d := loginData{Next: next, TokenLogin: len(u.opt.Token) > 0, Proxy: u.opt.IdentityHeader, Failed: true}
		u.render(w, r, http.StatusUnauthorized, "login", u.newPage(r, "Log in", "./", "login", d))
		return
	}
	if name == "" {
		name = "token"
	} else {
		name += " (token)"
	}
	ss, err := u.sessions.create(name, time.Now())
	if err != nil {
		http.Error(w, "cannot start a session", http.StatusInternalServerError)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: ss.id, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https", Expires: ss.expires})
	u.opt.Audit.Info("ui: logged in", "who", name, "remote", r.RemoteAddr)
	seeOther(w, "./"+next)
}

func (u *UI) tokenOK(tok string) bool {
	if len(u.opt.Token) == 0 || tok == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(tok)), sha256.Sum256(u.opt.Token)
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request, who identity) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		u.sessions.remove(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	u.opt.Audit.Info("ui: logged out", "who", who.name, "remote", r.RemoteAddr)
	seeOther(w, "./")
}

// safeNext keeps a post-login destination only when it is a path inside the
// UI: relative, without a scheme, host or "..".
func safeNext(next string) string {
	if next == "" || len(next) > 512 || strings.ContainsAny(next, `\:`) || strings.HasPrefix(next, "/") || strings.Contains(next, "..") {
		return ""
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return ""
	}
	return next
}

// rootOf is the relative path from a request path to the UI's root.
func rootOf(path string) string {
	n := strings.Count(strings.TrimPrefix(path, "/"), "/")
	if n == 0 {
		return "./"
	}
	return strings.Repeat("../", n)
}

// clean trims a user-supplied name or reason to n runes of printable text.
func clean(s string, n int) string {
	s = strings.TrimSpace(s)
	var b strings.Builder
	for _, r := range s {
		if n == 0 {
			break
		}
		if unicode.IsPrint(r) {
			b.WriteRune(r)
			n--
		}
	}
	return b.String()
}
