// Package docs holds Rewind's user documentation (Markdown); its test
// checks that the documentation stands on its own.
package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// planned are pages the index links to that other work adds; a link to one
// of them may not resolve yet.
var planned = map[string]bool{"judge.md": true}

var mdLink = regexp.MustCompile(`\]\(([^)#\s]+)(#[^)\s]*)?\)`)

// TestLinksResolve: every relative link of README.md and docs/*.md names a
// file or directory of the repository.
func TestLinksResolve(t *testing.T) {
	pages, _ := filepath.Glob("*.md")
	pages = append(pages, "../README.md")
	for _, page := range pages {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mdLink.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path := filepath.Join(filepath.Dir(page), target)
			if _, err := os.Stat(path); err != nil && !(planned[filepath.Base(path)] && filepath.Dir(path) == ".") {
				t.Errorf("%s links to %s, which does not exist", page, target)
			}
		}
	}
}

// outside are references to places outside the repository.
var outside = regexp.MustCompile(`\.\./shared/|/work/|DESIGN\.md`)

// TestNothingPointsOutside: no source, documentation or manifest of the
// repository refers the reader to a file that is not in it.
func TestNothingPointsOutside(t *testing.T) {
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".md", ".yaml", ".yml", ".json", ".sh", "":
		default:
			return nil
		}
		if info, err := d.Info(); err != nil || info.Size() > 1<<20 || path == "../docs/docs_test.go" {
			return err // large files are data or binaries
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if outside.MatchString(line) {
				t.Errorf("%s:%d points outside the repository: %s", path, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
