package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStoreLockIsOnTheFile: while one process holds a store, the same
// file is refused by every other path to it: a symlink, a relative path,
// a hard link. Closing releases it.
func TestStoreLockIsOnTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state", "rewind.db")
	st, err := OpenStore(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.db")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	hard := filepath.Join(dir, "hard.db")
	if err := os.Link(path, hard); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join(dir, "state"))
	for _, p := range []string{path, link, hard, "rewind.db", "../state/rewind.db"} {
		_, err := OpenStore(t.Context(), p)
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("%s: %v, want ErrLocked", p, err)
		}
		if want := "(pid "; !strings.Contains(err.Error(), want) {
			t.Errorf("%s: the error should name the holder: %v", p, err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := OpenStore(t.Context(), link)
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	again.Close()
}

// TestStateDir: the default store location never depends on the working
// directory.
func TestStateDir(t *testing.T) {
	t.Setenv("REWIND_STATE_DIR", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("XDG_STATE_HOME", "/xdg/state")
	if got := DefaultStorePath(); got != "/xdg/state/rewind/rewind.db" {
		t.Errorf("XDG: %s", got)
	}
	t.Setenv("XDG_STATE_HOME", "relative/is/ignored")
	t.Setenv("HOME", "/home/sre")
	if got := DefaultStorePath(); got != "/home/sre/.local/state/rewind/rewind.db" {
		t.Errorf("home: %s", got)
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
	if got := DefaultStorePath(); got != "/var/lib/rewind/rewind.db" {
		t.Errorf("in a pod: %s", got)
	}
	t.Setenv("REWIND_STATE_DIR", "/srv/rewind")
	if got, ev := DefaultStorePath(), DefaultEvidenceDir(); got != "/srv/rewind/rewind.db" || ev != "/srv/rewind/evidence" {
		t.Errorf("REWIND_STATE_DIR: %s %s", got, ev)
	}
}
