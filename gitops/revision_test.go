package gitops

import "testing"

// TestCommitOf reads the revisions as Flux and Argo CD write them, and
// refuses what is not a commit (a reconciler that has not fetched yet).
func TestCommitOf(t *testing.T) {
	const h = "0123456789abcdef0123456789abcdef01234567"
	for _, c := range []struct {
		rev, want string
		ok        bool
	}{
		{"main@sha1:" + h, h, true}, // Flux v1
		{"main/" + h, h, true},      // Flux v1beta2
		{"feature/x@sha1:" + h, h, true},
		{h, h, true}, // Argo CD
		{"", "", false},
		{"main", "", false},
		{"main@sha1:" + h[:39], "", false},
		{"main@sha256:" + h + h[:24], "", false},
		{"v1.2.3", "", false},
	} {
		got, err := commitOf(c.rev, "test")
		if got != c.want || (err == nil) != c.ok {
			t.Errorf("commitOf(%q) = %q, %v; want %q, ok %v", c.rev, got, err, c.want, c.ok)
		}
	}
}
