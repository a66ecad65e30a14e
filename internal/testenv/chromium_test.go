package testenv

import (
	"net/http"
	"strings"
	"testing"
)

// TestStartChromium: the DevTools endpoint answers, and Stop ends the browser.
func TestStartChromium(t *testing.T) {
	c := StartChromium(t, 800, 600)
	if !strings.HasPrefix(c.WebSocketURL, "ws://127.0.0.1:") {
		t.Fatalf("DevTools URL %q", c.WebSocketURL)
	}
	host := strings.TrimPrefix(c.WebSocketURL, "ws://")
	host = host[:strings.Index(host, "/")]
	resp, err := http.Get("http://" + host + "/json/version")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/json/version: %s", resp.Status)
	}
	c.Stop()
	if _, err := http.Get("http://" + host + "/json/version"); err == nil {
		t.Error("chromium still answers after Stop")
	}
}
