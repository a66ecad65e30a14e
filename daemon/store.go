package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/store"
	kstore "github.com/rewind-sre/rewind/store/kubernetes"
	"github.com/rewind-sre/rewind/store/sqlite"
)

// StateDir is where Rewind keeps its state (the store, the evidence
// bundles) unless told otherwise: $REWIND_STATE_DIR when set; in a
// Kubernetes pod /var/lib/rewind (the shipped Deployment mounts a volume
// there); else $XDG_STATE_HOME/rewind, or ~/.local/state/rewind (the XDG
// base directory specification's state home). It never depends on the
// directory a command runs from.
func StateDir() string {
	if d := os.Getenv("REWIND_STATE_DIR"); d != "" {
		return d
	}
	if os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		return "/var/lib/rewind"
	}
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "rewind")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "rewind")
	}
	return filepath.Join(os.TempDir(), "rewind-state")
}

// DefaultStorePath is the store's default location: rewind.db in StateDir.
func DefaultStorePath() string { return filepath.Join(StateDir(), "rewind.db") }

// DefaultEvidenceDir is where evidence bundles go when neither the command
// line nor the policy says: evidence/ in StateDir.
func DefaultEvidenceDir() string { return filepath.Join(StateDir(), "evidence") }

// ErrLocked: another process runs rollbacks from the same store.
var ErrLocked = errors.New("another rewind process holds the store")

// LockedStore is the SQLite store held by this process alone.
type LockedStore struct {
	*sqlite.Store
	lock *os.File
}

// Close closes the store, then releases the lock.
func (s *LockedStore) Close() error {
	err := s.Store.Close()
	_ = syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
	return errors.Join(err, s.lock.Close())
}

// OpenStore opens (creating) the store at path ("" : DefaultStorePath) for
// this process alone: it takes an exclusive lock on the database file
// itself, without waiting, so that a second process is refused whatever
// path it names the file by (a symlink, a bind mount, a relative path, a
// hard link): one process at a time runs and resumes the rollbacks of a
// store. The kernel releases the lock when the process dies, even by
// SIGKILL, so the next process can resume what was left. The store must
// be on a local filesystem (SQLite's own requirement).
func OpenStore(ctx context.Context, path string) (*LockedStore, error) {
	f, real, err := lockStore(path)
	if err != nil {
		return nil, err
	}
	st, err := sqlite.Open(ctx, real)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return &LockedStore{Store: st, lock: f}, nil
}

// OpenStoreShared opens the store without the lock, for reading (history,
// postmortem) or a dry run, while a daemon may hold it.
func OpenStoreShared(ctx context.Context, path string) (*sqlite.Store, error) {
	if path == "" {
		path = DefaultStorePath()
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no rollback journal at %s", path)
	}
	return sqlite.Open(ctx, path)
}

func lockStore(path string) (*os.File, string, error) {
	if path == "" {
		path = DefaultStorePath()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, "", err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, "", err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := lockHolder(f)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, "", fmt.Errorf("%w %s%s", ErrLocked, path, holder)
		}
		return nil, "", fmt.Errorf("locking the store %s: %w", path, err)
	}
	// SQLite keeps its -wal and -shm files beside the name it is given:
	// the real file's, whatever path led to it.
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		f.Close()
		return nil, "", err
	}
	return f, real, nil
}

// lockHolder names the process that holds the lock on f, from /proc/locks
// (Linux); "" when it cannot be told.
func lockHolder(f *os.File) string {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return ""
	}
	locks, err := os.Open("/proc/locks")
	if err != nil {
		return ""
	}
	defer locks.Close()
	// "1: FLOCK  ADVISORY  WRITE 12345 08:01:1234567 0 EOF"
	want := fmt.Sprintf(":%d", st.Ino)
	sc := bufio.NewScanner(locks)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 6 && fields[1] == "FLOCK" && strings.HasSuffix(fields[5], want) {
			return " (pid " + fields[4] + ")"
		}
	}
	return ""
}

// StoreOptions configure OpenStoreAt for a store in the API server.
type StoreOptions struct {
	// Kubeconfig for a kubernetes store; "" is in-cluster, else
	// $KUBECONFIG or ~/.kube/config.
	Kubeconfig string
	Kubernetes kstore.Options
	// Shared opens a SQLite store without its single-writer lock (readers:
	// history, postmortem); the file must exist.
	Shared bool
}

// OpenStoreAt opens the store a --store flag names (docs/storage.md): a
// SQLite path (OpenStore, or OpenStoreShared for readers), or
// kubernetes[:NAMESPACE], the Rollback and Notice objects that every
// replica shares (namespace default $POD_NAMESPACE).
func OpenStoreAt(ctx context.Context, location string, opt StoreOptions) (rewind.Store, error) {
	loc, err := store.ParseLocation(location, os.Getenv("POD_NAMESPACE"))
	if err != nil {
		return nil, err
	}
	if loc.Kind == store.KindKubernetes {
		return store.Open(ctx, loc, store.Options{Kubeconfig: opt.Kubeconfig, Kubernetes: opt.Kubernetes})
	}
	if opt.Shared {
		return OpenStoreShared(ctx, loc.Path)
	}
	return OpenStore(ctx, loc.Path)
}

// StoreIsFile reports whether a --store value names a SQLite file (whose
// directory is a default for evidence) rather than the API server.
func StoreIsFile(location string) bool {
	loc, err := store.ParseLocation(location, "x")
	return err != nil || loc.Kind == store.KindSQLite
}
