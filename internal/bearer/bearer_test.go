package bearer

import (
	"net/http/httptest"
	"testing"
)

func TestAllows(t *testing.T) {
	tok := New([]byte("s3cret-token"))
	for auth, want := range map[string]bool{
		"Bearer s3cret-token":  true,
		"bearer s3cret-token":  true,
		"BEARER s3cret-token":  true,
		"Bearer  s3cret-token": true,
		"Bearer s3cret-tokenx": false,
		"Bearer":               false,
		"Bearer ":              false,
		"Basic s3cret-token":   false,
		"s3cret-token":         false,
		"":                     false,
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		if got := tok.Allows(r); got != want {
			t.Errorf("%q: %v, want %v", auth, got, want)
		}
	}
	empty := New(nil)
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer ")
	if empty.Allows(r) {
		t.Error("an empty token allows nothing")
	}
}
