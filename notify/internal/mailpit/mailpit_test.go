package mailpit

import (
	"os"
	"strings"
	"testing"
)

// Version names the module pinned in tools/mailpit, whose cache path the
// tests look for.
func TestVersionMatchesTools(t *testing.T) {
	b, err := os.ReadFile("../../../tools/mailpit/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "github.com/axllent/mailpit" {
			if f[1] != Version {
				t.Fatalf("tools/mailpit pins %s, Version is %s", f[1], Version)
			}
			return
		}
	}
	t.Fatal("tools/mailpit/go.mod does not require github.com/axllent/mailpit")
}

// The server starts, takes mail and lists it.
func TestStart(t *testing.T) {
	s := Start(t, Options{TLS: true, Auth: true})
	if s.TLS == nil || s.Password == "" {
		t.Fatalf("%+v", s)
	}
	ms, err := s.Messages(t.Context())
	if err != nil || len(ms) != 0 {
		t.Fatalf("%v, %v", ms, err)
	}
}
