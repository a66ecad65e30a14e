// Package kubernetes holds the rollback plan's Kubernetes executors
// (docs/rollback.md) for one canary Deployment, built on client-go (never a
// kubectl subprocess):
//
//   - Undo: `kubectl rollout undo` semantics, recorded on the Deployment so
//     that a re-run after a crash never undoes twice, then a watch on the
//     rollout with `kubectl rollout status` rules;
//   - ScaleDown: the canary to 0 replicas through the scale subresource;
//   - Evidence: pod logs, objects and events written into a bundle directory;
//   - Fence: the rollback's id on the Deployment under optimistic
//     concurrency, so that a system is rolled back at most once at a time.
//
// Every write is an update of the object as read (its resourceVersion),
// retried on conflict after a fresh read; nothing is patched blindly.
package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
)

// Annotations Rewind keeps on the canary Deployment. Undo carries every
// annotation under AnnotationPrefix over from the Deployment as it is
// (kubectl would replace them with the ReplicaSet's copies).
const (
	AnnotationPrefix = "rewind.dev/"
	// AnnotationRollback is the id of the rollback that holds (or last
	// held) the fence; AnnotationRollbackState says whether it still does.
	AnnotationRollback       = AnnotationPrefix + "rollback"
	AnnotationRollbackState  = AnnotationPrefix + "rollback-state"
	AnnotationRollbackSystem = AnnotationPrefix + "rollback-system"
	AnnotationRollbackSince  = AnnotationPrefix + "rollback-since"
	// AnnotationUndo is the JSON UndoRecord of the last undo, written in
	// the same update that changes the template.
	AnnotationUndo = AnnotationPrefix + "undo"
)

// Fence states in AnnotationRollbackState.
const (
	FenceActive = "active"
	FenceDone   = "done"
)

// Annotations of the deployment controller (k8s.io/kubectl/pkg/util/deployment).
const (
	revisionAnnotation        = "deployment.kubernetes.io/revision"
	revisionHistoryAnnotation = "deployment.kubernetes.io/revision-history"
	desiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas"
	maxReplicasAnnotation     = "deployment.kubernetes.io/max-replicas"
	timedOutReason            = "ProgressDeadlineExceeded"
)

// DefaultLogTailLines is the log tail of Evidence when none is configured.
const DefaultLogTailLines = 500

// conflictBackoff bounds the re-read-and-update loops: enough attempts to
// win against a busy writer, each delay short. The step's ctx bounds it too.
var conflictBackoff = wait.Backoff{Steps: 30, Duration: 10 * time.Millisecond, Factor: 1.5, Jitter: 0.5, Cap: 500 * time.Millisecond}

// Target is one canary Deployment and the executors that act on it. Its
// fields are set by New and not changed after; it is safe for concurrent use.
type Target struct {
	client      clientset.Interface
	namespace   string
	name        string
	scaleToZero bool
	evidenceDir string // parent directory of the bundles; "" if not configured
	tailLines   int64
	now         func() time.Time
}

// Option configures a Target.
type Option func(*Target)

// WithEvidence sets the evidence bundle's parent directory (the bundle of
// a rollback is dir/<rollback id> unless the rollback names one) and the
// number of log lines kept per container (≤ 0: DefaultLogTailLines).
func WithEvidence(dir string, tailLines int) Option {
	return func(t *Target) {
		t.evidenceDir = dir
		if tailLines > 0 {
			t.tailLines = int64(tailLines)
		}
	}
}

// WithClock sets the clock used for the times Rewind records.
func WithClock(now func() time.Time) Option { return func(t *Target) { t.now = now } }

// New returns the Target of the policy's kubernetes section, with a
// client built from cfg.
func New(cfg *rest.Config, k policy.Kubernetes, opts ...Option) (*Target, error) {
	cs, err := clientset.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return NewForClient(cs, k, opts...)
}

// NewForClient is New with a ready client.
func NewForClient(cs clientset.Interface, k policy.Kubernetes, opts ...Option) (*Target, error) {
	if k.Namespace == "" || k.Deployment == "" {
		return nil, errors.New("kubernetes executor: the policy names no namespace and deployment")
	}
	t := &Target{client: cs, namespace: k.Namespace, name: k.Deployment, scaleToZero: k.ScaleToZero,
		tailLines: DefaultLogTailLines, now: time.Now}
	for _, o := range opts {
		o(t)
	}
	return t, nil
}

// RESTConfig loads the client configuration: the kubeconfig file at path,
// or, when path is empty, the in-cluster service account — and outside a
// cluster the usual kubeconfig rules ($KUBECONFIG, ~/.kube/config).
func RESTConfig(path string) (*rest.Config, error) {
	var (
		cfg *rest.Config
		err error
	)
	if path != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", path)
	} else if cfg, err = rest.InClusterConfig(); errors.Is(err, rest.ErrNotInCluster) {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client configuration: %w", err)
	}
	// A rollback makes a burst of requests; client-go's default 5 QPS
	// would throttle it.
	cfg.QPS, cfg.Burst = 50, 100
	if cfg.UserAgent == "" {
		cfg.UserAgent = "rewind"
	}
	return cfg, nil
}

// Undo returns the undo executor.
func (t *Target) Undo() *Undo { return &Undo{t: t} }

// ScaleDown returns the scale-down executor.
func (t *Target) ScaleDown() *ScaleDown { return &ScaleDown{t: t} }

// Evidence returns the evidence executor.
func (t *Target) Evidence() *Evidence { return &Evidence{t: t} }

// Fence returns the fence on the Deployment.
func (t *Target) Fence() *Fence { return &Fence{t: t} }

// Executors returns the plan steps this Target implements.
func (t *Target) Executors() map[rewind.StepName]rewind.Executor {
	return map[rewind.StepName]rewind.Executor{
		rewind.StepUndo:      t.Undo(),
		rewind.StepScaleDown: t.ScaleDown(),
		rewind.StepEvidence:  t.Evidence(),
	}
}

// ref names the Deployment in messages and plans.
func (t *Target) ref() string { return "Deployment " + t.namespace + "/" + t.name }

// get reads the Deployment, with a clear error when it is missing.
func (t *Target) get(ctx context.Context) (*appsv1.Deployment, error) {
	d, err := t.client.AppsV1().Deployments(t.namespace).Get(ctx, t.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%s not found", t.ref())
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", t.ref(), err)
	}
	return d, nil
}

// update writes d as read (its resourceVersion is the precondition).
func (t *Target) update(ctx context.Context, d *appsv1.Deployment) (*appsv1.Deployment, error) {
	return t.client.AppsV1().Deployments(t.namespace).Update(ctx, d, metav1.UpdateOptions{FieldManager: "rewind"})
}

// images lists a template's containers as name=image, comma-separated.
func images(d *appsv1.Deployment) string { return templateImages(d.Spec.Template.Spec.Containers) }

// ctxErr returns ctx's error, wrapped with what was being done, or err.
func ctxErr(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%s: %w (%v)", what, ctx.Err(), err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
