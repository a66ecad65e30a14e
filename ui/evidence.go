package ui

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
)

// EvidenceFile is one file of a rollback's evidence bundle.
type EvidenceFile struct {
	Path string // slash-separated, relative to the bundle
	Size int64
}

// Evidence reads the evidence bundles. List and Open are bounded by ctx;
// Open is given a path List returned, and must refuse any other.
type Evidence interface {
	List(ctx context.Context, bundle string) ([]EvidenceFile, error)
	Open(ctx context.Context, bundle, file string) (io.ReadCloser, error)
}

// Bounds of what the UI reads of a bundle.
const (
	maxEvidenceFiles = 1000
	maxShownBytes    = 1 << 20 // a post-mortem draft rendered on a page
)

// DirEvidence reads bundles from the local directory named in the rollback
// record. Files are opened through os.Root: a name cannot leave the bundle.
type DirEvidence struct{}

var errNoBundle = errors.New("the rollback has no evidence bundle")

func (DirEvidence) List(ctx context.Context, bundle string) ([]EvidenceFile, error) {
	if bundle == "" {
		return nil, errNoBundle
	}
	var out []EvidenceFile
	err := fs.WalkDir(os.DirFS(bundle), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		if len(out) == maxEvidenceFiles {
			return fs.SkipAll
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, EvidenceFile{Path: p, Size: info.Size()})
		return nil
	})
	slices.SortFunc(out, func(a, b EvidenceFile) int {
		// INDEX.md and the post-mortem first: they say what the rest is.
		ra, rb := fileRank(a.Path), fileRank(b.Path)
		if ra != rb {
			return ra - rb
		}
		if a.Path < b.Path {
			return -1
		}
		return 1
	})
	return out, err
}

func fileRank(p string) int {
	switch p {
	case "INDEX.md":
		return 0
	case "POSTMORTEM.md":
		return 1
	}
	return 2
}

func (DirEvidence) Open(_ context.Context, bundle, file string) (io.ReadCloser, error) {
	if bundle == "" {
		return nil, errNoBundle
	}
	if !fs.ValidPath(file) || path.Clean(file) != file {
		return nil, fs.ErrNotExist
	}
	root, err := os.OpenRoot(bundle)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.Open(file)
	if err != nil {
		return nil, err
	}
	if info, err := f.Stat(); err != nil || !info.Mode().IsRegular() {
		f.Close()
		return nil, fs.ErrNotExist
	}
	return f, nil
}
