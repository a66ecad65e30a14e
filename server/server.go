// Package server is Rewind's HTTP surface: the JSON API under /api/v1,
// /healthz, /readyz and /metrics. Every mutating call needs the bearer
// token (compared in constant time) and lands in the audit log with who
// and why; read-only calls can be opened by configuration.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/controller"
	"github.com/rewind-sre/rewind/gitops"
	"github.com/rewind-sre/rewind/internal/bearer"
	"github.com/rewind-sre/rewind/plan"
)

// Options configure the handler.
type Options struct {
	Controller *controller.Controller
	Store      plan.Store
	Gatherer   prometheus.Gatherer
	Token      []byte // required for mutating calls; empty: mutating calls are refused
	OpenReads  bool   // read-only API calls without a token
	// Ready names what is down, each with why; empty: ready. Nil: always ready.
	Ready  func(ctx context.Context) map[string]string
	Audit  *slog.Logger
	Alerts http.Handler // POST /api/v1/alertmanager; nil: 404
	// Mount adds handlers by ServeMux pattern beside the API (a UI at "/");
	// the API's own, more specific routes win.
	Mount map[string]http.Handler
	// ResumeGitOps resumes the GitOps owners a rollback of the system
	// suspended (POST /api/v1/systems/{name}/resume-gitops) at requester's
	// request; nil: 404. An unknown system is controller.ErrUnknownSystem.
	ResumeGitOps func(ctx context.Context, system, requester string) (any, error)
	// GitOps is a system's GitOps owners as last looked at, shown in GET
	// /api/v1/systems as "gitops"; nil, or a nil result: not shown.
	GitOps func(system string) *gitops.Status
}

type server struct {
	opt   Options
	token bearer.Token
}

// Handler returns the HTTP handler.
func Handler(opt Options) http.Handler {
	if opt.Audit == nil {
		opt.Audit = slog.New(slog.DiscardHandler)
	}
	s := &server{opt: opt, token: bearer.New(opt.Token)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", s.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(opt.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /api/v1/systems", s.read(s.systems))
	mux.HandleFunc("GET /api/v1/rollbacks", s.read(s.rollbacks))
	mux.HandleFunc("GET /api/v1/rollbacks/{id}", s.read(s.rollback))
	mux.HandleFunc("POST /api/v1/rollbacks", s.write(s.requestRollback))
	mux.HandleFunc("POST /api/v1/systems/{name}/pause", s.write(s.pause(true)))
	mux.HandleFunc("POST /api/v1/systems/{name}/resume", s.write(s.pause(false)))
	if opt.ResumeGitOps != nil {
		mux.HandleFunc("POST /api/v1/systems/{name}/resume-gitops", s.write(s.resumeGitOps))
	}
	if opt.Alerts != nil {
		mux.Handle("POST /api/v1/alertmanager", opt.Alerts)
	}
	for pattern, h := range opt.Mount {
		mux.Handle(pattern, h)
	}
	return mux
}

// authorized checks the bearer token (internal/bearer: the same rule as
// the Alertmanager receiver's).
func (s *server) authorized(r *http.Request) bool { return s.token.Allows(r) }

func (s *server) read(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.opt.OpenReads && !s.authorized(r) {
			unauthorized(w)
			return
		}
		h(w, r)
	}
}

func (s *server) write(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			s.opt.Audit.Warn("refused: no valid token", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			unauthorized(w)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		h(w, r)
	}
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="rewind"`)
	writeError(w, http.StatusUnauthorized, "a valid bearer token is required")
}

func (s *server) ready(w http.ResponseWriter, r *http.Request) {
	var down map[string]string
	if s.opt.Ready != nil {
		down = s.opt.Ready(r.Context())
	}
	if len(down) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "down": down})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ready": true})
}

// systemJSON is one system in GET /api/v1/systems: the controller's
// status and its GitOps owners.
type systemJSON struct {
	controller.SystemStatus
	GitOps *gitops.Status `json:"gitops,omitempty"`
}

func (s *server) systems(w http.ResponseWriter, _ *http.Request) {
	list := s.opt.Controller.Systems()
	out := make([]systemJSON, len(list))
	for i, st := range list {
		out[i].SystemStatus = st
		if s.opt.GitOps != nil {
			out[i].GitOps = s.opt.GitOps(st.Name)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"systems": out})
}

func (s *server) rollbacks(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	rbs, err := s.opt.Store.List(r.Context(), plan.ListOptions{System: r.URL.Query().Get("system"), Limit: limit})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if rbs == nil {
		rbs = []*rewind.Rollback{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"rollbacks": rbs})
}

func (s *server) rollback(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rb, err := s.opt.Store.Get(r.Context(), id)
	if errors.Is(err, plan.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no rollback "+id)
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	journal, err := s.opt.Store.Journal(r.Context(), id)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"rollback": rb, "journal": journal})
}

// RollbackRequest is the body of POST /api/v1/rollbacks.
type RollbackRequest struct {
	System string `json:"system"`
	Reason string `json:"reason"`
	By     string `json:"by,omitempty"` // who asks; recorded with the token's use
}

func (s *server) requestRollback(w http.ResponseWriter, r *http.Request) {
	var req RollbackRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "malformed body: "+err.Error())
		return
	}
	if strings.TrimSpace(req.System) == "" || strings.TrimSpace(req.Reason) == "" {
		writeError(w, http.StatusBadRequest, `"system" and "reason" are required (reason: customer-escalation, security-vulnerability, business-decision, unexpected-behavior, team-consensus, or free text)`)
		return
	}
	who := requester(r, req.By)
	id, err := s.opt.Controller.RequestRollback(context.WithoutCancel(r.Context()), req.System, req.Reason, who)
	s.opt.Audit.Warn("manual rollback requested", "who", who, "system", req.System, "reason", req.Reason, "rollback", id, "err", errString(err))
	switch {
	case errors.Is(err, controller.ErrUnknownSystem):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, controller.ErrNotActing):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, controller.ErrBusy):
		writeJSON(w, http.StatusConflict, map[string]any{"error": err.Error(), "id": id})
	case errors.Is(err, controller.ErrNoExecutor):
		writeError(w, http.StatusConflict, err.Error())
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		writeJSON(w, http.StatusAccepted, map[string]any{"id": id, "system": req.System})
	}
}

func (s *server) pause(paused bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		var body struct {
			Reason string `json:"reason"`
			By     string `json:"by"`
		}
		if r.ContentLength != 0 {
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				writeError(w, http.StatusBadRequest, "malformed body: "+err.Error())
				return
			}
		}
		err := s.opt.Controller.SetPaused(name, paused)
		action := map[bool]string{true: "pause", false: "resume"}[paused]
		s.opt.Audit.Warn("automatic rollback "+action, "who", requester(r, body.By), "system", name, "reason", body.Reason, "err", errString(err))
		if errors.Is(err, controller.ErrUnknownSystem) {
			writeError(w, http.StatusNotFound, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"system": name, "paused": paused})
	}
}

// resumeGitOps resumes the reconciler a rollback suspended, after the
// revert is merged (docs/gitops.md).
func (s *server) resumeGitOps(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var body struct {
		By string `json:"by"`
	}
	if r.ContentLength != 0 {
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			writeError(w, http.StatusBadRequest, "malformed body: "+err.Error())
			return
		}
	}
	who := requester(r, body.By)
	resumed, err := s.opt.ResumeGitOps(r.Context(), name, who)
	s.opt.Audit.Warn("gitops resume", "who", who, "system", name, "err", errString(err))
	switch {
	case errors.Is(err, controller.ErrUnknownSystem):
		writeError(w, http.StatusNotFound, err.Error())
	case err != nil:
		writeJSON(w, http.StatusBadGateway, map[string]any{"error": err.Error(), "resumed": resumed})
	default:
		writeJSON(w, http.StatusOK, map[string]any{"system": name, "resumed": resumed})
	}
}

// requester names who asked: the claimed name, and where from.
func requester(r *http.Request, by string) string {
	if by == "" {
		by = "token"
	}
	return "api:" + by + "@" + r.RemoteAddr
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
