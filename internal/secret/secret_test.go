package secret

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rewind-sre/rewind/policy"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "s")
	if err := os.WriteFile(f, []byte("  s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if v, err := Read(policy.Secret{File: f}); v != "s3cr3t" || err != nil {
		t.Errorf("file: %q, %v", v, err)
	}
	t.Setenv("REWIND_TEST_SECRET", "from-env")
	if v, err := Read(policy.Secret{Env: "REWIND_TEST_SECRET"}); v != "from-env" || err != nil {
		t.Errorf("env: %q, %v", v, err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	for name, s := range map[string]policy.Secret{"none": {}, "missing": {File: filepath.Join(dir, "nope")}, "empty": {File: empty}, "unset": {Env: "REWIND_TEST_UNSET"}} {
		if _, err := Read(s); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	_, err := Read(policy.Secret{File: filepath.Join(dir, "nope")})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestRedact(t *testing.T) {
	err := Error(errors.New("POST https://hooks.slack.com/services/T/B/tok: refused"), "https://hooks.slack.com/services/T/B/tok", "")
	if strings.Contains(err.Error(), "tok") || !strings.Contains(err.Error(), Mask) {
		t.Errorf("%v", err)
	}
	if Error(nil, "x") != nil {
		t.Error("Error(nil) is not nil")
	}
}
