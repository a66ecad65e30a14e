package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// MinIOVersion names the cache dir of .ci/build-minio: it must be the
// version tools/minio/go.mod pins.
func TestMinIOPin(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(kubeRepoRoot(t), "tools", "minio", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "github.com/minio/minio" {
			if f[1] != MinIOVersion {
				t.Fatalf("tools/minio/go.mod pins minio %s, MinIOVersion is %s", f[1], MinIOVersion)
			}
			return
		}
	}
	t.Fatal("tools/minio/go.mod pins no github.com/minio/minio")
}
