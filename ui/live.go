package ui

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/rewind-sre/rewind/controller"
)

// Live updates: the pages subscribe to /events (server-sent events) and
// replace the fragments that changed, by element id. One snapshot of every
// system is rendered at most once per refreshEvery, whoever asks; each
// stream sends the fragments newer than what its page has.
const (
	refreshEvery  = time.Second
	maxStreams    = 64               // concurrent event streams; more are 503 (the browser retries)
	streamLife    = 30 * time.Minute // then the browser reconnects
	writeDeadline = 10 * time.Second
)

// frag is one rendered fragment and the snapshot version it last changed in.
type frag struct {
	html template.HTML
	ver  uint64
}

// snapshot is one rendering of the overview's fragments.
type snapshot struct {
	at        time.Time
	ver       uint64
	structure uint64 // changes when systems come or go: the page must reload
	rows      []string
	frags     map[string]frag
	statuses  []controller.SystemStatus
}

func (s *snapshot) frag(id string) template.HTML { return s.frags[id].html }

type live struct {
	u     *UI
	mu    sync.Mutex
	snap  *snapshot
	views map[string]*sysView // of the current snapshot, by fragment id
	th    thresholdsCache
	stale bool // an action changed something: the next refresh renders anew
	slots chan struct{}
}

// invalidate makes the next refresh render a new snapshot.
func (l *live) invalidate() {
	l.mu.Lock()
	l.stale = true
	l.mu.Unlock()
}

func newLive(u *UI) *live {
	return &live{u: u, slots: make(chan struct{}, maxStreams), snap: &snapshot{frags: map[string]frag{}}}
}

// refresh returns the current snapshot, rendering a new one when the last is
// older than refreshEvery. Snapshots are never changed after they are made.
func (l *live) refresh() *snapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if !l.stale && !l.snap.at.IsZero() && now.Sub(l.snap.at) < refreshEvery {
		return l.snap
	}
	l.stale = false
	old := l.snap
	next := &snapshot{at: now, ver: old.ver + 1, structure: old.structure, frags: make(map[string]frag, len(old.frags))}
	statuses := l.u.opt.Controller.Systems()
	next.statuses = statuses
	views := make([]sysView, len(statuses))
	var sum summary
	for i, st := range statuses {
		sys, _, _ := l.u.opt.Controller.Lookup(st.Name)
		views[i] = viewSystem(st, sys, l.th.of(sys))
		sum.add(views[i])
	}
	var buf bytes.Buffer
	put := func(id, name string, data any) {
		buf.Reset()
		if err := l.u.frags.ExecuteTemplate(&buf, name, data); err != nil {
			l.u.opt.Log.Error("ui: rendering a fragment", "fragment", name, "err", err)
		}
		f := frag{html: template.HTML(buf.String()), ver: next.ver}
		if o, ok := old.frags[id]; ok && o.html == f.html {
			f.ver = o.ver
		}
		next.frags[id] = f
	}
	put("summary", "summary", sum)
	put("attention", "attention", attentionOf(views))
	next.rows = make([]string, len(views))
	seen := make(map[string]*sysView, len(views))
	for i := range views {
		v := &views[i]
		id := "s-" + v.Name
		next.rows[i], seen[id] = id, v
		if o := l.views[id]; o != nil && o.equal(v) {
			next.frags[id] = old.frags[id] // unchanged: not rendered again
			continue
		}
		next.frags[id] = frag{html: rowsHTML(v), ver: next.ver}
	}
	l.views = seen
	if !slices.Equal(next.rows, old.rows) {
		next.structure++
	}
	l.snap = next
	return next
}

// update is one message of the event stream.
type update struct {
	Version   uint64            `json:"v"`
	Structure uint64            `json:"sv,omitempty"`
	Frags     map[string]string `json:"f,omitempty"`
}

// events streams fragment updates: the overview's (rows newer than the
// page's version), or with ?system=NAME that system page's.
func (u *UI) events(w http.ResponseWriter, r *http.Request) {
	select {
	case u.live.slots <- struct{}{}:
		defer func() { <-u.live.slots }()
	default:
		w.Header().Set("Retry-After", "10")
		http.Error(w, "too many live pages open; retry later", http.StatusServiceUnavailable)
		return
	}
	q := r.URL.Query()
	since, _ := strconv.ParseUint(q.Get("since"), 10, 64)
	if id, err := strconv.ParseUint(r.Header.Get("Last-Event-ID"), 10, 64); err == nil {
		since = id
	}
	structure, _ := strconv.ParseUint(q.Get("sv"), 10, 64)
	system := q.Get("system")
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	sent := map[string]template.HTML{} // a system page's fragments as last sent
	tick := time.NewTicker(refreshEvery)
	defer tick.Stop()
	end := time.After(streamLife)
	enc := func(msg update) bool {
		b, _ := json.Marshal(msg)
		_ = rc.SetWriteDeadline(time.Now().Add(writeDeadline))
		if _, err := w.Write([]byte("id: " + strconv.FormatUint(msg.Version, 10) + "\ndata: ")); err != nil {
			return false
		}
		if _, err := w.Write(append(b, '\n', '\n')); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if _, err := w.Write([]byte("retry: 3000\n\n")); err != nil || rc.Flush() != nil {
		return
	}
	for {
		snap := u.live.refresh()
		msg := update{Version: snap.ver}
		if system != "" {
			msg.Frags = u.systemFrags(snap, system, sent)
		} else {
			if structure != 0 && snap.structure != structure {
				msg.Structure = snap.structure
			}
			msg.Frags = changedSince(snap, since)
		}
		since = snap.ver
		if (len(msg.Frags) > 0 || msg.Structure != 0) && !enc(msg) {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-end:
			return
		case <-tick.C:
		}
	}
}

func changedSince(s *snapshot, since uint64) map[string]string {
	out := map[string]string{}
	for id, f := range s.frags {
		if f.ver > since {
			out[id] = string(f.html)
		}
	}
	return out
}

// systemFrags renders a system page's live fragments and returns those that
// differ from what was sent; sent is updated.
func (u *UI) systemFrags(s *snapshot, name string, sent map[string]template.HTML) map[string]string {
	out := map[string]string{}
	for _, st := range s.statuses {
		if st.Name != name {
			continue
		}
		sys, _, _ := u.opt.Controller.Lookup(name)
		v := viewSystem(st, sys, u.live.th.of(sys))
		var buf bytes.Buffer
		add := func(id, tmpl string, data any) {
			buf.Reset()
			if err := u.frags.ExecuteTemplate(&buf, tmpl, data); err != nil {
				u.opt.Log.Error("ui: rendering a fragment", "fragment", tmpl, "err", err)
				return
			}
			h := template.HTML(buf.String())
			if sent[id] != h {
				sent[id], out[id] = h, string(h)
			}
		}
		add("syshead", "syshead", v)
		for _, t := range v.Triggers {
			add("t-"+t.Name, "tstatus", t)
		}
	}
	return out
}
