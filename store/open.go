package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	rewind "github.com/rewind-sre/rewind"
	kexec "github.com/rewind-sre/rewind/executor/kubernetes"
	kstore "github.com/rewind-sre/rewind/store/kubernetes"
	"github.com/rewind-sre/rewind/store/sqlite"
)

// Kind is the kind of a store.
type Kind string

const (
	// KindSQLite is the embedded store: one SQLite file.
	KindSQLite Kind = "sqlite"
	// KindKubernetes is Rollback and Notice objects in a namespace of the
	// API server.
	KindKubernetes Kind = "kubernetes"
)

// Location says where a store is, as the --store flag writes it:
//
//	PATH, sqlite:PATH        a SQLite file
//	kubernetes               the API server, in namespace $POD_NAMESPACE
//	kubernetes:NAMESPACE     the API server, in NAMESPACE
type Location struct {
	Kind      Kind
	Path      string // KindSQLite
	Namespace string // KindKubernetes
}

func (l Location) String() string {
	if l.Kind == KindKubernetes {
		return string(KindKubernetes) + ":" + l.Namespace
	}
	return l.Path
}

// ParseLocation reads a --store value. "kubernetes" without a namespace
// takes defaultNamespace (the pod's), and is an error without one.
func ParseLocation(s, defaultNamespace string) (Location, error) {
	switch {
	case s == "":
		return Location{}, errors.New("store: no location (a SQLite path, or kubernetes[:NAMESPACE])")
	case s == string(KindKubernetes):
		if defaultNamespace == "" {
			return Location{}, errors.New("store: kubernetes needs a namespace: kubernetes:NAMESPACE (or $POD_NAMESPACE)")
		}
		return Location{Kind: KindKubernetes, Namespace: defaultNamespace}, nil
	case strings.HasPrefix(s, string(KindKubernetes)+":"):
		ns := strings.TrimPrefix(s, string(KindKubernetes)+":")
		if ns == "" || strings.ContainsAny(ns, "/: ") {
			return Location{}, fmt.Errorf("store: %q: want kubernetes:NAMESPACE", s)
		}
		return Location{Kind: KindKubernetes, Namespace: ns}, nil
	case strings.HasPrefix(s, string(KindSQLite)+":"):
		return Location{Kind: KindSQLite, Path: strings.TrimPrefix(s, string(KindSQLite)+":")}, nil
	}
	return Location{Kind: KindSQLite, Path: s}, nil
}

// Options configure Open.
type Options struct {
	// Kubeconfig for KindKubernetes; "" is in-cluster, else $KUBECONFIG or
	// ~/.kube/config.
	Kubeconfig string
	Kubernetes kstore.Options
	// Create makes a missing SQLite file (and its directory); without it
	// a missing file is an error (readers: history, postmortem).
	Create bool
}

// Open opens the store at loc. A Kubernetes store is checked once (the
// CRDs installed, the role bound) so that a broken setup says so at start.
func Open(ctx context.Context, loc Location, opt Options) (rewind.Store, error) {
	switch loc.Kind {
	case KindSQLite:
		if !opt.Create {
			if _, err := os.Stat(loc.Path); err != nil {
				return nil, fmt.Errorf("no rollback journal at %s", loc.Path)
			}
		} else if dir := filepath.Dir(loc.Path); dir != "." {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, err
			}
		}
		return sqlite.Open(ctx, loc.Path)
	case KindKubernetes:
		cfg, err := kexec.RESTConfig(opt.Kubeconfig)
		if err != nil {
			return nil, err
		}
		s, err := kstore.New(cfg, loc.Namespace, opt.Kubernetes)
		if err != nil {
			return nil, err
		}
		if err := s.Check(ctx); err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("store: unknown kind %q", loc.Kind)
}
