package testenv

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// ArgoCDNamespace is where StartArgoCD runs Argo CD: its settings, its
// AppProject "default" and the Applications of the tests live there.
const ArgoCDNamespace = "argocd"

// ArgoCD is a real Argo CD against a Kube: redis-server (Debian), and the
// repo server and the application controller from the multi-call argocd
// binary that .ci/build-argocd builds from the pinned Go module
// (ARGOCD_BINARY_NAME selects the component). The controller manages the
// in-cluster destination https://kubernetes.default.svc with the admin
// credentials; the repo server clones over HTTP with Debian's git.
type ArgoCD struct {
	// ResyncPeriod is the controller's --app-resync: how often it compares
	// every Application with Git even without a change in the cluster.
	ResyncPeriod time.Duration
	// Server is the destination server of Applications: the control plane,
	// registered as an Argo CD cluster (a cluster Secret with the admin's
	// token). Argo CD's in-cluster destination needs a pod's service
	// account, which a test process does not have.
	Server string
}

// ArgoCDOptions configures StartArgoCD.
type ArgoCDOptions struct {
	ResyncPeriod time.Duration // default 5 s
}

// StartArgoCD installs Argo CD's CRDs (from the build's crds/ dir), its
// namespace, argocd-cm, argocd-secret and the default AppProject, starts
// redis-server, the repo server and the application controller as
// processes of k (stopped with it; their logs in the test log on failure).
// Applications name ArgoCD.Server as their destination.
// Without the build the test is skipped (fails with CI set).
func StartArgoCD(t testing.TB, k *Kube, opts ArgoCDOptions) *ArgoCD {
	t.Helper()
	bin := argoBinDir(t)
	redis := lookBinary(t, "redis-server", "redis-server")
	if opts.ResyncPeriod == 0 {
		opts.ResyncPeriod = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := k.AdminConfig()
	cfg.WarningHandler = rest.NoWarnings{}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	crds := k.installCRDs(ctx, dyn, filepath.Join(bin, "crds"))
	k.waitCRDs(ctx, dyn, crds)
	argoSettings(ctx, t, k, dyn)

	dir := t.TempDir()
	env := []string{"TMPDIR=" + dir, "HOME=" + dir, "ARGOCD_GPG_ENABLED=false",
		"ARGOCD_ASK_PASS_SOCK=" + filepath.Join(dir, "askpass.sock"), "GIT_CONFIG_NOSYSTEM=1"}
	redisAddr := freeLoopbackAddr(t)
	_, redisPort, _ := net.SplitHostPort(redisAddr)
	k.startBinary("redis-server", redis, []string{"--bind", "127.0.0.1", "--port", redisPort, "--save", "", "--appendonly", "no", "--dir", dir}, nil)

	repoAddr := freeLoopbackAddr(t)
	repoHost, repoPort, _ := net.SplitHostPort(repoAddr)
	k.startBinary("argocd-repo-server", filepath.Join(bin, "argocd"), []string{
		"--address", repoHost, "--port", repoPort, "--metrics-address", "127.0.0.1", "--metrics-port", freePort(t),
		"--redis", redisAddr, "--disable-tls", "--client-ca-path", "", "--logformat", "text", "--loglevel", "info",
		// What a branch resolves to is cached this long (as an install's
		// timeout.reconciliation sets it): a new commit is seen within one period.
		"--revision-cache-expiration", opts.ResyncPeriod.String(),
	}, append(env, "ARGOCD_BINARY_NAME=argocd-repo-server",
		// Its git-verify-wrapper.sh, which the repo server runs, is in bin.
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH")))
	waitTCP(t, repoAddr, time.Minute, "argocd-repo-server")

	k.startBinary("argocd-application-controller", filepath.Join(bin, "argocd"), []string{
		"--kubeconfig", k.Kubeconfig(), "--namespace", ArgoCDNamespace,
		"--repo-server", repoAddr, "--repo-server-plaintext", "--redis", redisAddr,
		"--metrics-port", freePort(t), "--app-resync", strconv.Itoa(int(opts.ResyncPeriod.Seconds())),
		"--status-processors", "2", "--operation-processors", "2", "--logformat", "text", "--loglevel", "info",
	}, append(env, "ARGOCD_BINARY_NAME=argocd-application-controller"))
	return &ArgoCD{ResyncPeriod: opts.ResyncPeriod, Server: k.Host()}
}

var (
	appProjectGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "appprojects"}
)

// argoSettings creates the namespace, argocd-cm, argocd-secret and the
// default AppProject (which Argo CD's API server would create).
func argoSettings(ctx context.Context, t testing.TB, k *Kube, dyn dynamic.Interface) {
	t.Helper()
	cs := k.clientset(k.AdminConfig())
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ArgoCDNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("argocd: %v", err)
	}
	labels := map[string]string{"app.kubernetes.io/part-of": "argocd"}
	if _, err := cs.CoreV1().ConfigMaps(ArgoCDNamespace).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "argocd-cm", Namespace: ArgoCDNamespace, Labels: labels},
		Data:       map[string]string{"application.resourceTrackingMethod": "annotation", "cluster.inClusterEnabled": "false"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("argocd: %v", err)
	}
	admin := k.AdminConfig()
	clusterConfig, _ := json.Marshal(map[string]any{"bearerToken": admin.BearerToken,
		"tlsClientConfig": map[string]any{"caData": base64.StdEncoding.EncodeToString(k.CAData())}})
	if _, err := cs.CoreV1().Secrets(ArgoCDNamespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "cluster-test", Namespace: ArgoCDNamespace, Labels: map[string]string{"argocd.argoproj.io/secret-type": "cluster"}},
		StringData: map[string]string{"name": "test", "server": k.Host(), "config": string(clusterConfig)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("argocd: cluster secret: %v", err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if _, err := cs.CoreV1().Secrets(ArgoCDNamespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "argocd-secret", Namespace: ArgoCDNamespace, Labels: labels},
		Data:       map[string][]byte{"server.secretkey": []byte(hex.EncodeToString(key))},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("argocd: %v", err)
	}
	proj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
		"metadata": map[string]any{"name": "default", "namespace": ArgoCDNamespace},
		"spec": map[string]any{
			"sourceRepos":              []any{"*"},
			"destinations":             []any{map[string]any{"server": "*", "namespace": "*"}},
			"clusterResourceWhitelist": []any{map[string]any{"group": "*", "kind": "*"}},
		},
	}}
	if _, err := dyn.Resource(appProjectGVR).Namespace(ArgoCDNamespace).Create(ctx, proj, metav1.CreateOptions{}); err != nil {
		t.Fatalf("argocd: AppProject default: %v", err)
	}
}

func freePort(t testing.TB) string {
	_, p, _ := net.SplitHostPort(freeLoopbackAddr(t))
	return p
}

// waitTCP waits until addr accepts connections.
func waitTCP(t testing.TB, addr string, bound time.Duration, what string) {
	t.Helper()
	Eventually(t, bound, what+" listening on "+addr, func() (bool, string) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
}

func argoBinDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("REWIND_ARGOCD_BIN")
	if dir == "" {
		version := goModVersion(t, filepath.Join(kubeRepoRoot(t), "tools", "argocd", "go.mod"), "github.com/argoproj/argo-cd/v3")
		dir = filepath.Join(cacheDir(t), "argocd-"+version, "bin")
	}
	if info, err := os.Stat(filepath.Join(dir, "argocd")); err == nil && info.Mode()&0o111 != 0 {
		_, errCRD := os.Stat(filepath.Join(dir, "crds", "application-crd.yaml"))
		_, errWrapper := os.Stat(filepath.Join(dir, "git-verify-wrapper.sh"))
		if errCRD == nil && errWrapper == nil {
			return dir
		}
	}
	reason := fmt.Sprintf("Argo CD not built: no argocd, crds/ and git-verify-wrapper.sh in %s (run .ci/build-argocd, ~10 min cold; REWIND_ARGOCD_BIN overrides the dir)", dir)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s; CI must not skip this test", reason)
	}
	t.Skip(reason)
	return ""
}

// InstallArgoCDCRDs installs only Argo CD's CRDs (Application,
// ApplicationSet, AppProject) from the build, for tests of objects without
// the controllers. Without the build the test is skipped (fails with CI set).
func InstallArgoCDCRDs(t testing.TB, k *Kube) {
	t.Helper()
	bin := argoBinDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := k.AdminConfig()
	cfg.WarningHandler = rest.NoWarnings{}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	k.waitCRDs(ctx, dyn, k.installCRDs(ctx, dyn, filepath.Join(bin, "crds")))
}
