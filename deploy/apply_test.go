package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"sigs.k8s.io/yaml"

	"github.com/rewind-sre/rewind/cli"
	"github.com/rewind-sre/rewind/executor/istio/istiotest"
	"github.com/rewind-sre/rewind/executor/kubernetes/kubetest"
	"github.com/rewind-sre/rewind/internal/testenv"
	"github.com/rewind-sre/rewind/policy"
)

// kindOrder is the order kustomize (and kubectl apply -k) creates kinds in.
var kindOrder = []string{"CustomResourceDefinition", "Namespace", "ServiceAccount", "ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding",
	"ConfigMap", "Secret", "Service", "Deployment", "PodDisruptionBudget"}

// warnings collects the API server's warnings (deprecations, and Pod
// Security "warn" findings where the admission plugin runs).
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

type applyEnv struct {
	k      *testenv.Kube
	admin  clientset.Interface
	dyn    dynamic.Interface
	mapper meta.RESTMapper
	warn   *warnings
	docs   []manifestDoc
}

// TestApply applies every manifest of the kustomization to the real
// control plane with server-side apply (strict field validation), checks
// that the Deployment gets its 2 replicas available (kwok runs the pods),
// that the Service and the PodDisruptionBudget select them, and then acts
// as the daemon's ServiceAccount (a TokenRequest token, no impersonation):
// it may lead through the Lease and run the rollback executors, and little
// else; the daemon itself, `rewind serve` in-process with the manifests'
// arguments and policy, rolls a canary back under that RBAC.
func TestApply(t *testing.T) {
	docs := readManifests(t)
	k := testenv.StartKube(t)
	e := &applyEnv{k: k, warn: &warnings{}, docs: docs}
	cfg := k.AdminConfig()
	cfg.WarningHandler = e.warn
	e.admin = clientset.NewForConfigOrDie(cfg)
	e.dyn = dynamic.NewForConfigOrDie(cfg)
	e.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(e.admin.Discovery()))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	// The canary's namespace exists before Rewind is installed: rbac.yaml's
	// example RoleBinding goes there.
	if _, err := e.admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: canaryNS}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	slices.SortStableFunc(docs, func(a, b manifestDoc) int {
		return slices.Index(kindOrder, a.obj.GetKind()) - slices.Index(kindOrder, b.obj.GetKind())
	})
	versions := map[string]string{}
	for _, d := range docs {
		if !slices.Contains(kindOrder, d.obj.GetKind()) {
			t.Fatalf("%s: %s is not in kindOrder", d.file, d.obj.GetKind())
		}
		versions[key(d.obj)] = version(e.apply(ctx, t, d))
		t.Logf("applied %s %s", d.file, key(d.obj))
	}
	if w := e.warn.take(); len(w) > 0 {
		t.Errorf("the API server warned: %q", w)
	}
	// Applying again changes nothing: no field is defaulted differently
	// from what the manifests say, no conflict between field managers.
	for _, d := range docs {
		if got := version(e.apply(ctx, t, d)); got != versions[key(d.obj)] {
			t.Errorf("re-applying %s changed it (%s → %s)", key(d.obj), versions[key(d.obj)], got)
		}
	}

	// The operator's step: the API token (README.md).
	token := "deploy-test-token-0123456789abcdef"
	if _, err := e.admin.CoreV1().Secrets(namespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: tokenSecret, Namespace: namespace},
		StringData: map[string]string{tokenKey: token + "\n"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	dep := findTyped[*appsv1.Deployment](t, docs, "deployment.yaml")
	kubetest.WaitAvailable(t, e.admin, namespace, dep.Name, dep.Spec.Template.Spec.Containers[0].Image)
	e.checkPods(ctx, t, dep)
	e.checkSelection(ctx, t, dep)

	sa := e.serviceAccountConfig(ctx, t)
	t.Run("ServiceAccountMayDoWhatTheDaemonNeedsAndLittleElse", func(t *testing.T) { e.testAccess(t, sa) })
	t.Run("LeaderElectionUnderTheRole", func(t *testing.T) { e.testLeaderElection(t, sa) })
	t.Run("ExecutorsUnderTheShippedBinding", func(t *testing.T) { e.testExecutors(t, sa) })
	t.Run("DaemonRollsBackUnderItsRBAC", func(t *testing.T) { e.testDaemon(t, sa, token) })
}

// version is what an apply that changes nothing leaves as it is: the
// generation of objects with a spec (controllers update their status in
// between), else the resourceVersion.
func version(o *unstructured.Unstructured) string {
	if g := o.GetGeneration(); g > 0 {
		return fmt.Sprintf("generation %d", g)
	}
	return "resourceVersion " + o.GetResourceVersion()
}

func key(o *unstructured.Unstructured) string {
	if o.GetNamespace() == "" {
		return o.GetKind() + " " + o.GetName()
	}
	return o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
}

// apply server-side applies one manifest, refusing unknown fields.
func (e *applyEnv) apply(ctx context.Context, t *testing.T, d manifestDoc) *unstructured.Unstructured {
	t.Helper()
	gvk := d.obj.GroupVersionKind()
	mapping, err := e.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		t.Fatalf("%s: %s: %v", d.file, key(d.obj), err)
	}
	var ri dynamic.ResourceInterface = e.dyn.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		if d.obj.GetNamespace() == "" {
			t.Fatalf("%s: %s has no namespace", d.file, key(d.obj))
		}
		ri = e.dyn.Resource(mapping.Resource).Namespace(d.obj.GetNamespace())
	}
	body, err := d.obj.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ri.Patch(ctx, d.obj.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{
		FieldManager: "rewind-deploy-test", Force: new(true), FieldValidation: metav1.FieldValidationStrict})
	if err != nil {
		t.Fatalf("applying %s: %s: %v", d.file, key(d.obj), err)
	}
	return got
}

// checkPods: the pods run as the ServiceAccount, on the kwok node, Ready.
func (e *applyEnv) checkPods(ctx context.Context, t *testing.T, dep *appsv1.Deployment) {
	t.Helper()
	sel := metav1.FormatLabelSelector(dep.Spec.Selector)
	pods, err := e.admin.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 2 {
		t.Fatalf("%d pods match %s, want 2", len(pods.Items), sel)
	}
	for _, p := range pods.Items {
		ready := false
		for _, c := range p.Status.Conditions {
			ready = ready || (c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue)
		}
		if p.Spec.ServiceAccountName != appName || p.Spec.NodeName != testenv.KubeNodeName || p.Status.Phase != corev1.PodRunning || !ready {
			t.Errorf("pod %s: serviceAccount %s node %s phase %s ready %v", p.Name, p.Spec.ServiceAccountName, p.Spec.NodeName, p.Status.Phase, ready)
		}
	}
}

// checkSelection: the PodDisruptionBudget and the Service, as stored by the
// API server, select exactly the Deployment's pods, and the Service's
// target port is a port of theirs. (The test control plane runs neither
// the disruption nor the EndpointSlice controller, so their status is not
// computed here.)
func (e *applyEnv) checkSelection(ctx context.Context, t *testing.T, dep *appsv1.Deployment) {
	t.Helper()
	want, err := e.admin.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(dep.Spec.Selector)})
	if err != nil {
		t.Fatal(err)
	}
	names := func(pods []corev1.Pod) []string {
		var out []string
		for _, p := range pods {
			out = append(out, p.Name)
		}
		slices.Sort(out)
		return out
	}
	pdb, err := e.admin.PolicyV1().PodDisruptionBudgets(namespace).Get(ctx, appName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	byPDB, err := e.admin.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(pdb.Spec.Selector)})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(byPDB.Items); len(got) != 2 || !slices.Equal(got, names(want.Items)) {
		t.Errorf("the PodDisruptionBudget selects %v, the Deployment's pods are %v", got, names(want.Items))
	}
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget minAvailable %v, want 1", pdb.Spec.MinAvailable)
	}
	svc, err := e.admin.CoreV1().Services(namespace).Get(ctx, appName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bySvc, err := e.admin.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(svc.Spec.Selector).String()})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(bySvc.Items); len(got) != 2 || !slices.Equal(got, names(want.Items)) {
		t.Errorf("the Service selects %v, the Deployment's pods are %v", got, names(want.Items))
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		t.Errorf("Service cluster IP %q", svc.Spec.ClusterIP)
	}
	for _, p := range bySvc.Items {
		found := false
		for _, c := range p.Spec.Containers {
			for _, cp := range c.Ports {
				found = found || (cp.Name == svc.Spec.Ports[0].TargetPort.String() && cp.ContainerPort == 8080)
			}
		}
		if !found {
			t.Errorf("pod %s has no port %s", p.Name, svc.Spec.Ports[0].TargetPort.String())
		}
	}
}

func poll(ctx context.Context, t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, why := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %s", what, why)
		case <-tick.C:
		}
	}
}

// serviceAccountConfig returns a client configuration that authenticates
// with a token of the manifests' ServiceAccount (TokenRequest API), once
// the RBAC authorizer has seen the bindings.
func (e *applyEnv) serviceAccountConfig(ctx context.Context, t *testing.T) *rest.Config {
	t.Helper()
	tok, err := e.admin.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, appName, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest: %v", err)
	}
	cfg := &rest.Config{Host: e.k.Host(), TLSClientConfig: rest.TLSClientConfig{CAData: e.k.CAData()}, BearerToken: tok.Status.Token,
		QPS: 50, Burst: 100, UserAgent: "rewind-deploy-test/serviceaccount"}
	cs := clientset.NewForConfigOrDie(cfg)
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "system:serviceaccount:" + namespace + ":" + appName; review.Status.UserInfo.Username != want {
		t.Fatalf("the token authenticates as %s, want %s", review.Status.UserInfo.Username, want)
	}
	// The RBAC authorizer sees bindings through an informer: wait for both.
	for _, a := range []authorizationv1.ResourceAttributes{
		{Namespace: namespace, Group: "coordination.k8s.io", Resource: "leases", Verb: "get", Name: leaseName},
		{Namespace: canaryNS, Group: "apps", Resource: "deployments", Verb: "get"},
	} {
		poll(ctx, t, fmt.Sprintf("the ServiceAccount allowed %+v", a), func() (bool, string) {
			ok, err := allowed(ctx, cs, a)
			return ok, fmt.Sprint(err)
		})
	}
	return cfg
}

func allowed(ctx context.Context, cs clientset.Interface, a authorizationv1.ResourceAttributes) (bool, error) {
	r, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &a}}, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return r.Status.Allowed, nil
}

// testAccess asks the authorizer, as the ServiceAccount, about what the
// daemon needs (the Lease, the executors' verbs in the canary's namespace)
// and about what it must not be able to do; and tries some of the latter.
func (e *applyEnv) testAccess(t *testing.T, cfg *rest.Config) {
	ctx := t.Context()
	cs := clientset.NewForConfigOrDie(cfg)
	lease := func(ns, verb, name string) authorizationv1.ResourceAttributes {
		return authorizationv1.ResourceAttributes{Namespace: ns, Group: "coordination.k8s.io", Resource: "leases", Verb: verb, Name: name}
	}
	res := func(ns, group, resource, verb, name string) authorizationv1.ResourceAttributes {
		r, sub, _ := strings.Cut(resource, "/")
		return authorizationv1.ResourceAttributes{Namespace: ns, Group: group, Resource: r, Subresource: sub, Verb: verb, Name: name}
	}
	need := []authorizationv1.ResourceAttributes{
		lease(namespace, "get", leaseName), lease(namespace, "update", leaseName), lease(namespace, "create", ""),
	}
	for _, g := range grants { // rbac.yaml's role, as the executors use it
		gr, verb, _ := strings.Cut(g, ":")
		group, resource, _ := strings.Cut(gr, "/")
		need = append(need, res(canaryNS, group, resource, verb, "web"))
	}
	for _, g := range storeGrants { // store-rbac.yaml's Role, in Rewind's namespace
		gr, verb, _ := strings.Cut(g, ":")
		group, resource, _ := strings.Cut(gr, "/")
		need = append(need, res(namespace, group, resource, verb, ""))
	}
	mustNot := map[string]authorizationv1.ResourceAttributes{
		"rewrite a Rollback's spec":                     res(namespace, "rewind.dev", "rollbacks", "update", "checkout-1"),
		"keep Rollbacks in the canary's namespace":      res(canaryNS, "rewind.dev", "rollbacks", "create", ""),
		"update another Lease":                          lease(namespace, "update", "some-other-controller"),
		"delete its Lease":                              lease(namespace, "delete", leaseName),
		"list Leases":                                   lease(namespace, "list", ""),
		"take kube-controller-manager's Lease":          lease("kube-system", "update", "kube-controller-manager"),
		"use a Lease in the canary's namespace":         lease(canaryNS, "get", leaseName),
		"delete the canary Deployment":                  res(canaryNS, "apps", "deployments", "delete", "web"),
		"patch the canary Deployment":                   res(canaryNS, "apps", "deployments", "patch", "web"),
		"create Deployments":                            res(canaryNS, "apps", "deployments", "create", ""),
		"list Deployments":                              res(canaryNS, "apps", "deployments", "list", ""),
		"get a Deployment outside the bound namespaces": res("default", "apps", "deployments", "get", "web"),
		"update its own Deployment":                     res(namespace, "apps", "deployments", "update", appName),
		"read its API token Secret":                     res(namespace, "", "secrets", "get", tokenSecret),
		"list Secrets cluster-wide":                     res("", "", "secrets", "list", ""),
		"read Secrets in the canary's namespace":        res(canaryNS, "", "secrets", "get", "db"),
		"read its policy ConfigMap (it is mounted)":     res(namespace, "", "configmaps", "get", policyCMName),
		"create pods":                                   res(canaryNS, "", "pods", "create", ""),
		"delete pods":                                   res(canaryNS, "", "pods", "delete", "web-1"),
		"exec into pods":                                res(canaryNS, "", "pods/exec", "create", "web-1"),
		"mint ServiceAccount tokens":                    res(namespace, "", "serviceaccounts/token", "create", appName),
		"bind roles":                                    res(canaryNS, "rbac.authorization.k8s.io", "rolebindings", "create", ""),
		"bind cluster roles":                            res("", "rbac.authorization.k8s.io", "clusterrolebindings", "create", ""),
		"list namespaces":                               res("", "", "namespaces", "list", ""),
		"list nodes":                                    res("", "", "nodes", "list", ""),
		"delete VirtualServices":                        res(canaryNS, "networking.istio.io", "virtualservices", "delete", "web"),
	}
	for _, a := range need {
		if ok, err := allowed(ctx, cs, a); err != nil || !ok {
			t.Errorf("the daemon needs %+v: allowed %v (%v)", a, ok, err)
		}
	}
	for what, a := range mustNot {
		if ok, err := allowed(ctx, cs, a); err != nil || ok {
			t.Errorf("the ServiceAccount may %s (%+v): allowed %v (%v)", what, a, ok, err)
		}
	}
	// And for real.
	for what, err := range map[string]error{
		"list secrets cluster-wide": func() error { _, err := cs.CoreV1().Secrets("").List(ctx, metav1.ListOptions{}); return err }(),
		"read the API token": func() error {
			_, err := cs.CoreV1().Secrets(namespace).Get(ctx, tokenSecret, metav1.GetOptions{})
			return err
		}(),
		"delete its own Deployment":      cs.AppsV1().Deployments(namespace).Delete(ctx, appName, metav1.DeleteOptions{}),
		"delete the PodDisruptionBudget": cs.PolicyV1().PodDisruptionBudgets(namespace).Delete(ctx, appName, metav1.DeleteOptions{}),
	} {
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s as the ServiceAccount: %v; want Forbidden", what, err)
		}
	}
}

// testLeaderElection runs client-go's leader election on the Lease as the
// ServiceAccount: one replica acquires it (create) and renews it (get,
// update); a second waits; when the first steps down (an update releasing
// it), the second takes over.
func (e *applyEnv) testLeaderElection(t *testing.T, cfg *rest.Config) {
	cs := clientset.NewForConfigOrDie(cfg)
	led := make(chan string, 4)
	elect := func(ctx context.Context, id string) <-chan struct{} {
		lock := &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: namespace, Name: leaseName},
			Client:     cs.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: id},
		}
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock, Name: "rewind", ReleaseOnCancel: true,
			LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 200 * time.Millisecond,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(context.Context) { led <- id },
				OnStoppedLeading: func() {},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); le.Run(ctx) }()
		return done
	}
	waitLeader := func(want string, within time.Duration) {
		t.Helper()
		select {
		case id := <-led:
			if id != want {
				t.Fatalf("%s leads, want %s", id, want)
			}
		case <-time.After(within):
			t.Fatalf("%s did not become the leader within %s: the Role lacks a verb the elector needs?", want, within)
		}
	}
	ctxA, stopA := context.WithCancel(t.Context())
	defer stopA()
	doneA := elect(ctxA, "replica-a")
	waitLeader("replica-a", 30*time.Second)
	first := e.lease(t)
	if first.Spec.HolderIdentity == nil || *first.Spec.HolderIdentity != "replica-a" {
		t.Fatalf("Lease holder %v, want replica-a", first.Spec.HolderIdentity)
	}
	// Renewals: the renew time moves on.
	poll(t.Context(), t, "a renewal of the Lease by replica-a", func() (bool, string) {
		l := e.lease(t)
		return l.Spec.RenewTime != nil && l.Spec.RenewTime.After(first.Spec.RenewTime.Time), fmt.Sprint(l.Spec.RenewTime)
	})

	ctxB, stopB := context.WithCancel(t.Context())
	defer stopB()
	doneB := elect(ctxB, "replica-b")
	select {
	case id := <-led:
		t.Fatalf("%s leads while replica-a holds the Lease", id)
	case <-time.After(time.Second):
	}
	stopA()
	<-doneA
	waitLeader("replica-b", 10*time.Second)
	if l := e.lease(t); l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "replica-b" {
		t.Errorf("Lease holder %v after the hand-over, want replica-b", l.Spec.HolderIdentity)
	}
	stopB()
	<-doneB
}

func (e *applyEnv) lease(t *testing.T) *coordinationv1.Lease {
	t.Helper()
	l, err := e.admin.CoordinationV1().Leases(namespace).Get(t.Context(), leaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// testExecutors runs rbac_test.go's rollback flow (fence, drain, undo,
// scale-down, evidence, complete) as the manifests' ServiceAccount, under
// rbac.yaml's example RoleBinding as applied.
func (e *applyEnv) testExecutors(t *testing.T, cfg *rest.Config) {
	kubetest.CanaryDeployment(t, e.admin, canaryNS, "web", kubetest.Canary{})
	istiotest.Create(t, e.dyn, istiotest.VirtualService(canaryNS, "web"))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	f, err := runFlow(ctx, cfg, canaryNS, t.TempDir(), newRollback("rb-deploy-apply-1"), time.Minute)
	if err != nil {
		t.Fatalf("the rollback flow as the ServiceAccount: %v", err)
	}
	for name, res := range f.results {
		if res.Skipped {
			t.Errorf("step %s skipped: %s", name, res.Detail)
		}
	}
	d, err := e.admin.AppsV1().Deployments(canaryNS).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := d.Spec.Template.Spec.Containers[0].Image; img != kubetest.ImageV1 || *d.Spec.Replicas != 0 {
		t.Errorf("Deployment at %s with %d replicas; want %s scaled to 0", img, *d.Spec.Replicas, kubetest.ImageV1)
	}
}

// The VirtualService of the default policy's system, splitting 80/20.
const dwcpVirtualService = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: dwcp-service
  namespace: dwcp
spec:
  hosts: [dwcp.example]
  http:
  - name: split
    route:
    - {destination: {host: dwcp-baseline}, weight: 80}
    - {destination: {host: dwcp-canary}, weight: 20}
`

// testDaemon runs `rewind serve` in-process as a pod would: the
// Deployment's arguments (as applied, --leader-elect included) and its
// downward-API environment, its mounts mapped to a directory holding the
// ConfigMap's policy and the Secret's token (read back from the API
// server), talking to the API server with the ServiceAccount's token. The
// policy is the shipped default with its Prometheus pointed at a real one
// scraping a mesh stand-in, and shorter verification. The daemon takes the
// Lease; a manual rollback through the API drains, undoes, scales down,
// keeps evidence and verifies the default policy's canary.
func (e *applyEnv) testDaemon(t *testing.T, cfg *rest.Config, token string) {
	ctx := t.Context()
	kubetest.CanaryDeployment(t, e.admin, canaryNS, "dwcp-canary", kubetest.Canary{Replicas: 2})
	var vs unstructured.Unstructured
	if err := yaml.Unmarshal([]byte(dwcpVirtualService), &vs.Object); err != nil {
		t.Fatal(err)
	}
	istiotest.Create(t, e.dyn, &vs)
	mesh := testenv.StartMesh(t, e.dyn, canaryNS, "dwcp-service", map[string]string{"dwcp-canary": "canary", "dwcp-baseline": "baseline"}, 50)
	prom := testenv.StartPrometheusScraping(t, []string{mesh.Addr}, time.Second)
	waitForRates(t, prom.URL)

	// The files the kubelet would mount, from the objects as applied.
	dep, err := e.admin.AppsV1().Deployments(namespace).Get(ctx, appName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm, err := e.admin.CoreV1().ConfigMaps(namespace).Get(ctx, policyCMName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := e.admin.CoreV1().Secrets(namespace).Get(ctx, tokenSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	c := dep.Spec.Template.Spec.Containers[0]
	volumes := map[string]corev1.Volume{}
	for _, v := range dep.Spec.Template.Spec.Volumes {
		volumes[v.Name] = v
	}
	// In a pod, the in-cluster configuration is the ServiceAccount's token;
	// here a kubeconfig with such a token, found through $KUBECONFIG (the
	// executors' and the Lease's fallback outside a cluster).
	kubeconfig := filepath.Join(root, "serviceaccount.kubeconfig")
	writeKubeconfig(t, kubeconfig, cfg)
	t.Setenv("KUBECONFIG", kubeconfig)
	pods, err := e.admin.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(dep.Spec.Selector)})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("the Deployment's pods: %v", err)
	}
	pod := pods.Items[0]
	for _, ev := range c.Env { // the downward API
		switch {
		case ev.ValueFrom != nil && ev.ValueFrom.FieldRef != nil && ev.ValueFrom.FieldRef.FieldPath == "metadata.name":
			t.Setenv(ev.Name, pod.Name)
		case ev.ValueFrom != nil && ev.ValueFrom.FieldRef != nil && ev.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			t.Setenv(ev.Name, pod.Namespace)
		case ev.ValueFrom == nil:
			t.Setenv(ev.Name, ev.Value)
		}
	}
	for _, m := range c.VolumeMounts {
		dir := filepath.Join(root, m.MountPath)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		v := volumes[m.Name]
		switch {
		case v.ConfigMap != nil:
			for _, it := range v.ConfigMap.Items {
				text := e.testPolicy(t, cm.Data[it.Key], prom.URL)
				if err := os.WriteFile(filepath.Join(dir, it.Path), []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		case v.Secret != nil:
			for _, it := range v.Secret.Items {
				if err := os.WriteFile(filepath.Join(dir, it.Path), secret.Data[it.Key], 0o440); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	var args []string
	for _, a := range c.Args {
		name, val, ok := strings.Cut(a, "=")
		switch {
		case ok && name == "--listen":
			a = "--listen=127.0.0.1:0"
		case ok && strings.HasPrefix(val, "/"):
			a = name + "=" + filepath.Join(root, val)
		case strings.HasPrefix(a, "/"):
			t.Fatalf("argument %s: use --flag=value, so that this test can map paths", a)
		}
		args = append(args, a)
	}
	base, logs := runDaemon(t, args)

	// It leads, through the Lease, as the ServiceAccount.
	poll(ctx, t, "the daemon leading", func() (bool, string) {
		_, metrics := call(t, "GET", base+"/metrics", "", "")
		return strings.Contains(metrics, "\nrewind_leader 1\n"), grepLines(metrics, "rewind_leader") + "\n" + logs.String()
	})
	if l := e.lease(t); l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != pod.Name {
		t.Errorf("Lease holder %v, want the pod's name %s", l.Spec.HolderIdentity, pod.Name)
	}

	code, body := call(t, "POST", base+"/api/v1/rollbacks", token, `{"system":"dwcp-manager","reason":"customer-escalation"}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST /api/v1/rollbacks: %d %s\nlogs:\n%s", code, body, logs)
	}
	var rollbacks struct {
		Rollbacks []struct{ ID, State string }
	}
	testenv.Eventually(t, 3*time.Minute, "a finished rollback", func() (bool, string) {
		_, body := call(t, "GET", base+"/api/v1/rollbacks", token, "")
		_ = json.Unmarshal([]byte(body), &rollbacks)
		return len(rollbacks.Rollbacks) > 0 && rollbacks.Rollbacks[0].State != "running", body + "\nlogs:\n" + logs.String()
	})
	if len(rollbacks.Rollbacks) != 1 || rollbacks.Rollbacks[0].State != "succeeded" {
		_, detail := call(t, "GET", base+"/api/v1/rollbacks/"+rollbacks.Rollbacks[0].ID, token, "")
		t.Fatalf("rollbacks %+v\n%s\nlogs:\n%s", rollbacks, detail, logs)
	}
	d, err := e.admin.AppsV1().Deployments(canaryNS).Get(ctx, "dwcp-canary", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Spec.Template.Spec.Containers[0].Image != kubetest.ImageV1 || *d.Spec.Replicas != 0 {
		t.Errorf("dwcp-canary at %s with %d replicas, want %s scaled to 0", d.Spec.Template.Spec.Containers[0].Image, *d.Spec.Replicas, kubetest.ImageV1)
	}
	if w := istiotest.Weights(istiotest.Get(t, e.dyn, canaryNS, "dwcp-service"))["split"]; len(w) != 2 || w[0] != "dwcp-baseline=100" || w[1] != "dwcp-canary=0" {
		t.Errorf("weights after the rollback: %v", w)
	}
	_, metrics := call(t, "GET", base+"/metrics", "", "")
	if !strings.Contains(metrics, `rewind_rollbacks_total{result="succeeded",system="dwcp-manager",trigger="manual"} 1`) {
		t.Errorf("/metrics does not count the manual rollback:\n%s", grepLines(metrics, "rewind_rollbacks_total"))
	}
}

// testPolicy is the ConfigMap's policy pointed at the test's Prometheus,
// with a shorter drain and verification.
func (e *applyEnv) testPolicy(t *testing.T, text, promURL string) string {
	t.Helper()
	for _, r := range [][2]string{
		{"http://prometheus:9090", promURL},
		{"istio: { virtualService: dwcp-service, baselineHost: dwcp-baseline }",
			"istio: { virtualService: dwcp-service, baselineHost: dwcp-baseline, canaryHost: dwcp-canary }"},
		{"        for: 30s\n        timeout: 2m", "        for: 3s\n        timeout: 1m"},
		{"within: 1m", "within: 30s"},
	} {
		if strings.Count(text, r[0]) != 1 {
			t.Fatalf("the ConfigMap's policy no longer has %q once: update this test", r[0])
		}
		text = strings.Replace(text, r[0], r[1], 1)
	}
	if _, err := policy.Parse("policy.yaml", []byte(text)); err != nil {
		t.Fatalf("the test's policy: %v", err)
	}
	return text
}

// writeKubeconfig writes cfg (server, CA, bearer token) as a kubeconfig.
func writeKubeconfig(t *testing.T, path string, cfg *rest.Config) {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["rewind"] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts["rewind"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "rewind", Namespace: namespace}
	kc.CurrentContext = "rewind"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
}

// waitForRates waits until Prometheus has the mesh's request rates.
func waitForRates(t *testing.T, promURL string) {
	t.Helper()
	testenv.Eventually(t, time.Minute, "the mesh's request rates in Prometheus", func() (bool, string) {
		v, err := instantQuery(promURL, `sum(irate(http_requests_total{version="baseline"}[1m]))`, time.Now())
		return err == nil && len(v) == 1 && v[0] > 0, fmt.Sprint(v, err)
	})
}

var listening = regexp.MustCompile(`listening on (http://\S+)`)

// runDaemon runs `rewind ARGS` in-process until the test ends and returns
// its base URL and its log.
func runDaemon(t *testing.T, args []string) (string, *testenv.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, logs := &testenv.Buffer{}, &testenv.Buffer{}
	done := make(chan int, 1)
	go func() { done <- cli.Main(ctx, args, &cli.Env{Stdout: out, Stderr: logs, Now: time.Now}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("rewind serve did not stop within 30 s")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			return m[1], logs
		}
		select {
		case code := <-done:
			t.Fatalf("rewind %s exited %d:\n%s%s", strings.Join(args, " "), code, out, logs)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("rewind serve did not start:\n%s%s", out, logs)
		}
	}
}

func call(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
