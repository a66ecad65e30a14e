package testenv

// A real Kubernetes control plane for tests (docs/testing.md): etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler built from the
// Kubernetes Go modules pinned in tools/kube, and kwok making pods Running
// and Ready on a fake node. .ci/build-kube builds and caches the binaries.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// KubeVersion is the Kubernetes release the control plane is built from. It
// must match k8s.io/kubernetes in tools/kube/go.mod: .ci/build-kube caches
// the binaries in $REWIND_CACHE/kube-<KubeVersion>/bin.
const KubeVersion = "v1.37.2"

// Users known to the API server's static token file.
const (
	// KubeAdminUser is in group system:masters: allowed everything.
	KubeAdminUser = "admin"
	// KubeRewindUser has no RBAC grants of its own: a test binds it the
	// roles it wants to exercise (e.g. deploy/'s Role) and checks that a
	// missing verb is forbidden.
	KubeRewindUser = "rewind"
)

// KubeNodeName is the fake node kwok runs pods on. Its annotation
// kwok.x-k8s.io/node=fake is how kwok picks the nodes it manages.
const KubeNodeName = "kwok-node-0"

// KubeServiceCIDR is the API server's --service-cluster-ip-range.
const KubeServiceCIDR = "10.96.0.0/16"

// kubeBins are the executables StartKube needs, plus kwok's stage config
// that .ci/build-kube writes beside them.
var kubeBins = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}

const kubeStagesFile = "kwok-stages.yaml"

// Kube is a running control plane. Its processes are stopped, and their logs
// dumped to the test log if the test failed, by t.Cleanup.
type Kube struct {
	t       testing.TB
	dir     string // temp dir: certs, tokens, kubeconfigs, etcd data, logs
	binDir  string
	host    string // https://127.0.0.1:PORT
	caPEM   []byte
	tokens  map[string]string // user -> bearer token
	kubecfg string            // admin kubeconfig path

	apiserverArgs []string
	podLogFile    string
	prevLogFile   string

	mu      sync.Mutex
	procs   []*kubeProc // start order; stopped in reverse
	stopped bool
}

// kubeProc is one child process with its output in a log file.
type kubeProc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	err     error         // Wait's result, valid after done
}

// kubeTimeouts bound every wait in StartKube. A 2-core machine with a cold
// page cache needs ~10 s for the API server; these leave ample room.
const (
	kubeEtcdTimeout      = 60 * time.Second
	kubeAPIServerTimeout = 120 * time.Second
	kubeReadyTimeout     = 90 * time.Second
	kubeStopTimeout      = 10 * time.Second
)

// StartKube starts etcd, kube-apiserver (token authentication, RBAC),
// kube-controller-manager, kube-scheduler and kwok on free loopback ports,
// registers a fake node that kwok keeps Ready (its pods become Running and
// Ready at once), installs the CRDs in testdata/crds, and returns when all of
// it is ready. Everything is stopped by t.Cleanup.
//
// The binaries are looked up in $REWIND_KUBE_BIN, else in
// ${REWIND_CACHE:-$HOME/.cache/rewind}/kube-<KubeVersion>/bin (where
// .ci/build-kube puts them). If they are missing the test is skipped, or
// fails when the CI environment variable is set.
func StartKube(t testing.TB) *Kube {
	t.Helper()
	root := kubeRepoRoot(t)
	kubeCheckPin(t, root)
	binDir := kubeFindBinaries(t)

	k := &Kube{t: t, dir: t.TempDir(), binDir: binDir}
	t.Cleanup(k.cleanup)

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	k.writeSecrets()
	etcdURL := k.startEtcd(ctx)
	k.startAPIServer(ctx, etcdURL)

	kwokPort := kubeFreePort(t)
	k.writeKubeconfigs()
	k.startControllerManager()
	k.startScheduler()
	k.startKwok(kwokPort)

	admin := k.clientset(k.AdminConfig())
	// The API server warns of `format: binary` in Istio's schema, as it
	// does in a cluster with Istio; that is no news for every test log.
	crdConfig := k.AdminConfig()
	crdConfig.WarningHandler = rest.NoWarnings{}
	dyn, err := dynamic.NewForConfig(crdConfig)
	if err != nil {
		t.Fatalf("kube: dynamic client: %v", err)
	}
	k.createNode(ctx, admin)
	crds := k.installCRDs(ctx, dyn, filepath.Join(root, "testdata", "crds"))

	k.waitFor(ctx, kubeReadyTimeout, "node "+KubeNodeName+" Ready (kwok)", func(ctx context.Context) (bool, error) {
		n, err := admin.CoreV1().Nodes().Get(ctx, KubeNodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue, fmt.Errorf("Ready=%s: %s", c.Status, c.Message)
			}
		}
		return false, errors.New("no Ready condition yet")
	})
	// The service-account controller creating default/default shows that
	// kube-controller-manager is up and its informers have synced.
	k.waitFor(ctx, kubeReadyTimeout, "kube-controller-manager (ServiceAccount default/default)", func(ctx context.Context) (bool, error) {
		_, err := admin.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})
	k.waitCRDs(ctx, dyn, crds)

	t.Logf("kube: control plane %s ready at %s in %s (dir %s)", KubeVersion, k.host, time.Since(start).Round(time.Millisecond), k.dir)
	return k
}

// AdminConfig returns a new client config for the admin user (system:masters).
func (k *Kube) AdminConfig() *rest.Config { return k.ConfigFor(KubeAdminUser) }

// ConfigFor returns a new client config that authenticates as user. The
// users of the static token file (KubeAdminUser, KubeRewindUser) use their
// own bearer tokens. Any other name is the admin impersonating that user in
// group system:authenticated — RBAC then decides as it would for that user.
// A service account name "system:serviceaccount:NS:NAME" also gets the
// groups system:serviceaccounts and system:serviceaccounts:NS.
func (k *Kube) ConfigFor(user string) *rest.Config {
	c := &rest.Config{
		Host:            k.host,
		TLSClientConfig: rest.TLSClientConfig{CAData: append([]byte(nil), k.caPEM...)},
		QPS:             200,
		Burst:           400,
		Timeout:         30 * time.Second,
		UserAgent:       "rewind-testenv/" + user,
	}
	if tok, ok := k.tokens[user]; ok {
		c.BearerToken = tok
		return c
	}
	c.BearerToken = k.tokens[KubeAdminUser]
	c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: kubeImpersonatedGroups(user)}
	return c
}

// Kubeconfig returns the path of a kubeconfig file for the admin user.
func (k *Kube) Kubeconfig() string { return k.kubecfg }

// KubeconfigFor writes, once, a kubeconfig file that authenticates as user
// (as ConfigFor does) and returns its path: for a Rewind process under test.
func (k *Kube) KubeconfigFor(user string) string {
	k.t.Helper()
	if user == KubeAdminUser {
		return k.kubecfg
	}
	path := filepath.Join(k.dir, "kubeconfig-"+strings.NewReplacer(":", "_", "/", "_").Replace(user))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	k.writeKubeconfig(path, user)
	return path
}

// Host is the API server's URL (https://127.0.0.1:PORT).
func (k *Kube) Host() string { return k.host }

// CAData is the PEM CA that signed the API server's serving certificate.
func (k *Kube) CAData() []byte { return append([]byte(nil), k.caPEM...) }

// PodLogFiles are the files kwok serves as the logs of every container on
// the fake node (pods/log), and as the previous container's logs
// (?previous=true). Each line is in the CRI log format, e.g.
// "2026-01-02T15:04:05.000000000Z stdout F some text". Tests may rewrite them.
func (k *Kube) PodLogFiles() (current, previous string) { return k.podLogFile, k.prevLogFile }

// StopAPIServer kills kube-apiserver (SIGKILL, as in a crash: its clients
// see connections refused at once), for tests of an API server that goes
// away mid-operation. StartAPIServer brings it back with the same state.
func (k *Kube) StopAPIServer() {
	k.t.Helper()
	p := k.proc("kube-apiserver")
	if p == nil {
		k.t.Fatalf("kube: kube-apiserver is not running")
	}
	k.stopProc(p, false)
}

// StartAPIServer restarts a stopped kube-apiserver on the same port with the
// same flags, and waits until it is ready again.
func (k *Kube) StartAPIServer() {
	k.t.Helper()
	if p := k.proc("kube-apiserver"); p != nil {
		select {
		case <-p.done:
		default:
			k.t.Fatalf("kube: kube-apiserver is already running")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), kubeAPIServerTimeout)
	defer cancel()
	k.start("kube-apiserver", k.apiserverArgs, nil)
	k.waitAPIServer(ctx)
}

// Stop stops every process: kwok, scheduler, controller manager, API
// server, etcd, in that order, so that the API server has no clients left
// to drain. t.Cleanup calls it; it is safe to call twice.
func (k *Kube) Stop() {
	k.mu.Lock()
	if k.stopped {
		k.mu.Unlock()
		return
	}
	k.stopped = true
	procs := append([]*kubeProc(nil), k.procs...)
	k.mu.Unlock()
	for i := len(kubeBins) - 1; i >= 0; i-- {
		for _, p := range procs {
			if p.name == kubeBins[i] {
				k.stopProc(p, true)
			}
		}
	}
}

func (k *Kube) cleanup() {
	k.Stop()
	if k.t.Failed() {
		k.dumpLogs()
	}
}

// ---- binaries and files ----

func kubeFindBinaries(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("REWIND_KUBE_BIN")
	if dir == "" {
		cache := os.Getenv("REWIND_CACHE")
		if cache == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				t.Fatalf("kube: no REWIND_CACHE and no home directory: %v", err)
			}
			cache = filepath.Join(home, ".cache", "rewind")
		}
		dir = filepath.Join(cache, "kube-"+KubeVersion, "bin")
	}
	var missing []string
	for _, b := range kubeBins {
		if info, err := os.Stat(filepath.Join(dir, b)); err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
			missing = append(missing, b)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, kubeStagesFile)); err != nil {
		missing = append(missing, kubeStagesFile)
	}
	if len(missing) > 0 {
		reason := fmt.Sprintf("Kubernetes %s control plane not built: %s missing in %s (run .ci/build-kube, ~15 min cold; REWIND_KUBE_BIN overrides the dir)",
			KubeVersion, strings.Join(missing, ", "), dir)
		if os.Getenv("CI") != "" {
			t.Fatalf("%s; CI must not skip this test", reason)
		}
		t.Skip(reason)
	}
	return dir
}

// kubeCheckPin fails the test if tools/kube/go.mod pins another Kubernetes
// release than KubeVersion: the cached binaries would be the wrong ones.
func kubeCheckPin(t testing.TB, root string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "tools", "kube", "go.mod"))
	if err != nil {
		t.Fatalf("kube: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "//")
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == "require" {
			f = f[1:]
		}
		if len(f) == 2 && f[0] == "k8s.io/kubernetes" {
			if f[1] != KubeVersion {
				t.Fatalf("kube: tools/kube/go.mod pins k8s.io/kubernetes %s but testenv.KubeVersion is %s: update the constant", f[1], KubeVersion)
			}
			return
		}
	}
	t.Fatalf("kube: no k8s.io/kubernetes requirement in tools/kube/go.mod")
}

// kubeRepoRoot finds the project's root (the go.mod of
// github.com/rewind-sre/rewind) above the working directory, which go test
// sets to the directory of the package under test.
func kubeRepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("kube: %v", err)
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && kubeModulePath(data) == "github.com/rewind-sre/rewind" {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("kube: no go.mod of github.com/rewind-sre/rewind above the working directory")
		}
		dir = parent
	}
}

func kubeModulePath(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// writeSecrets generates the CA and serving certificate, the service
// account key pair and the static token file.
func (k *Kube) writeSecrets() {
	t := k.t
	t.Helper()
	caKey := kubeNewKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "rewind-testenv-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("kube: CA certificate: %v", err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	k.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})

	servingKey := kubeNewKey(t)
	servingTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
		// 10.96.0.1 is the "kubernetes" service's IP in KubeServiceCIDR.
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), net.ParseIP("10.96.0.1")},
	}
	servingDER, err := x509.CreateCertificate(rand.Reader, servingTmpl, caCert, &servingKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("kube: serving certificate: %v", err)
	}
	k.writeFile("ca.crt", k.caPEM)
	k.writeFile("serving.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: servingDER}))
	k.writeFile("serving.key", kubeKeyPEM(t, servingKey))

	saKey := kubeNewKey(t)
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		t.Fatalf("kube: service account public key: %v", err)
	}
	k.writeFile("sa.key", kubeKeyPEM(t, saKey))
	k.writeFile("sa.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub}))

	// Static token file: token,user,uid,"group1,group2".
	k.tokens = map[string]string{KubeAdminUser: kubeToken(t), KubeRewindUser: kubeToken(t)}
	k.writeFile("tokens.csv", []byte(fmt.Sprintf("%s,%s,%s,\"system:masters\"\n%s,%s,%s\n",
		k.tokens[KubeAdminUser], KubeAdminUser, "uid-admin",
		k.tokens[KubeRewindUser], KubeRewindUser, "uid-rewind")))
}

func kubeNewKey(t testing.TB) *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("kube: generating a key: %v", err)
	}
	return key
}

func kubeKeyPEM(t testing.TB, key *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatalf("kube: encoding a key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func kubeToken(t testing.TB) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("kube: token: %v", err)
	}
	return hex.EncodeToString(b)
}

func (k *Kube) path(name string) string { return filepath.Join(k.dir, name) }

func (k *Kube) writeFile(name string, data []byte) {
	if err := os.WriteFile(k.path(name), data, 0o600); err != nil {
		k.t.Fatalf("kube: %v", err)
	}
}

func kubeImpersonatedGroups(user string) []string {
	groups := []string{"system:authenticated"}
	if rest, ok := strings.CutPrefix(user, "system:serviceaccount:"); ok {
		if ns, _, ok := strings.Cut(rest, ":"); ok {
			groups = append(groups, "system:serviceaccounts", "system:serviceaccounts:"+ns)
		}
	}
	return groups
}

func (k *Kube) writeKubeconfigs() {
	k.kubecfg = k.path("kubeconfig")
	k.writeKubeconfig(k.kubecfg, KubeAdminUser)
}

func (k *Kube) writeKubeconfig(path, user string) {
	auth := &clientcmdapi.AuthInfo{}
	if tok, ok := k.tokens[user]; ok {
		auth.Token = tok
	} else {
		auth.Token = k.tokens[KubeAdminUser]
		auth.Impersonate = user
		auth.ImpersonateGroups = kubeImpersonatedGroups(user)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["rewind-test"] = &clientcmdapi.Cluster{Server: k.host, CertificateAuthorityData: k.caPEM}
	cfg.AuthInfos[user] = auth
	cfg.Contexts[user] = &clientcmdapi.Context{Cluster: "rewind-test", AuthInfo: user, Namespace: "default"}
	cfg.CurrentContext = user
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		k.t.Fatalf("kube: writing %s: %v", path, err)
	}
}

// ---- processes ----

func (k *Kube) startEtcd(ctx context.Context) string {
	t := k.t
	t.Helper()
	clientURL := "http://127.0.0.1:" + strconv.Itoa(kubeFreePort(t))
	peerURL := "http://127.0.0.1:" + strconv.Itoa(kubeFreePort(t))
	k.start("etcd", []string{
		"--name=rewind-test",
		"--data-dir=" + k.path("etcd"),
		"--listen-client-urls=" + clientURL,
		"--advertise-client-urls=" + clientURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=rewind-test=" + peerURL,
		"--initial-cluster-state=new",
		"--unsafe-no-fsync=true", // throwaway data: no fsync, much faster
		"--quota-backend-bytes=" + strconv.Itoa(1<<30),
		"--log-level=warn",
	}, nil)
	hc := &http.Client{Timeout: 2 * time.Second}
	k.waitFor(ctx, kubeEtcdTimeout, "etcd /health", func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, clientURL+"/health", nil)
		resp, err := hc.Do(req)
		if err != nil {
			return false, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"health":"true"`)) {
			return false, fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
		}
		return true, nil
	})
	return clientURL
}

// kubeDisabledAdmission turns off the API server's default admission
// plugins but NamespaceLifecycle: no quotas, limit ranges, pod security,
// service-account injection or node taints stand between a test and the
// behaviour of the core controllers.
var kubeDisabledAdmission = []string{
	"LimitRanger", "ServiceAccount", "DefaultStorageClass", "PersistentVolumeClaimResize",
	"DefaultTolerationSeconds", "MutatingAdmissionWebhook", "ValidatingAdmissionWebhook",
	"ResourceQuota", "StorageObjectInUseProtection", "PodGroupProtection", "Priority",
	"TaintNodesByCondition", "RuntimeClass", "CertificateApproval", "CertificateSigning",
	"ClusterTrustBundleAttest", "CertificateSubjectRestriction", "DefaultIngressClass",
	"PodSecurity", "PodTopologyLabels", "MutatingAdmissionPolicy", "ValidatingAdmissionPolicy",
	"NodeDeclaredFeatureValidator", "PodResizeValidator",
}

func (k *Kube) startAPIServer(ctx context.Context, etcdURL string) {
	port := kubeFreePort(k.t)
	k.host = "https://127.0.0.1:" + strconv.Itoa(port)
	k.apiserverArgs = []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + k.path("apiserver-certs"),
		"--tls-cert-file=" + k.path("serving.crt"),
		"--tls-private-key-file=" + k.path("serving.key"),
		"--token-auth-file=" + k.path("tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + k.path("sa.pub"),
		"--service-account-signing-key-file=" + k.path("sa.key"),
		"--service-cluster-ip-range=" + KubeServiceCIDR,
		"--enable-admission-plugins=NamespaceLifecycle",
		"--disable-admission-plugins=" + strings.Join(kubeDisabledAdmission, ","),
		"--allow-privileged=true",
		// Loopback is no valid endpoint address for the "kubernetes" service.
		"--endpoint-reconciler-type=none",
		// Tests burst; flow control would only queue them.
		"--enable-priority-and-fairness=false",
		// pods/log goes to kwok's kubelet endpoint on the node's InternalIP
		// (127.0.0.1); kwok's certificate is the self-signed serving one.
		"--kubelet-preferred-address-types=InternalIP",
		"--profiling=false",
	}
	k.start("kube-apiserver", k.apiserverArgs, nil)
	k.waitAPIServer(ctx)
}

func (k *Kube) waitAPIServer(ctx context.Context) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(k.caPEM)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()
	k.waitFor(ctx, kubeAPIServerTimeout, "kube-apiserver /readyz", func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, k.host+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+k.tokens[KubeAdminUser])
		resp, err := hc.Do(req)
		if err != nil {
			return false, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
		}
		return true, nil
	})
}

func (k *Kube) startControllerManager() {
	k.start("kube-controller-manager", []string{
		"--kubeconfig=" + k.kubecfg,
		"--leader-elect=false",
		"--secure-port=0",
		"--controllers=deployment-controller,replicaset-controller,garbage-collector-controller,namespace-controller,serviceaccount-controller",
		"--concurrent-deployment-syncs=10",
		"--concurrent-replicaset-syncs=10",
		"--kube-api-qps=500",
		"--kube-api-burst=1000",
		"--use-service-account-credentials=false",
	}, nil)
}

func (k *Kube) startScheduler() {
	k.start("kube-scheduler", []string{
		"--kubeconfig=" + k.kubecfg,
		"--leader-elect=false",
		"--secure-port=0",
		"--kube-api-qps=500",
		"--kube-api-burst=1000",
	}, nil)
}

// startKwok runs kwok for nodes annotated kwok.x-k8s.io/node=fake, with the
// stage config built beside the binaries plus a ClusterLogs rule that serves
// PodLogFiles for every container.
func (k *Kube) startKwok(port int) {
	k.podLogFile = k.path("pod.log")
	k.prevLogFile = k.path("pod-previous.log")
	now := time.Now().UTC().Format(time.RFC3339Nano)
	k.writeFile("pod.log", []byte(now+" stdout F rewind testenv: container started\n"+now+" stderr F rewind testenv: serving\n"))
	k.writeFile("pod-previous.log", []byte(now+" stderr F rewind testenv: previous container exited\n"))
	k.writeFile("kwok-logs.yaml", []byte(fmt.Sprintf(`kind: ClusterLogs
apiVersion: kwok.x-k8s.io/v1alpha1
metadata:
  name: rewind-testenv-logs
spec:
  logs:
  - logsFile: %q
    previousLogsFile: %q
`, k.podLogFile, k.prevLogFile)))
	home := k.path("kwok-home") // keep kwok away from ~/.kwok/kwok.yaml
	if err := os.MkdirAll(home, 0o700); err != nil {
		k.t.Fatalf("kube: %v", err)
	}
	k.start("kwok", []string{
		"--kubeconfig=" + k.kubecfg,
		"--config=" + filepath.Join(k.binDir, kubeStagesFile),
		"--config=" + k.path("kwok-logs.yaml"),
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--node-ip=127.0.0.1",
		"--node-name=" + KubeNodeName,
		"--node-port=" + strconv.Itoa(port),
		"--server-address=127.0.0.1:" + strconv.Itoa(port),
		"--tls-cert-file=" + k.path("serving.crt"),
		"--tls-private-key-file=" + k.path("serving.key"),
		"--cidr=10.244.0.0/16",
		"--node-lease-duration-seconds=40",
	}, []string{"HOME=" + home})
}

func (k *Kube) start(name string, args, env []string) *kubeProc {
	k.t.Helper()
	return k.startBinary(name, filepath.Join(k.binDir, name), args, env)
}

// startBinary starts bin as a process of the control plane's (stopped in
// reverse start order, its log dumped when the test fails), logged as name.
func (k *Kube) startBinary(name, bin string, args, env []string) *kubeProc {
	t := k.t
	t.Helper()
	logPath := k.path(name + ".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatalf("kube: %v", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	kubeProcAttr(cmd)
	fmt.Fprintf(f, "==== %s %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(cmd.Args, " "))
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("kube: starting %s: %v", name, err)
	}
	p := &kubeProc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		fmt.Fprintf(f, "==== %s exited: %v\n", time.Now().Format(time.RFC3339Nano), p.err)
		f.Close()
		close(p.done)
	}()
	k.mu.Lock()
	k.procs = append(k.procs, p)
	k.mu.Unlock()
	return p
}

// proc returns the latest process started under name.
func (k *Kube) proc(name string) *kubeProc {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i := len(k.procs) - 1; i >= 0; i-- {
		if k.procs[i].name == name {
			return k.procs[i]
		}
	}
	return nil
}

// stopProc asks the process to stop (SIGTERM) if graceful, kills it at once
// or after kubeStopTimeout, and waits for the exit.
func (k *Kube) stopProc(p *kubeProc, graceful bool) {
	select {
	case <-p.done:
		return
	default:
	}
	if graceful {
		kubeTerminate(p.cmd)
		timer := time.NewTimer(kubeStopTimeout)
		defer timer.Stop()
		select {
		case <-p.done:
			return
		case <-timer.C:
		}
	}
	kubeKill(p.cmd)
	select {
	case <-p.done:
	case <-time.After(kubeStopTimeout):
		k.t.Errorf("kube: %s (pid %d) did not exit after SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

// waitFor polls cond every 100 ms until it returns true. An error from cond
// means "not yet" and is reported if the wait times out. The test fails after
// timeout, or as soon as a control-plane process has exited.
func (k *Kube) waitFor(ctx context.Context, timeout time.Duration, what string, cond func(context.Context) (bool, error)) {
	t := k.t
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	var last error
	for {
		ok, err := cond(ctx)
		if ok {
			return
		}
		if err != nil {
			last = err
		}
		for _, name := range kubeBins {
			if p := k.proc(name); p != nil {
				select {
				case <-p.done:
					t.Fatalf("kube: %s exited (%v) while waiting for %s; its log:\n%s", name, p.err, what, kubeTail(p.logPath, 64<<10))
				default:
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("kube: %s not reached within %s (last: %v)", what, time.Since(start).Round(time.Millisecond), last)
		case <-tick.C:
		}
	}
}

// ---- cluster objects ----

func (k *Kube) clientset(c *rest.Config) *kubernetes.Clientset {
	cs, err := kubernetes.NewForConfig(c)
	if err != nil {
		k.t.Fatalf("kube: client: %v", err)
	}
	return cs
}

func (k *Kube) createNode(ctx context.Context, cs *kubernetes.Clientset) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: KubeNodeName,
		Annotations: map[string]string{
			"kwok.x-k8s.io/node":           "fake",
			"node.alpha.kubernetes.io/ttl": "0",
		},
		Labels: map[string]string{
			"kubernetes.io/hostname": KubeNodeName,
			"kubernetes.io/os":       "linux",
			"kubernetes.io/arch":     "amd64",
			"type":                   "kwok",
		},
	}}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		k.t.Fatalf("kube: creating node %s: %v", KubeNodeName, err)
	}
}

var kubeCRDResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installCRDs creates every CustomResourceDefinition in dir's *.yaml files.
func (k *Kube) installCRDs(ctx context.Context, dyn dynamic.Interface, dir string) []*unstructured.Unstructured {
	t := k.t
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	yml, _ := filepath.Glob(filepath.Join(dir, "*.yml"))
	files = append(files, yml...)
	if len(files) == 0 {
		t.Fatalf("kube: no CRD manifests in %s", dir)
	}
	var crds []*unstructured.Unstructured
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			t.Fatalf("kube: %v", err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bufio.NewReader(f), 4096)
		for {
			obj := map[string]any{}
			err := dec.Decode(&obj)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				f.Close()
				t.Fatalf("kube: decoding %s: %v", file, err)
			}
			if len(obj) == 0 {
				continue
			}
			u := &unstructured.Unstructured{Object: obj}
			if u.GetKind() != "CustomResourceDefinition" {
				f.Close()
				t.Fatalf("kube: %s: %s %q is no CustomResourceDefinition", file, u.GetKind(), u.GetName())
			}
			created, err := dyn.Resource(kubeCRDResource).Create(ctx, u, metav1.CreateOptions{})
			if err != nil {
				f.Close()
				t.Fatalf("kube: creating CRD %s from %s: %v", u.GetName(), file, err)
			}
			crds = append(crds, created)
		}
		f.Close()
	}
	return crds
}

// waitCRDs waits until each CRD is Established and every served version
// answers a list request.
func (k *Kube) waitCRDs(ctx context.Context, dyn dynamic.Interface, crds []*unstructured.Unstructured) {
	for _, crd := range crds {
		name := crd.GetName()
		k.waitFor(ctx, kubeReadyTimeout, "CRD "+name+" Established", func(ctx context.Context) (bool, error) {
			u, err := dyn.Resource(kubeCRDResource).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, c := range conds {
				if m, ok := c.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
					return true, nil
				}
			}
			return false, fmt.Errorf("conditions %v", conds)
		})
		group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
		plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
		versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
		for _, v := range versions {
			m, _ := v.(map[string]any)
			if served, _ := m["served"].(bool); !served {
				continue
			}
			gvr := schema.GroupVersionResource{Group: group, Version: fmt.Sprint(m["name"]), Resource: plural}
			k.waitFor(ctx, kubeReadyTimeout, "serving "+gvr.String(), func(ctx context.Context) (bool, error) {
				_, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1})
				return err == nil, err
			})
		}
	}
}

// ---- logs ----

// dumpLogs writes the tail of every process's log to the test log.
func (k *Kube) dumpLogs() {
	k.mu.Lock()
	procs := append([]*kubeProc(nil), k.procs...)
	k.mu.Unlock()
	seen := map[string]bool{}
	for _, p := range procs {
		if seen[p.logPath] {
			continue
		}
		seen[p.logPath] = true
		k.t.Logf("kube: ---- %s (%s) ----\n%s", p.name, p.logPath, kubeTail(p.logPath, 256<<10))
	}
}

// kubeTail returns the last max bytes of a file.
func kubeTail(path string, max int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	prefix := ""
	if info.Size() > max {
		if _, err := f.Seek(-max, io.SeekEnd); err != nil {
			return err.Error()
		}
		prefix = fmt.Sprintf("[... first %d bytes left out]\n", info.Size()-max)
	}
	data, _ := io.ReadAll(f)
	return prefix + string(data)
}

// kubeFreePort returns a loopback port that was free a moment ago.
func kubeFreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("kube: finding a free loopback port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
