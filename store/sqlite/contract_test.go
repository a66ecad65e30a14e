package sqlite

import (
	"path/filepath"
	"testing"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/store/storetest"
)

// TestContract runs the store contract on a fresh file per case; a second
// handle on the same file stands for a second process.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (rewind.Store, func() rewind.Store) {
		path := filepath.Join(t.TempDir(), "rewind.db")
		return open(t, path), func() rewind.Store { return open(t, path) }
	})
}
