package s3_test

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rewind-sre/rewind/evidence/s3"
	"github.com/rewind-sre/rewind/internal/testenv"
)

// bundle writes files (path -> content) under dir/id and returns that dir.
func bundle(t *testing.T, dir, id string, files map[string]string) string {
	t.Helper()
	for p, content := range files {
		f := filepath.Join(dir, id, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, id)
}

func read(t *testing.T, st *s3.Store, id, name string) string {
	t.Helper()
	r, err := st.Open(t.Context(), id, name)
	if err != nil {
		t.Fatalf("Open %s: %v", name, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPutOnceListOpen: a bundle is written to a real MinIO, listed and read
// back; Put again leaves stored files as they were and adds new ones.
func TestPutOnceListOpen(t *testing.T) {
	m := testenv.StartMinIO(t)
	m.CreateBucket("evidence")
	ak, sk := m.WriteCredentials()
	st, err := s3.New(s3.Config{Endpoint: m.Endpoint, Bucket: "evidence", Prefix: "rewind", Insecure: true, AccessKeyFile: ak, SecretKeyFile: sk})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	const id = "rb-20260101T003130Z-3f2a91c0"
	dir := bundle(t, t.TempDir(), id, map[string]string{
		"decision.json": `{"system":"checkout"}`, "INDEX.md": "# Evidence\n", "pods/web-1.log": "line 1\n",
	})
	loc, err := st.Put(t.Context(), id, dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := "s3://evidence/rewind/" + id + "/"; loc != want {
		t.Errorf("location %q, want %q", loc, want)
	}
	files, err := st.Files(t.Context(), id)
	slices.Sort(files)
	if err != nil || !slices.Equal(files, []string{"INDEX.md", "decision.json", "pods/web-1.log"}) {
		t.Fatalf("Files: %v, %v", files, err)
	}
	if got := read(t, st, id, "pods/web-1.log"); got != "line 1\n" {
		t.Errorf("pods/web-1.log = %q", got)
	}

	// A resumed evidence step rewrites the local bundle and puts it again:
	// what is stored stays; what is new is added.
	bundle(t, filepath.Dir(dir), id, map[string]string{"decision.json": `{"changed":true}`, "POSTMORTEM.md": "# Post-mortem\n"})
	if _, err := st.Put(t.Context(), id, dir); err != nil {
		t.Fatal(err)
	}
	if got := read(t, st, id, "decision.json"); got != `{"system":"checkout"}` {
		t.Errorf("decision.json was overwritten: %q", got)
	}
	if got := read(t, st, id, "POSTMORTEM.md"); got != "# Post-mortem\n" {
		t.Errorf("POSTMORTEM.md = %q", got)
	}
	if _, err := st.Open(t.Context(), id, "nope.json"); err == nil {
		t.Error("Open of a missing file: no error")
	}
}

func TestBadCredentialsAndConfig(t *testing.T) {
	m := testenv.StartMinIO(t)
	m.CreateBucket("evidence")
	t.Setenv("AWS_ACCESS_KEY_ID", "rewind-test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
	st, err := s3.New(s3.Config{Endpoint: m.Endpoint, Bucket: "evidence", Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	err = st.Check(t.Context())
	if err == nil {
		t.Fatal("Check with a wrong secret key: no error")
	}
	if strings.Contains(err.Error(), "not-the-secret") {
		t.Errorf("the error shows the secret: %v", err)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", m.SecretKey)
	st, _ = s3.New(s3.Config{Endpoint: m.Endpoint, Bucket: "missing", Insecure: true})
	if err := st.Check(t.Context()); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Check of a missing bucket: %v", err)
	}
	for _, c := range []s3.Config{
		{Bucket: "b"},
		{Endpoint: "http://minio:9000", Bucket: "b"},
		{Endpoint: "minio:9000"},
		{Endpoint: "minio:9000", Bucket: "b", AccessKeyFile: "/x"},
	} {
		if _, err := s3.New(c); err == nil {
			t.Errorf("New(%+v): no error", c)
		}
	}
}

func TestParseURL(t *testing.T) {
	for in, want := range map[string][2]string{
		"s3://evidence":              {"evidence", ""},
		"s3://evidence/rewind/prod/": {"evidence", "rewind/prod/"},
		"s3://evidence/rewind":       {"evidence", "rewind"},
	} {
		b, p, err := s3.ParseURL(in)
		if err != nil || b != want[0] || p != want[1] {
			t.Errorf("ParseURL(%q) = %q, %q, %v", in, b, p, err)
		}
	}
	for _, in := range []string{"", "evidence", "s3://", "s3:///x", "https://evidence"} {
		if _, _, err := s3.ParseURL(in); err == nil {
			t.Errorf("ParseURL(%q): no error", in)
		}
	}
}
