package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rewind-sre/rewind/internal/testenv"
	"github.com/rewind-sre/rewind/policy"
)

// stream reads server-sent events of the UI.
type stream struct {
	t    *testing.T
	r    *bufio.Reader
	stop func()
}

func (e *env) stream(query string) *stream {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/events"+query, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		e.t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &stream{t: e.t, r: bufio.NewReader(resp.Body), stop: func() { cancel(); resp.Body.Close() }}
	e.t.Cleanup(s.stop)
	return s
}

// next returns the next update message.
func (s *stream) next() update {
	s.t.Helper()
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			s.t.Fatalf("reading the event stream: %v", err)
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var u update
			if err := json.Unmarshal([]byte(data), &u); err != nil {
				s.t.Fatalf("an event that is not an update: %q", data)
			}
			return u
		}
	}
}

// until reads updates until one satisfies cond.
func (s *stream) until(what string, cond func(update) bool) update {
	s.t.Helper()
	for range 30 {
		if u := s.next(); cond(u) {
			return u
		}
	}
	s.t.Fatalf("no update with %s", what)
	return update{}
}

// TestLiveUpdates: the overview's stream sends every fragment first, then
// only those that changed (a paused system's rows); a system page's stream
// sends that page's fragments; a new system in the policy asks the page to
// reload.
func TestLiveUpdates(t *testing.T) {
	e := newEnv(t, envOptions{openReads: true})
	s := e.stream("?sv=1")
	first := s.next()
	for _, id := range []string{"summary", "attention", "s-checkout", "s-quiet"} {
		if _, ok := first.Frags[id]; !ok {
			t.Errorf("the first update lacks fragment %s", id)
		}
	}
	if err := e.ctl.SetPaused("quiet", true); err != nil {
		t.Fatal(err)
	}
	u := s.until("quiet paused", func(u update) bool { return strings.Contains(u.Frags["s-quiet"], "paused") })
	if _, ok := u.Frags["s-checkout"]; ok {
		t.Error("an unchanged system's rows were sent again")
	}

	sys := e.stream("?system=checkout")
	page := sys.next()
	if !strings.Contains(page.Frags["syshead"], "automatic") || !strings.Contains(page.Frags["t-error-rate-high"], `st-ok`) {
		t.Errorf("the system page's first update: %v", page.Frags)
	}
	e.step(t0.Add(33 * time.Minute))
	sys.until("error-rate-high pending or firing", func(u update) bool {
		f := u.Frags["t-error-rate-high"]
		return strings.Contains(f, "st-pending") || strings.Contains(f, "st-firing")
	})

	text := strings.Replace(testPolicy, "  - name: quiet\n", "  - name: extra\n    interval: 30s\n    canary:   { selector: 'version=\"x\"' }\n    baseline: { selector: 'version=\"y\"' }\n    triggers:\n      - name: dag\n        expr: sum(bullshark_dag_validation_errors{ {{selector}} }) > 0\n    rollback: { mode: notify-only }\n  - name: quiet\n", 1)
	text = strings.NewReplacer("{{sink}}", "http://127.0.0.1:1/x", "{{probe}}", "http://127.0.0.1:1/y").Replace(text)
	pol, err := policy.Parse("policy.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ctl.Reload(pol); err != nil {
		t.Fatal(err)
	}
	s.until("a reload request", func(u update) bool { return u.Structure != 0 })
}

// TestStreamsAreBounded: beyond maxStreams the stream is refused with a
// Retry-After, and a freed slot is usable again.
func TestStreamsAreBounded(t *testing.T) {
	e := newEnv(t, envOptions{openReads: true})
	var streams []*stream
	for range maxStreams {
		streams = append(streams, e.stream(""))
	}
	resp, err := http.Get(e.srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("stream %d: %d, want 503 with Retry-After", maxStreams+1, resp.StatusCode)
	}
	streams[0].stop()
	testenv.Eventually(t, 10*time.Second, "a freed stream slot to be given out again", func() (bool, string) {
		resp, err := http.Get(e.srv.URL + "/events")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
}
