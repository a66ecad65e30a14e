package ui

import (
	"bytes"
	"context"
	"errors"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/notify"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/report"
)

// Bounds of the rollback pages.
const (
	listLimit     = 100
	maxNotices    = 200
	readTimeout   = 15 * time.Second
	liveAfterEnd  = 2 * time.Minute // a finished rollback's page keeps refreshing while notices go out
	livePollEvery = 2000            // milliseconds
)

// rbRow is a rollback in a list.
type rbRow struct {
	ID        string
	System    string
	State     rewind.RollbackState
	Kind      string // automatic | manual
	Reason    string
	Requester string
	Started   string
	Took      string // decision (or request) → end
	Over      bool   // took longer than the seed's target
}

// execution is the span the seed's "< 2 minutes" is about: decision (or
// request) → recovery verified (the end).
func execution(rb *rewind.Rollback) (time.Time, time.Time) {
	from := rb.Started
	if rb.Decision != nil {
		from = rb.Decision.At
	}
	return from, rb.Ended
}

func rowOf(rb *rewind.Rollback) rbRow {
	r := rbRow{ID: rb.ID, System: rb.System, State: rb.State, Kind: "automatic", Reason: rb.Reason, Requester: rb.Requester, Started: day(rb.Started)}
	if rb.Decision == nil {
		r.Kind = "manual"
	}
	if from, to := execution(rb); !to.IsZero() {
		r.Took = dur(to.Sub(from))
		r.Over = to.Sub(from) > report.ExecutionSLO
	}
	return r
}

type listData struct {
	System string
	Rows   []rbRow
	Limit  int
}

func (u *UI) rollbacks(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	system := r.URL.Query().Get("system")
	rbs, err := u.opt.Rollbacks.List(ctx, plan.ListOptions{System: system, Limit: listLimit})
	if err != nil {
		u.errorPage(w, r, http.StatusInternalServerError, "./", "The rollback journal cannot be read: "+err.Error())
		return
	}
	d := listData{System: system, Limit: listLimit}
	for _, rb := range rbs {
		d.Rows = append(d.Rows, rowOf(rb))
	}
	u.render(w, r, http.StatusOK, "rollbacks", u.newPage(r, "Rollbacks", "./", "rollbacks", d))
}

// findingView is a firing trigger of the decision, as people read it.
type findingView struct {
	Trigger   string
	Severity  string
	Canary    string
	Baseline  string
	Threshold string
	Detail    string
	ActiveAt  string
	At        string
}

// evidenceView is one trigger's part of the decision.
type evidenceView struct {
	Trigger  string
	State    rewind.TriggerState
	Canary   string
	Baseline string
	Reason   string
	For      string
	Readings []rewind.Reading
	History  []rewind.Transition
}

type stepView struct {
	Name     rewind.StepName
	State    rewind.StepState
	Started  string
	Took     string
	Attempts int
	Detail   string
	Error    string
	Facts    []fact
}

type fact struct{ Key, Value string }

type noticeView struct {
	Notifier  string
	Kind      rewind.EventKind
	Severity  rewind.Severity
	State     notify.State
	Attempts  int
	LastError string
	Created   string
	Done      string
}

type fileView struct {
	Path string
	Href string
	Size string
}

// slo is one of the seed's targets against the real figure.
type slo struct {
	What   string
	Target string
	Took   string
	Over   bool
	Known  bool
	Bar    template.HTML
}

type rollbackData struct {
	ID          string
	Starting    string // the system, while its rollback is not journaled yet
	Row         rbRow
	RB          *rewind.Rollback
	Live        bool
	LiveEvery   int
	Error       string
	Findings    []findingView
	Evidence    []evidenceView
	SLOs        []slo
	Gantt       template.HTML
	Steps       []stepView
	Verify      *stepView
	Journal     []plan.JournalEntry
	Notices     []noticeView
	NoticesNote string
	Files       []fileView
	FilesNote   string
	PostMortem  template.HTML
	PMNote      string
}

func (u *UI) rollbackPage(w http.ResponseWriter, r *http.Request) {
	d, code, msg := u.rollbackOrStarting(r)
	if code != http.StatusOK {
		u.errorPage(w, r, code, "../", msg)
		return
	}
	u.render(w, r, http.StatusOK, "rollback", u.newPage(r, "Rollback "+d.ID, "../", "rollbacks", d))
}

// rollbackLive is the page's body, refreshed while the rollback runs.
func (u *UI) rollbackLive(w http.ResponseWriter, r *http.Request) {
	d, code, msg := u.rollbackOrStarting(r)
	switch {
	case code != http.StatusOK:
		http.Error(w, msg, code)
	case d.Starting != "":
		u.fragment(w, r, "rbstarting", d)
	default:
		u.fragment(w, r, "rbbody", d)
	}
}

// rollbackOrStarting is rollbackData, or, for a rollback just requested
// (the controller has it in flight before the runner's first journal
// entry), a page that fills in when the record is there.
func (u *UI) rollbackOrStarting(r *http.Request) (*rollbackData, int, string) {
	d, code, msg := u.rollbackData(r)
	if code == http.StatusNotFound {
		id := r.PathValue("id")
		for _, st := range u.opt.Controller.Systems() {
			if st.InFlight == id {
				return &rollbackData{ID: id, Starting: st.Name, LiveEvery: 1000}, http.StatusOK, ""
			}
		}
	}
	return d, code, msg
}

func (u *UI) rollbackData(r *http.Request) (*rollbackData, int, string) {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	id := r.PathValue("id")
	rb, err := u.opt.Rollbacks.Get(ctx, id)
	if errors.Is(err, plan.ErrNotFound) {
		return nil, http.StatusNotFound, "There is no rollback " + id + "."
	}
	if err != nil {
		return nil, http.StatusInternalServerError, "The rollback journal cannot be read: " + err.Error()
	}
	journal, err := u.opt.Rollbacks.Journal(ctx, id)
	if err != nil {
		return nil, http.StatusInternalServerError, "The rollback journal cannot be read: " + err.Error()
	}
	sys, src, _ := u.opt.Controller.Lookup(rb.System)
	d := &rollbackData{ID: rb.ID, Row: rowOf(rb), RB: rb, Journal: journal, LiveEvery: livePollEvery}
	d.decision(rb, sys)
	d.steps(rb, u.opt.Now())
	u.notices(ctx, d)
	u.files(ctx, d)
	d.PostMortem, d.PMNote = u.postMortem(ctx, rb, journal, sys, src)
	d.Live = rb.State == rewind.RollbackRunning || (u.opt.Now().Sub(rb.Ended) < liveAfterEnd && d.pendingNotices())
	return d, http.StatusOK, ""
}

func (d *rollbackData) pendingNotices() bool {
	for _, n := range d.Notices {
		if n.State == notify.Pending {
			return true
		}
	}
	return false
}

// decision lists the firing triggers against their thresholds (from the
// policy in force, else from the judgement) and every trigger's evidence.
func (d *rollbackData) decision(rb *rewind.Rollback, sys *policy.System) {
	dec := rb.Decision
	if dec == nil {
		return
	}
	var thresholds map[string]string
	if sys != nil {
		thresholds = report.Thresholds(sys)
	}
	unitFor := func(name string) unit {
		if sys == nil {
			return unitPlain
		}
		return unitOf(findTrigger(sys, name))
	}
	for _, f := range rewind.FindingsOf(dec, thresholds) {
		un := unitFor(f.Trigger)
		d.Findings = append(d.Findings, findingView{Trigger: f.Trigger, Severity: f.Severity, Canary: un.value(f.Canary), Baseline: un.value(f.Baseline),
			Threshold: f.Threshold, Detail: f.Detail, ActiveAt: stamp(f.ActiveAt), At: stamp(f.At)})
	}
	for _, te := range dec.Triggers {
		un := unitFor(te.Trigger)
		o := te.Observation
		d.Evidence = append(d.Evidence, evidenceView{Trigger: te.Trigger, State: te.State, Canary: un.value(o.Canary), Baseline: un.value(o.Baseline),
			Reason: o.Reason, For: te.For, Readings: o.Readings, History: te.History})
	}
}

// steps lays out the plan's steps, the seed's targets and the timeline.
func (d *rollbackData) steps(rb *rewind.Rollback, now time.Time) {
	for _, s := range rb.Steps {
		v := stepView{Name: s.Name, State: s.State, Started: stamp(s.Started), Attempts: s.Attempts, Detail: s.Detail, Error: s.Error}
		if t := s.Duration(); t > 0 {
			v.Took = dur(t)
		} else if s.State == rewind.StepRunning && !s.Started.IsZero() {
			v.Took = dur(now.Sub(s.Started)) + " so far"
		}
		keys := make([]string, 0, len(s.Facts))
		for k := range s.Facts {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			v.Facts = append(v.Facts, fact{k, s.Facts[k]})
		}
		d.Steps = append(d.Steps, v)
		if s.Name == rewind.StepVerify {
			d.Verify = &d.Steps[len(d.Steps)-1]
		}
	}
	if d.Verify != nil {
		v := *d.Verify
		d.Verify = &v
	}
	from, to := execution(rb)
	ex := slo{What: "Decision → recovery verified", Target: "under " + dur(report.ExecutionSLO)}
	if rb.Decision == nil {
		ex.What = "Request → recovery verified"
	}
	switch {
	case !to.IsZero():
		ex.Known, ex.Took, ex.Over = true, dur(to.Sub(from)), to.Sub(from) > report.ExecutionSLO
		if rb.State != rewind.RollbackSucceeded {
			ex.Took += " (" + string(rb.State) + ")"
		}
	case rb.State == rewind.RollbackRunning:
		ex.Known, ex.Took = true, dur(now.Sub(from))+" so far"
		ex.Over = now.Sub(from) > report.ExecutionSLO
		to = now
	}
	ex.Bar = sloBar(to.Sub(from), report.ExecutionSLO, ex.Known)
	d.SLOs = append(d.SLOs, ex)
	if dec := rb.Decision; dec != nil {
		if first := report.FirstViolation(dec); !first.IsZero() {
			took := dec.At.Sub(first)
			d.SLOs = append(d.SLOs, slo{What: "First violating sample → decision", Target: "under " + dur(report.DetectionSLO),
				Took: dur(took), Over: took > report.DetectionSLO, Known: true, Bar: sloBar(took, report.DetectionSLO, true)})
		}
	}
	d.Gantt = gantt(rb, now)
}

func (u *UI) notices(ctx context.Context, d *rollbackData) {
	if u.opt.Notices == nil {
		d.NoticesNote = "The notification outbox is not available here."
		return
	}
	ns, err := u.opt.Notices.Notices(ctx, notify.Filter{RollbackID: d.RB.ID, Limit: maxNotices})
	if err != nil {
		d.NoticesNote = "The notification outbox cannot be read: " + err.Error()
		return
	}
	if len(ns) == 0 {
		d.NoticesNote = "No notices were sent about this rollback (the policy routes none to a notifier)."
	}
	for _, n := range ns {
		v := noticeView{Notifier: n.Notifier, Kind: n.Event.Kind, Severity: n.Event.Severity, State: n.State, Attempts: n.Attempts,
			LastError: n.LastError, Created: stamp(n.Created)}
		if !n.Done.IsZero() {
			v.Done = stamp(n.Done)
		}
		d.Notices = append(d.Notices, v)
	}
}

func (u *UI) files(ctx context.Context, d *rollbackData) {
	if d.RB.Evidence == "" {
		d.FilesNote = "No evidence bundle yet: the evidence step writes it."
		return
	}
	fs, err := u.opt.Evidence.List(ctx, d.RB.Evidence)
	if err != nil {
		d.FilesNote = "The evidence bundle cannot be read: " + err.Error()
	}
	for _, f := range fs {
		d.Files = append(d.Files, fileView{Path: f.Path, Href: "rollbacks/" + url.PathEscape(d.RB.ID) + "/evidence/" + escapePath(f.Path), Size: bytesize(f.Size)})
	}
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// markdown renders the post-mortem draft: tables, and its headings two
// levels down, under the page's h1 and the section's h2.
var markdown = goldmark.New(goldmark.WithExtensions(extension.Table, extension.Strikethrough),
	goldmark.WithParserOptions(parser.WithASTTransformers(util.Prioritized(demote(2), 100))))

// demote moves every heading n levels down (at most h6).
type demote int

func (n demote) Transform(doc *ast.Document, _ text.Reader, _ parser.Context) {
	_ = ast.Walk(doc, func(node ast.Node, entering bool) (ast.WalkStatus, error) {
		if h, ok := node.(*ast.Heading); ok && entering {
			h.Level = min(h.Level+int(n), 6)
		}
		return ast.WalkContinue, nil
	})
}

// postMortem renders the draft: the one in the evidence bundle (what the
// notices link to) when there is one, else drafted now from the record.
func (u *UI) postMortem(ctx context.Context, rb *rewind.Rollback, journal []plan.JournalEntry, sys *policy.System, src rewind.Source) (template.HTML, string) {
	md, note := u.postMortemText(ctx, rb, journal, sys, src)
	var buf bytes.Buffer
	if err := markdown.Convert(md, &buf); err != nil {
		return "", "The post-mortem draft cannot be rendered: " + err.Error()
	}
	return template.HTML(buf.String()), note // goldmark escapes raw HTML and drops unsafe links
}

func (u *UI) postMortemText(ctx context.Context, rb *rewind.Rollback, journal []plan.JournalEntry, sys *policy.System, src rewind.Source) ([]byte, string) {
	if rb.Evidence != "" {
		if f, err := u.opt.Evidence.Open(ctx, rb.Evidence, report.PostMortemFile); err == nil {
			defer f.Close()
			b, err := io.ReadAll(io.LimitReader(f, maxShownBytes))
			if err == nil {
				return b, "The draft in the evidence bundle (" + report.PostMortemFile + ")."
			}
		}
	}
	var im report.Impact
	note := "Drafted now from the journal"
	if sys != nil && src != nil && rb.State != rewind.RollbackRunning {
		im, _ = report.EstimateImpact(ctx, src, sys, rb)
		note += " and the metrics"
	} else {
		im.Notes = append(im.Notes, "impact not estimated while the rollback runs")
	}
	if rb.State == rewind.RollbackRunning {
		note += "; the rollback is still running, so the draft is incomplete"
	}
	return []byte(report.PostMortem(rb, journal, im)), note + "."
}

// postMortemFile downloads the draft as Markdown.
func (u *UI) postMortemFile(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	id := r.PathValue("id")
	rb, err := u.opt.Rollbacks.Get(ctx, id)
	if err != nil {
		http.Error(w, "no rollback "+id, http.StatusNotFound)
		return
	}
	journal, err := u.opt.Rollbacks.Journal(ctx, id)
	if err != nil {
		http.Error(w, "the journal cannot be read", http.StatusInternalServerError)
		return
	}
	sys, src, _ := u.opt.Controller.Lookup(rb.System)
	md, _ := u.postMortemText(ctx, rb, journal, sys, src)
	w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": "postmortem-" + rb.ID + ".md"}))
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(md)
}

// evidenceFile serves one file of a bundle as text, in a sandbox: nothing
// in it can run, whatever it holds.
func (u *UI) evidenceFile(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	id, file := r.PathValue("id"), r.PathValue("file")
	rb, err := u.opt.Rollbacks.Get(ctx, id)
	if err != nil {
		http.Error(w, "no rollback "+id, http.StatusNotFound)
		return
	}
	f, err := u.opt.Evidence.Open(ctx, rb.Evidence, file)
	if err != nil {
		http.Error(w, "no such evidence file", http.StatusNotFound)
		return
	}
	defer f.Close()
	ct := "text/plain; charset=utf-8"
	switch path.Ext(file) {
	case ".json":
		ct = "application/json"
	case ".md":
		ct = "text/markdown; charset=utf-8"
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	h.Set("Content-Disposition", mime.FormatMediaType("inline", map[string]string{"filename": path.Base(file)}))
	h.Set("Cache-Control", "no-store")
	_, _ = io.Copy(w, f)
}
