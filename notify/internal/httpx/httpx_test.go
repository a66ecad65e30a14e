package httpx

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"7": 7 * time.Second, " 120 ": 2 * time.Minute, "0": 0,
		"Thu, 01 Jan 2026 00:00:30 GMT": 30 * time.Second, "Wed, 31 Dec 2025 23:00:00 GMT": 0,
		"999999999": 24 * time.Hour,
	} {
		got, ok := RetryAfter(http.Header{"Retry-After": {v}}, now)
		if !ok || got != want {
			t.Errorf("Retry-After %q = %s, %v; want %s", v, got, ok, want)
		}
	}
	for _, v := range []string{"", "-1", "soon"} {
		if _, ok := RetryAfter(http.Header{"Retry-After": {v}}, now); ok {
			t.Errorf("Retry-After %q accepted", v)
		}
	}
}

func TestClassify(t *testing.T) {
	for status, retry := range map[int]bool{400: false, 401: false, 403: false, 404: false, 410: false, 408: true, 425: true, 429: true, 500: true, 502: true, 503: true} {
		r := &Response{Status: status, Header: http.Header{}, Body: []byte("secret-x in body")}
		got, err := Classify(r, "thing", time.Now(), "secret-x")
		if got != retry || err == nil || strings.Contains(err.Error(), "secret-x") || !strings.Contains(err.Error(), "thing answered") {
			t.Errorf("%d: retry %v, %v", status, got, err)
		}
	}
	r := &Response{Status: 503, Header: http.Header{"Retry-After": {"3"}}}
	_, err := Classify(r, "thing", time.Now())
	var ra *rewind.RetryAfterError
	if !errors.As(err, &ra) || ra.After != 3*time.Second {
		t.Errorf("503 with Retry-After: %v", err)
	}
}

func TestClipAndLabel(t *testing.T) {
	if got := Clip("αβγδε", 3); got != "αβ…" {
		t.Errorf("Clip = %q", got)
	}
	if got := Clip("abc", 3); got != "abc" {
		t.Errorf("Clip = %q", got)
	}
	if got := Label("https://user:pw@hooks.example.com/T1/B2/tok?x=1"); got != "https://hooks.example.com" {
		t.Errorf("Label = %q", got)
	}
}
