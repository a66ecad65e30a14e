// Package kubernetes is Rewind's store in the Kubernetes API server: each
// rollback is a Rollback custom resource (rollbacks.rewind.dev) holding its
// record and its journal, each notification of the outbox a Notice
// (notices.rewind.dev), in Rewind's own namespace. Every replica reads the
// same state, and it survives the loss of any pod: the next leader resumes
// an unfinished rollback from its journal and delivers what the outbox left
// pending. deploy/crds.yaml defines the resources; docs/storage.md
// describes the guarantees.
//
// Exactly-once, in the API server's terms:
//
//   - Create: a system's rollbacks are named <system>-<n>, n counting up;
//     the next one is created only after the newest is seen finished, and
//     two processes creating the same name race on AlreadyExists: at most one
//     rollback per system runs.
//   - Save: the status (record and journal) is updated on the
//     resourceVersion this handle last wrote or handed out (Unfinished). When
//     the object changed in between and its journal moved on, another process
//     has taken the rollback over (a new leader): ErrJournalMoved, and the
//     deposed writer stops at its next step.
//   - Notices: one object per notice, named by its dedup key (dedup by
//     AlreadyExists); a claim and an outcome are updates on the read
//     resourceVersion.
//
// Objects are bounded (MaxObjectBytes): long details and large decisions are
// shortened, and said to be, in the object; the evidence bundle keeps them
// whole. Retention keeps the newest RetainCount finished rollbacks and, with
// RetainAge, none older; settled notices go after NoticeRetention.
package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	rewind "github.com/rewind-sre/rewind"
)

// Group and version of Rewind's resources.
const (
	Group   = "rewind.dev"
	Version = "v1alpha1"
)

var (
	// RollbackResource is rollbacks.rewind.dev.
	RollbackResource = schema.GroupVersionResource{Group: Group, Version: Version, Resource: "rollbacks"}
	// NoticeResource is notices.rewind.dev.
	NoticeResource = schema.GroupVersionResource{Group: Group, Version: Version, Resource: "notices"}
)

// Labels the store sets.
const (
	LabelSystem     = Group + "/system"      // the system (hashed when not a valid label value)
	LabelRollbackID = Group + "/rollback-id" // the rollback's id
	LabelNotifier   = Group + "/notifier"    // a notice's notifier
	LabelState      = Group + "/state"       // a notice's state
	LabelNoticeID   = Group + "/notice-id"   // a notice's id
	LabelManagedBy  = "app.kubernetes.io/managed-by"
	managedBy       = "rewind"
)

// Defaults of Options' zero fields.
const (
	DefaultRetainCount     = 500
	DefaultNoticeRetention = 7 * 24 * time.Hour
	DefaultMaxObjectBytes  = 256 << 10
	// retentionEvery: the store prunes at most this often per process.
	retentionEvery = 10 * time.Minute
	// listPage bounds one page of a List.
	listPage = 100
	// conflictRetries bounds the re-reads after a conflict.
	conflictRetries = 5
)

// Options configure a Store. Zero values take the defaults.
type Options struct {
	// RetainCount is how many finished rollbacks are kept, newest first
	// (default DefaultRetainCount; negative: no limit). The oldest go first.
	RetainCount int
	// RetainAge: finished rollbacks that ended longer ago are deleted
	// (default 0: no age limit).
	RetainAge time.Duration
	// NoticeRetention: settled notices (delivered, failed, expired) are
	// deleted after this long (default DefaultNoticeRetention). It is the
	// outbox's dedup window for events without a rollback.
	NoticeRetention time.Duration
	// MaxObjectBytes bounds the JSON of one object (default
	// DefaultMaxObjectBytes; etcd refuses objects over 1.5 MiB).
	MaxObjectBytes int
	Now            func() time.Time // default time.Now
}

// Store is a rewind.Store on the API server, in one namespace. It is safe
// for concurrent use.
type Store struct {
	rollbacks dynamic.ResourceInterface
	notices   dynamic.ResourceInterface
	ns        string
	opt       Options

	mu              sync.Mutex
	held            map[string]*unstructured.Unstructured // rollback id -> the object as this handle last wrote or handed it out
	noticeNames     map[int64]string                      // notice id -> object name
	lastNotice      int64                                 // the last notice id assigned or seen
	idsRead         bool                                  // every stored notice id was read once
	lastNoticePrune time.Time
}

var _ rewind.Store = (*Store)(nil)

// New returns a store in namespace ns of the cluster cfg points at.
func New(cfg *rest.Config, ns string, opt Options) (*Store, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes store: %w", err)
	}
	return NewForClient(dyn, ns, opt)
}

// NewForClient is New with a dynamic client.
func NewForClient(dyn dynamic.Interface, ns string, opt Options) (*Store, error) {
	if ns == "" {
		return nil, errors.New("kubernetes store: needs a namespace")
	}
	if opt.RetainCount == 0 {
		opt.RetainCount = DefaultRetainCount
	}
	if opt.NoticeRetention <= 0 {
		opt.NoticeRetention = DefaultNoticeRetention
	}
	if opt.MaxObjectBytes <= 0 {
		opt.MaxObjectBytes = DefaultMaxObjectBytes
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Store{
		rollbacks: dyn.Resource(RollbackResource).Namespace(ns),
		notices:   dyn.Resource(NoticeResource).Namespace(ns),
		ns:        ns, opt: opt,
		held: map[string]*unstructured.Unstructured{}, noticeNames: map[int64]string{},
	}, nil
}

// Check reads the store once: for a clear error at start when the CRDs are
// not installed or the role is missing a verb.
func (s *Store) Check(ctx context.Context) error {
	if _, err := s.rollbacks.List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		return fmt.Errorf("kubernetes store: reading rollbacks.%s in namespace %s (are deploy/crds.yaml applied and the role bound?): %w", Group, s.ns, err)
	}
	if _, err := s.notices.List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		return fmt.Errorf("kubernetes store: reading notices.%s in namespace %s: %w", Group, s.ns, err)
	}
	return nil
}

// Close releases nothing: the store holds no connection of its own.
func (s *Store) Close() error { return nil }

// list reads every object of r matching selector, page by page.
func list(ctx context.Context, r dynamic.ResourceInterface, selector string) ([]unstructured.Unstructured, error) {
	var out []unstructured.Unstructured
	opts := metav1.ListOptions{LabelSelector: selector, Limit: listPage}
	for {
		l, err := r.List(ctx, opts)
		if err != nil {
			return nil, err
		}
		out = append(out, l.Items...)
		if l.GetContinue() == "" {
			return out, nil
		}
		opts.Continue = l.GetContinue()
	}
}

// toObject converts v (a struct with JSON tags) to an unstructured object.
func toObject(v any) (*unstructured.Unstructured, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(b); err != nil {
		return nil, err
	}
	return u, nil
}

// fromObject converts an unstructured object to v.
func fromObject(u *unstructured.Unstructured, v any) error {
	b, err := u.MarshalJSON()
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func isConflict(err error) bool { return apierrors.IsConflict(err) }
