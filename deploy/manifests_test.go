package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	serializerjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/rewind-sre/rewind/cli"
)

var update = flag.Bool("update", false, "rewrite the generated deploy/policy-configmap.yaml")

// Names the manifests share.
const (
	namespace    = "rewind"
	appName      = "rewind"
	leaseName    = "rewind-leader"
	policyCMName = "rewind-policy"
	policyCMKey  = "policy.yaml"
	tokenSecret  = "rewind-api-token"
	tokenKey     = "token"
	policyCMFile = "policy-configmap.yaml"
	imageRepo    = "ghcr.io/rewind-sre/rewind"
	canaryNS     = "dwcp" // rbac.yaml's example RoleBinding
)

// kustomizationResources reads kustomization.yaml's resources.
func kustomizationResources(t testing.TB) (resources []string, images []kustomizeImage) {
	t.Helper()
	data, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		APIVersion string           `json:"apiVersion"`
		Kind       string           `json:"kind"`
		Resources  []string         `json:"resources"`
		Images     []kustomizeImage `json:"images"`
	}
	if err := yaml.UnmarshalStrict(data, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Fatalf("kustomization.yaml: %s %s", k.APIVersion, k.Kind)
	}
	return k.Resources, k.Images
}

type kustomizeImage struct {
	Name    string `json:"name"`
	NewName string `json:"newName,omitempty"`
	NewTag  string `json:"newTag,omitempty"`
	Digest  string `json:"digest,omitempty"`
}

// manifestDoc is one YAML document of a manifest file.
type manifestDoc struct {
	file string
	raw  []byte
	obj  *unstructured.Unstructured
}

// readManifests decodes every document of the kustomization's resources.
func readManifests(t testing.TB) []manifestDoc {
	t.Helper()
	resources, _ := kustomizationResources(t)
	var docs []manifestDoc
	for _, f := range resources {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("kustomization.yaml lists %s: %v", f, err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(bytes.TrimSpace(stripComments(doc))) == 0 {
				continue
			}
			var obj unstructured.Unstructured
			if err := yaml.Unmarshal(doc, &obj.Object); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			docs = append(docs, manifestDoc{file: f, raw: doc, obj: &obj})
		}
	}
	return docs
}

func stripComments(doc []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

// strict decodes a manifest into its typed object, refusing unknown or
// duplicate fields.
var strict = serializerjson.NewSerializerWithOptions(serializerjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
	serializerjson.SerializerOptions{Yaml: true, Strict: true})

func typed(t testing.TB, d manifestDoc) runtime.Object {
	t.Helper()
	obj, _, err := strict.Decode(d.raw, nil, nil)
	if err != nil {
		t.Fatalf("%s: %s %s: %v", d.file, d.obj.GetKind(), d.obj.GetName(), err)
	}
	return obj
}

func findTyped[T runtime.Object](t testing.TB, docs []manifestDoc, file string) T {
	t.Helper()
	var zero T
	for _, d := range docs {
		if file != "" && d.file != file {
			continue
		}
		if d.obj.GetKind() == "CustomResourceDefinition" {
			continue
		}
		if o, ok := typed(t, d).(T); ok {
			return o
		}
	}
	t.Fatalf("no %T in %s", zero, file)
	return zero
}

func loadDeployment(t testing.TB) *appsv1.Deployment {
	return findTyped[*appsv1.Deployment](t, readManifests(t), "deployment.yaml")
}

// flagValue is the value of --name in args (--name=V or --name V).
func flagValue(args []string, name string) string {
	for i, a := range args {
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// serveFlags are the flags `rewind serve -h` documents, and its text.
func serveFlags(t testing.TB) ([]string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := cli.Main(context.Background(), []string{"serve", "-h"}, &cli.Env{Stdout: &stdout, Stderr: &stderr}); code != 0 {
		t.Fatalf("rewind serve -h: exit %d\n%s", code, &stderr)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-[a-z], )?--([a-z][a-z0-9-]*)`).FindAllStringSubmatch(stdout.String(), -1) {
		names = append(names, m[1])
	}
	if len(names) < 3 {
		t.Fatalf("rewind serve -h lists no flags:\n%s", &stdout)
	}
	return names, stdout.String()
}

// TestKustomizationListsEveryManifest: every manifest of deploy/ is a
// resource of the kustomization, and every resource exists.
func TestKustomizationListsEveryManifest(t *testing.T) {
	resources, images := kustomizationResources(t)
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files = slices.DeleteFunc(files, func(f string) bool { return f == "kustomization.yaml" })
	got := slices.Sorted(slices.Values(resources))
	sort.Strings(files)
	if !slices.Equal(got, files) {
		t.Errorf("kustomization.yaml lists %v; deploy/ has %v", got, files)
	}
	dep := loadDeployment(t)
	img := dep.Spec.Template.Spec.Containers[0].Image
	repo, tag, _ := strings.Cut(img, ":")
	if len(images) != 1 || images[0].Name != repo || images[0].NewTag != tag {
		t.Errorf("kustomization images %+v; the Deployment runs %s", images, img)
	}
}

// TestPolicyConfigMap: the ConfigMap holds exactly `rewind policy default`,
// and it is a valid policy. `go test ./deploy -run TestPolicyConfigMap
// -update` regenerates it.
func TestPolicyConfigMap(t *testing.T) {
	var out, stderr bytes.Buffer
	if code := cli.Main(context.Background(), []string{"policy", "default"}, &cli.Env{Stdout: &out, Stderr: &stderr, Now: time.Now}); code != 0 {
		t.Fatalf("rewind policy default: exit %d: %s", code, &stderr)
	}
	want := generatePolicyConfigMap(out.Bytes())
	if *update {
		if err := os.WriteFile(policyCMFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	have, err := os.ReadFile(policyCMFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, want) {
		t.Errorf("%s is not generated from `rewind policy default`: run go test ./deploy -run TestPolicyConfigMap -update", policyCMFile)
	}
	cm := findTyped[*corev1.ConfigMap](t, readManifests(t), policyCMFile)
	if cm.Name != policyCMName || cm.Namespace != namespace {
		t.Errorf("ConfigMap %s/%s", cm.Namespace, cm.Name)
	}
	if got := cm.Data[policyCMKey]; got != out.String() {
		t.Errorf("the ConfigMap's %s differs from `rewind policy default`", policyCMKey)
	}
	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, []byte(cm.Data[policyCMKey]), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := cli.Main(context.Background(), []string{"validate", "--policy", file}, &cli.Env{Stdout: io.Discard, Stderr: &stderr, Now: time.Now}); code != 0 {
		t.Errorf("rewind validate on the ConfigMap's policy: exit %d\n%s", code, &stderr)
	}
}

func generatePolicyConfigMap(policy []byte) []byte {
	var b bytes.Buffer
	b.WriteString(`# GENERATED from ` + "`rewind policy default`" + ` (policy/default.yaml) by
#   go test ./deploy -run TestPolicyConfigMap -update
# Do not edit: to run your own policy, replace this ConfigMap, e.g.
#   kubectl -n rewind create configmap rewind-policy --from-file=policy.yaml=my-policy.yaml \
#     --dry-run=client -o yaml | kubectl apply -f -
# The kubelet refreshes the mounted file (within about a minute) and the
# daemon reloads it; a policy that fails validation is refused and the
# previous one keeps running (metric rewind_policy_reloads_total{result="invalid"}).
apiVersion: v1
kind: ConfigMap
metadata:
  name: rewind-policy
  namespace: rewind
  labels:
    app.kubernetes.io/name: rewind
    app.kubernetes.io/instance: rewind
    app.kubernetes.io/component: controller
    app.kubernetes.io/part-of: rewind
    app.kubernetes.io/managed-by: kustomize
data:
  policy.yaml: |
`)
	for _, l := range strings.SplitAfter(string(policy), "\n") {
		switch l {
		case "":
		case "\n":
			b.WriteString("\n")
		default:
			b.WriteString("    " + l)
		}
	}
	return b.Bytes()
}

// TestManifests checks what the API server does not: the app.kubernetes.io
// labels, a pinned image, the "restricted" Pod Security Standard (the test
// control plane runs without the PodSecurity admission plugin), the
// resources and probes, the daemon's flags against `rewind serve -h` and
// the volumes its paths need, and that Service, PDB and RBAC select and
// bind what they should.
func TestManifests(t *testing.T) {
	docs := readManifests(t)
	for _, d := range docs {
		crd := d.obj.GetKind() == "CustomResourceDefinition" // not in client-go's scheme; TestApply applies them strictly
		if !crd {
			typed(t, d) // strict: no unknown or duplicate fields
		}
		if d.file == "rbac.yaml" {
			continue
		}
		l := d.obj.GetLabels()
		if l["app.kubernetes.io/name"] != appName || l["app.kubernetes.io/part-of"] != appName || l["app.kubernetes.io/managed-by"] == "" {
			t.Errorf("%s: %s %s: labels %v lack app.kubernetes.io/name, part-of, managed-by", d.file, d.obj.GetKind(), d.obj.GetName(), l)
		}
		if d.obj.GetKind() != "Namespace" && d.obj.GetKind() != "ClusterRole" && !crd && d.obj.GetNamespace() != namespace {
			t.Errorf("%s: %s %s in namespace %q, want %s", d.file, d.obj.GetKind(), d.obj.GetName(), d.obj.GetNamespace(), namespace)
		}
	}
	ns := findTyped[*corev1.Namespace](t, docs, "namespace.yaml")
	if ns.Name != namespace || ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("namespace %s labels %v: want %s enforcing the restricted Pod Security Standard", ns.Name, ns.Labels, namespace)
	}
	sa := findTyped[*corev1.ServiceAccount](t, docs, "rbac.yaml")
	dep := findTyped[*appsv1.Deployment](t, docs, "deployment.yaml")
	pod := dep.Spec.Template.Spec
	podLabels := dep.Spec.Template.Labels

	// The Deployment.
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 2 {
		t.Errorf("replicas %v, want 2", dep.Spec.Replicas)
	}
	if pod.ServiceAccountName != sa.Name || sa.Namespace != dep.Namespace {
		t.Errorf("the pods run as %s, rbac.yaml's ServiceAccount is %s/%s", pod.ServiceAccountName, sa.Namespace, sa.Name)
	}
	if pod.AutomountServiceAccountToken != nil && !*pod.AutomountServiceAccountToken {
		t.Error("the daemon needs its ServiceAccount token (in-cluster configuration)")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(imageRepo) + `:v\d+\.\d+\.\d+$`).MatchString(c.Image) {
		t.Errorf("image %s: want %s:vX.Y.Z (a release tag, not latest)", c.Image, imageRepo)
	}
	if _, tag, _ := strings.Cut(c.Image, ":"); podLabels["app.kubernetes.io/version"] != tag || dep.Labels["app.kubernetes.io/version"] != tag {
		t.Errorf("app.kubernetes.io/version %q/%q, image tag %s", dep.Labels["app.kubernetes.io/version"], podLabels["app.kubernetes.io/version"], tag)
	}
	for _, want := range []struct {
		list corev1.ResourceList
		name corev1.ResourceName
		q    string
	}{
		{c.Resources.Requests, corev1.ResourceCPU, "100m"}, {c.Resources.Requests, corev1.ResourceMemory, "128Mi"},
		{c.Resources.Limits, corev1.ResourceCPU, "500m"}, {c.Resources.Limits, corev1.ResourceMemory, "512Mi"},
	} {
		if got, ok := want.list[want.name]; !ok || got.Cmp(resource.MustParse(want.q)) != 0 {
			t.Errorf("resources %s = %v, want %s", want.name, got.String(), want.q)
		}
	}
	checkRestricted(t, pod)

	// Probes and port.
	port := corev1.ContainerPort{}
	for _, p := range c.Ports {
		if p.Name == "http" {
			port = p
		}
	}
	if port.ContainerPort != 8080 {
		t.Errorf("container port http: %+v, want 8080", port)
	}
	for _, p := range []struct {
		what  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe %+v, want GET %s on port http", p.what, p.probe, p.path)
		}
	}
	// /readyz checks each dependency for up to 5 s (daemon/health.go).
	if c.ReadinessProbe != nil && c.ReadinessProbe.TimeoutSeconds <= 5 {
		t.Errorf("readiness timeout %ds: /readyz may take 5 s when a dependency hangs", c.ReadinessProbe.TimeoutSeconds)
	}

	// The daemon's arguments: known flags, and paths on the right volumes.
	if len(c.Command) != 0 || len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Errorf("command %v args %v: want the image's entrypoint with args serve ...", c.Command, c.Args)
	}
	known, help := serveFlags(t)
	for _, a := range c.Args[1:] {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && !slices.Contains(known, name) {
			t.Errorf("argument %s: rewind serve has no flag %s (it has %v)", a, name, known)
		}
	}
	// Two replicas act one at a time: leader election on the Role's Lease.
	if !slices.Contains(c.Args, "--leader-elect") {
		t.Error("two replicas without --leader-elect would both act")
	}
	if n := flagValue(c.Args, "lease-name"); n != leaseName && (n != "" || !regexp.MustCompile(`-lease-name string\s+.*\(default "`+leaseName+`"\)`).MatchString(help)) {
		t.Errorf("the daemon's Lease is not %s, the one leader-election.yaml grants", leaseName)
	}
	if l := flagValue(c.Args, "listen"); !strings.HasSuffix(l, ":8080") {
		t.Errorf("--listen %q, the container port is 8080", l)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	mountOf := func(p string) (corev1.VolumeMount, corev1.Volume, string) {
		var best corev1.VolumeMount
		for _, m := range c.VolumeMounts {
			if strings.HasPrefix(p, m.MountPath+"/") && len(m.MountPath) > len(best.MountPath) {
				best = m
			}
		}
		rel := strings.TrimPrefix(p, best.MountPath+"/")
		return best, volumes[best.Name], rel
	}
	for _, m := range c.VolumeMounts {
		if m.SubPath != "" {
			t.Errorf("mount %s uses subPath: the kubelet does not refresh it", m.Name)
		}
	}
	cm := findTyped[*corev1.ConfigMap](t, docs, policyCMFile)
	{
		p := flagValue(c.Args, "policy")
		m, v, rel := mountOf(p)
		if v.ConfigMap == nil || v.ConfigMap.Name != cm.Name || !slices.ContainsFunc(v.ConfigMap.Items, func(k corev1.KeyToPath) bool { return k.Key == policyCMKey && k.Path == rel }) || !m.ReadOnly {
			t.Errorf("--policy %s is not the key %s of ConfigMap %s mounted read-only", p, policyCMKey, cm.Name)
		}
		if _, ok := cm.Data[policyCMKey]; !ok {
			t.Errorf("ConfigMap %s has no key %s", cm.Name, policyCMKey)
		}
	}
	{
		p := flagValue(c.Args, "token-file")
		m, v, rel := mountOf(p)
		if v.Secret == nil || v.Secret.SecretName != tokenSecret || !slices.ContainsFunc(v.Secret.Items, func(k corev1.KeyToPath) bool { return k.Key == tokenKey && k.Path == rel }) || !m.ReadOnly {
			t.Errorf("--token-file %s is not the key %s of Secret %s mounted read-only", p, tokenKey, tokenSecret)
		}
		if v.Secret != nil && (v.Secret.DefaultMode == nil || *v.Secret.DefaultMode&0o077 != 0o040) {
			t.Errorf("the token's mode %v: readable by the pod's group (fsGroup) and nobody else", v.Secret.DefaultMode)
		}
	}
	// The replicas share the store in the API server (docs/storage.md).
	if st := flagValue(c.Args, "store"); st != "kubernetes" {
		t.Errorf("--store %q: the replicas must share the kubernetes store", st)
	}
	for _, f := range []string{"evidence"} {
		p := flagValue(c.Args, f)
		m, v, _ := mountOf(p)
		if p == "" || v.EmptyDir == nil || m.ReadOnly {
			t.Errorf("--%s %q is not on a writable emptyDir (the root filesystem is read-only)", f, p)
		}
	}
	if m, v, _ := mountOf("/tmp/x"); v.EmptyDir == nil || m.ReadOnly {
		t.Error("/tmp is not a writable emptyDir")
	}
	env := map[string]*corev1.EnvVarSource{}
	for _, e := range c.Env {
		env[e.Name] = e.ValueFrom
	}
	if e := env["POD_NAME"]; e == nil || e.FieldRef == nil || e.FieldRef.FieldPath != "metadata.name" {
		t.Error("POD_NAME (the replica's identity in the Lease) is not the pod's name")
	}
	if e := env["POD_NAMESPACE"]; e == nil || e.FieldRef == nil || e.FieldRef.FieldPath != "metadata.namespace" {
		t.Error("POD_NAMESPACE (the Lease's namespace) is not the pod's namespace")
	}

	// Service and PDB select the pods.
	svc := findTyped[*corev1.Service](t, docs, "service.yaml")
	if !selects(svc.Spec.Selector, podLabels) || len(svc.Spec.Selector) == 0 {
		t.Errorf("Service selector %v does not select the pods %v", svc.Spec.Selector, podLabels)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 8080 || svc.Spec.Ports[0].Name != "http" || svc.Spec.Ports[0].TargetPort.String() != port.Name {
		t.Errorf("Service ports %+v, want http 8080 → the container's http", svc.Spec.Ports)
	}
	if !selects(dep.Spec.Selector.MatchLabels, podLabels) {
		t.Errorf("Deployment selector %v, pod labels %v", dep.Spec.Selector.MatchLabels, podLabels)
	}
	pdb := findTyped[*policyv1.PodDisruptionBudget](t, docs, "pdb.yaml")
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 || pdb.Spec.Selector == nil || !selects(pdb.Spec.Selector.MatchLabels, podLabels) {
		t.Errorf("PDB %+v: want minAvailable 1 over the pods", pdb.Spec)
	}

	// Leader election: exactly the Lease verbs, bound to the ServiceAccount.
	role := findTyped[*rbacv1.Role](t, docs, "leader-election.yaml")
	var grants []string
	for _, r := range role.Rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					grants = append(grants, g+"/"+res+":"+v+"@"+strings.Join(r.ResourceNames, ","))
				}
			}
		}
	}
	sort.Strings(grants)
	if want := []string{"coordination.k8s.io/leases:create@", "coordination.k8s.io/leases:get@" + leaseName, "coordination.k8s.io/leases:update@" + leaseName}; !slices.Equal(grants, want) {
		t.Errorf("leader-election.yaml grants %v, want %v", grants, want)
	}
	rb := findTyped[*rbacv1.RoleBinding](t, docs, "leader-election.yaml")
	if rb.Namespace != sa.Namespace || rb.RoleRef.Kind != "Role" || rb.RoleRef.Name != role.Name || len(rb.Subjects) != 1 ||
		rb.Subjects[0].Kind != "ServiceAccount" || rb.Subjects[0].Name != sa.Name || rb.Subjects[0].Namespace != sa.Namespace {
		t.Errorf("RoleBinding %+v does not bind %s to %s/%s", rb, role.Name, sa.Namespace, sa.Name)
	}
}

func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// checkRestricted checks the pod against the "restricted" Pod Security
// Standard (https://kubernetes.io/docs/concepts/security/pod-security-standards/),
// plus a read-only root filesystem.
func checkRestricted(t *testing.T, pod corev1.PodSpec) {
	t.Helper()
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Error("host namespaces")
	}
	psc := pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("the pod's seccomp profile is not RuntimeDefault")
	}
	if psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		t.Error("runAsUser 0")
	}
	for _, v := range pod.Volumes {
		s := v.VolumeSource
		if s.ConfigMap == nil && s.Secret == nil && s.EmptyDir == nil && s.Projected == nil && s.DownwardAPI == nil &&
			s.PersistentVolumeClaim == nil && s.CSI == nil && s.Ephemeral == nil {
			t.Errorf("volume %s: a type the restricted standard forbids", v.Name)
		}
	}
	for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("container %s has no securityContext", c.Name)
			continue
		}
		nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (sc.RunAsNonRoot == nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot)
		if !nonRoot {
			t.Errorf("container %s: runAsNonRoot is not true", c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("container %s: allowPrivilegeEscalation is not false", c.Name)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("container %s: privileged", c.Name)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("container %s: capabilities do not drop ALL", c.Name)
		} else if slices.ContainsFunc(sc.Capabilities.Add, func(c corev1.Capability) bool { return c != "NET_BIND_SERVICE" }) {
			t.Errorf("container %s adds capabilities %v", c.Name, sc.Capabilities.Add)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("container %s: the root filesystem is writable", c.Name)
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			t.Errorf("container %s: runAsUser 0", c.Name)
		}
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				t.Errorf("container %s: hostPort %d", c.Name, p.HostPort)
			}
		}
	}
}
