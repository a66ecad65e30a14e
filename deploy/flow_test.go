package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/deploy"
	"github.com/rewind-sre/rewind/executor/istio"
	"github.com/rewind-sre/rewind/executor/istio/istiotest"
	"github.com/rewind-sre/rewind/executor/kubernetes"
	"github.com/rewind-sre/rewind/internal/testenv"
	"github.com/rewind-sre/rewind/policy"
)

// manifests is rbac.yaml, decoded.
type manifests struct {
	sa      *corev1.ServiceAccount
	role    *rbacv1.ClusterRole
	binding *rbacv1.RoleBinding
}

func loadRBAC(t testing.TB) manifests {
	t.Helper()
	var m manifests
	for _, obj := range decodeTyped(t, "rbac.yaml", deploy.RBAC) {
		switch o := obj.(type) {
		case *corev1.ServiceAccount:
			m.sa = o
		case *rbacv1.ClusterRole:
			m.role = o
		case *rbacv1.RoleBinding:
			m.binding = o
		default:
			t.Fatalf("rbac.yaml: unexpected %T", obj)
		}
	}
	if m.sa == nil || m.role == nil || m.binding == nil {
		t.Fatalf("rbac.yaml needs a ServiceAccount, a ClusterRole and a RoleBinding: %+v", m)
	}
	return m
}

// decodeTyped decodes every document of the manifest file name (data) into
// its typed Kubernetes object, skipping empty documents.
func decodeTyped(t testing.TB, name string, data []byte) []runtime.Object {
	t.Helper()
	var out []runtime.Object
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, obj)
	}
}

// grant creates, in saNS, the ServiceAccount saName, binds role to it in
// appNS as rbac.yaml's RoleBinding does, waits until the authorizer allows
// probe, and returns a client configuration that authenticates with a
// token of that ServiceAccount (TokenRequest API): no impersonation.
func grant(t testing.TB, k *testenv.Kube, admin clientset.Interface, m manifests, role *rbacv1.ClusterRole, saNS, saName, appNS string, probe authorizationv1.ResourceAttributes) *rest.Config {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := admin.CoreV1().Namespaces().Get(ctx, saNS, metav1.GetOptions{}); err != nil {
		if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: saNS}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	sa := m.sa.DeepCopy()
	sa.Namespace, sa.Name = saNS, saName
	if _, err := admin.CoreV1().ServiceAccounts(saNS).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating ServiceAccount: %v", err)
	}
	if _, err := admin.RbacV1().ClusterRoles().Get(ctx, role.Name, metav1.GetOptions{}); err != nil {
		if _, err := admin.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating ClusterRole %s: %v", role.Name, err)
		}
	}
	rb := m.binding.DeepCopy()
	rb.Namespace, rb.Name = appNS, "rewind-"+saName
	rb.RoleRef.Name = role.Name
	rb.Subjects[0].Namespace, rb.Subjects[0].Name = saNS, saName
	if _, err := admin.RbacV1().RoleBindings(appNS).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating RoleBinding: %v", err)
	}
	tok, err := admin.CoreV1().ServiceAccounts(saNS).CreateToken(ctx, saName, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest: %v", err)
	}
	user := "system:serviceaccount:" + saNS + ":" + saName
	probe.Namespace = appNS
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for { // the RBAC authorizer sees the binding through an informer (bounded poll)
		sar, err := admin.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + saNS, "system:authenticated"}, ResourceAttributes: &probe,
		}}, metav1.CreateOptions{})
		if err == nil && sar.Status.Allowed {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never allowed %+v: %v", user, probe, err)
		case <-tick.C:
		}
	}
	return &rest.Config{Host: k.Host(), TLSClientConfig: rest.TLSClientConfig{CAData: k.CAData()}, BearerToken: tok.Status.Token,
		QPS: 50, Burst: 100, UserAgent: "rewind-test/" + saName}
}

// flow is one rollback through the executors, as the plan runs them
// (check-baseline and verify need metrics: not here), with timings from
// the decision.
type flow struct {
	results map[rewind.StepName]rewind.StepResult
	route   time.Duration // decision → VirtualService written
	undone  time.Duration // decision → Deployment undone and available
	bundle  string
}

// runFlow builds the executors from cfg (as a fresh process would) and
// runs fence → drain → undo → scale-down → evidence → complete, each step
// bounded by stepTimeout. It stops at the first error.
func runFlow(ctx context.Context, cfg *rest.Config, ns, evidenceDir string, rb *rewind.Rollback, stepTimeout time.Duration) (*flow, error) {
	decision := time.Now()
	tg, err := kubernetes.New(rest.CopyConfig(cfg), policy.Kubernetes{Namespace: ns, Deployment: "web", ScaleToZero: true},
		kubernetes.WithEvidence(evidenceDir, 100))
	if err != nil {
		return nil, err
	}
	drain, err := istio.New(rest.CopyConfig(cfg), policy.Istio{Namespace: ns, VirtualService: "web", BaselineHost: istiotest.Baseline, CanaryHost: istiotest.Canary})
	if err != nil {
		return nil, err
	}
	f := &flow{results: map[rewind.StepName]rewind.StepResult{}}
	step := func(name string, run func(ctx context.Context) error) error {
		sctx, cancel := context.WithTimeout(ctx, stepTimeout)
		defer cancel()
		if err := run(sctx); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	do := func(name rewind.StepName, ex rewind.Executor, mark *time.Duration) error {
		return step(string(name), func(ctx context.Context) error {
			res, err := ex.Do(ctx, rb)
			if mark != nil {
				*mark = time.Since(decision)
			}
			f.results[name] = res
			return err
		})
	}
	fence := tg.Fence()
	if err := step("fence", func(ctx context.Context) error { _, err := fence.Acquire(ctx, rb.System, rb.ID); return err }); err != nil {
		return f, err
	}
	if err := do(rewind.StepDrain, drain, &f.route); err != nil {
		return f, err
	}
	if err := do(rewind.StepUndo, tg.Undo(), &f.undone); err != nil {
		return f, err
	}
	if err := do(rewind.StepScaleDown, tg.ScaleDown(), nil); err != nil {
		return f, err
	}
	if err := do(rewind.StepEvidence, tg.Evidence(), nil); err != nil {
		return f, err
	}
	f.bundle = f.results[rewind.StepEvidence].Facts["bundle"]
	idx, err := kubernetes.ReadIndex(f.bundle)
	if err != nil {
		return f, fmt.Errorf("evidence index: %w", err)
	}
	for _, e := range idx.Files {
		// Logs of pods that scale-down deleted while evidence ran are
		// gone; the bad revision's pods are kept by Undo's snapshot.
		if e.Missing && !strings.Contains(e.Error, "the pod went away") {
			return f, fmt.Errorf("evidence: %s not collected: %s", e.Path, e.Error)
		}
	}
	return f, step("complete", func(ctx context.Context) error { return fence.Complete(ctx, rb.System, rb.ID) })
}

func newRollback(id string) *rewind.Rollback {
	now := time.Now().UTC()
	return &rewind.Rollback{ID: id, System: "web", Reason: "error-rate", Requester: "rewind", State: rewind.RollbackRunning, Started: now,
		Decision: &rewind.Decision{System: "web", At: now, Firing: []string{"error-rate"}, PolicyHash: "0123456789abcdef"}}
}
