// Package alertmanager is Rewind's Alertmanager webhook receiver
// (POST /api/v1/alertmanager, payload version 4). An alert whose
// rewind_system label names a system, and which either carries
// rewind_action="rollback" or names (by rewind_trigger, else alertname) a
// rollback trigger of that system, rolls the system back at once through the
// controller, with a Decision that carries the alert as evidence: the
// seed's security and data-integrity events.
//
// Answers: 401 without the API bearer token, 413 for a body over 1 MiB, 400
// with the reason for a malformed payload, 503 on a replica that does not
// act, 500 when an alert could not be handled (the journal could not be
// read) so that Alertmanager retries; else 200 with what became of each
// alert. Alerts Rewind does not act on (unknown system, no rollback trigger,
// paused, notify-only) and resolved alerts are answered 200 too, logged and
// counted: refusing them would only make Alertmanager retry. The same alert
// (fingerprint and startsAt) delivered again starts no second rollback.
package alertmanager

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/controller"
	"github.com/rewind-sre/rewind/internal/bearer"
)

// MaxBodySize bounds a webhook request's body.
const MaxBodySize = 1 << 20

// Labels that map an alert to a system, a trigger and an action.
const (
	LabelSystem  = "rewind_system"
	LabelTrigger = "rewind_trigger" // default: the alertname
	LabelAction  = "rewind_action"  // "rollback"; default: the named trigger's action
)

// How long, and how many, handled alerts are remembered in memory.
const (
	seenTTL = 24 * time.Hour
	seenMax = 10000
)

// Controller is what the receiver needs of the daemon's controller
// (*controller.Controller).
type Controller interface {
	TriggerAction(system, trigger string) (rewind.Action, error)
	RollbackOnAlert(ctx context.Context, a controller.Alert) (string, error)
}

// Options configure a Receiver.
type Options struct {
	Controller Controller            // required
	Token      []byte                // the API's bearer token; empty: every request is refused
	Registerer prometheus.Registerer // for rewind_alerts_received_total; nil: not registered
	Log        *slog.Logger          // every alert and refused request
	Audit      *slog.Logger          // rollbacks started, with who and why
	Now        func() time.Time
}

// Receiver is the webhook's http.Handler.
type Receiver struct {
	opt      Options
	token    bearer.Token
	received *prometheus.CounterVec
	seen     *seen
}

// New returns the receiver; it registers its metric on opt.Registerer.
func New(opt Options) *Receiver {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Audit == nil {
		opt.Audit = opt.Log
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	rc := &Receiver{
		opt:   opt,
		token: bearer.New(opt.Token),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rewind_alerts_received_total",
			Help: "Alerts received from Alertmanager, by alert status (firing, resolved) and result (rollback, duplicate, busy, ignored, noted, not-leader, failed).",
		}, []string{"status", "result"}),
		seen: newSeen(seenTTL, seenMax),
	}
	if opt.Registerer != nil {
		opt.Registerer.MustRegister(rc.received)
	}
	return rc
}

// Response is the body of a 200 (and of a 5xx after decoding).
type Response struct {
	Alerts []Outcome `json:"alerts"`
}

// ServeHTTP handles one webhook delivery.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "POST only")
		return
	}
	if !rc.authorized(r) {
		rc.opt.Audit.Warn("alertmanager webhook refused: no valid token", "remote", r.RemoteAddr)
		w.Header().Set("WWW-Authenticate", `Bearer realm="rewind"`)
		writeError(w, http.StatusUnauthorized, "a valid bearer token is required (webhook_config http_config.authorization)")
		return
	}
	if r.ContentLength > MaxBodySize {
		rc.tooLarge(w, r)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodySize))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		rc.tooLarge(w, r)
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	m, err := Decode(body)
	if err != nil {
		rc.opt.Log.Warn("alertmanager webhook refused: malformed payload", "remote", r.RemoteAddr, "err", err.Error())
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// A rollback outlives the request that started it.
	ctx := context.WithoutCancel(r.Context())
	via := "Alertmanager receiver " + m.Receiver + " at " + r.RemoteAddr
	resp := Response{Alerts: make([]Outcome, 0, len(m.Alerts))}
	code := http.StatusOK
	for _, a := range m.Alerts {
		o := rc.handle(ctx, a, via)
		rc.received.WithLabelValues(a.Status, string(o.Result)).Inc()
		rc.log(o)
		resp.Alerts = append(resp.Alerts, o)
		code = max(code, o.Result.code())
	}
	writeJSON(w, code, resp)
}

func (rc *Receiver) tooLarge(w http.ResponseWriter, r *http.Request) {
	rc.opt.Log.Warn("alertmanager webhook refused: body too large", "remote", r.RemoteAddr, "limit", MaxBodySize)
	writeError(w, http.StatusRequestEntityTooLarge, "the body exceeds 1 MiB")
}

// authorized checks the API's bearer token, as every API call does.
func (rc *Receiver) authorized(r *http.Request) bool { return rc.token.Allows(r) }

func (rc *Receiver) log(o Outcome) {
	attrs := []any{"alertname", o.Alert, "fingerprint", o.Fingerprint, "status", o.Status, "result", o.Result}
	for _, kv := range [][2]string{{"system", o.System}, {"trigger", o.Trigger}, {"rollback", o.Rollback}, {"reason", o.Reason}} {
		if kv[1] != "" {
			attrs = append(attrs, kv[0], kv[1])
		}
	}
	switch o.Result {
	case ResultRollback:
		rc.opt.Audit.Warn("rolling back on an Alertmanager alert", attrs...)
	case ResultFailed:
		rc.opt.Log.Error("alert could not be handled; Alertmanager will retry", attrs...)
	case ResultNotLeader:
		rc.opt.Log.Warn("alert left to the leader; Alertmanager will retry", attrs...)
	case ResultIgnored:
		rc.opt.Log.Warn("alert ignored", attrs...)
	default:
		rc.opt.Log.Info("alert received", attrs...)
	}
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
