// Package gitops keeps a rollback from being undone by the GitOps
// reconciler that owns its targets (Flux, Argo CD): it finds the owner from
// the standard markers on the canary Deployment and the VirtualService,
// suspends it before the plan touches the cluster (the suspend-gitops step),
// records the previous settings on the owner itself, and resumes it with
// exactly those settings once the revert is in Git.
//
// It talks to Flux and Argo CD objects through client-go's dynamic client
// (unstructured), never through their Go API modules, which would pull both
// projects' dependency trees into Rewind.
package gitops

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
)

// Kind is the kind of a GitOps owner.
type Kind string

const (
	KindKustomization Kind = "Kustomization" // Flux kustomize-controller
	KindHelmRelease   Kind = "HelmRelease"   // Flux helm-controller
	KindApplication   Kind = "Application"   // Argo CD
)

// Kinds lists the owner kinds, for validation and messages.
var Kinds = []Kind{KindKustomization, KindHelmRelease, KindApplication}

// GVRs of the objects this package reads or changes.
var (
	KustomizationGVR  = schema.GroupVersionResource{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Resource: "kustomizations"}
	HelmReleaseGVR    = schema.GroupVersionResource{Group: "helm.toolkit.fluxcd.io", Version: "v2", Resource: "helmreleases"}
	GitRepositoryGVR  = schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "gitrepositories"}
	ApplicationGVR    = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}
	ApplicationSetGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applicationsets"}
)

// GVR returns the resource of an owner kind.
func (k Kind) GVR() schema.GroupVersionResource {
	switch k {
	case KindKustomization:
		return KustomizationGVR
	case KindHelmRelease:
		return HelmReleaseGVR
	default:
		return ApplicationGVR
	}
}

// Tool names the GitOps tool of an owner kind.
func (k Kind) Tool() string {
	if k == KindApplication {
		return "Argo CD"
	}
	return "Flux"
}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	for _, v := range Kinds {
		if k == v {
			return true
		}
	}
	return false
}

// The standard markers GitOps tools put on what they apply.
const (
	LabelKustomizeName      = "kustomize.toolkit.fluxcd.io/name"
	LabelKustomizeNamespace = "kustomize.toolkit.fluxcd.io/namespace"
	LabelHelmName           = "helm.toolkit.fluxcd.io/name"
	LabelHelmNamespace      = "helm.toolkit.fluxcd.io/namespace"
	AnnotationArgoTracking  = "argocd.argoproj.io/tracking-id"
	LabelArgoInstance       = "app.kubernetes.io/instance"
)

// DefaultArgoCDNamespace is where Argo CD's Applications live unless the
// policy says otherwise.
const DefaultArgoCDNamespace = "argocd"

// Owner is the GitOps object that applies a target from Git.
type Owner struct {
	Kind      Kind   `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// ApplicationSet is the ApplicationSet that generated an Application
	// (its controller owner reference), "" otherwise.
	ApplicationSet string `json:"applicationSet,omitempty"`
	// Found says how: the marker read on which object, or "policy".
	Found string `json:"found"`
}

func (o Owner) String() string {
	return fmt.Sprintf("%s %s %s/%s", o.Kind.Tool(), o.Kind, o.Namespace, o.Name)
}

// key identifies the owner object, whatever way it was found.
func (o Owner) key() string { return string(o.Kind) + "/" + o.Namespace + "/" + o.Name }

// Ref names a Kubernetes object whose owner is looked for.
type Ref struct {
	GVR       schema.GroupVersionResource
	Kind      string // for messages and Argo CD tracking ids, e.g. "Deployment"
	Namespace string
	Name      string
	// OtherVersions are tried in order when GVR's version is not served
	// (e.g. Istio's v1beta1 where v1 is not).
	OtherVersions []string
}

func (r Ref) String() string { return r.Kind + " " + r.Namespace + "/" + r.Name }

// Finder finds the GitOps owners of objects.
type Finder struct {
	Dyn dynamic.Interface
	// Connect returns the client when Dyn is nil: a cluster connection
	// made when first needed (the daemon's), so that an unreachable
	// cluster fails the steps, not the daemon's start.
	Connect func() (dynamic.Interface, error)
	// ArgoCDNamespace is where Applications live (default DefaultArgoCDNamespace).
	ArgoCDNamespace string
	// Discovery, when set, tells whether Argo CD's Applications are served
	// at all: a label app.kubernetes.io/instance that Rewind may not look
	// up (no RBAC on Applications) names no owner where Argo CD is not
	// installed — Helm sets that label too. Nil: such a label is an error.
	Discovery func() (discovery.DiscoveryInterface, error)
}

// res returns the client of one resource.
func (f *Finder) res(gvr schema.GroupVersionResource) (dynamic.NamespaceableResourceInterface, error) {
	if f.Dyn != nil {
		return f.Dyn.Resource(gvr), nil
	}
	if f.Connect == nil {
		return nil, errors.New("gitops: no Kubernetes client")
	}
	d, err := f.Connect()
	if err != nil {
		return nil, err
	}
	return d.Resource(gvr), nil
}

// get reads one object.
func (f *Finder) getObj(ctx context.Context, gvr schema.GroupVersionResource, ns, name string) (*unstructured.Unstructured, error) {
	r, err := f.res(gvr)
	if err != nil {
		return nil, err
	}
	return r.Namespace(ns).Get(ctx, name, metav1.GetOptions{})
}

func (f *Finder) argoNamespace() string {
	if f.ArgoCDNamespace != "" {
		return f.ArgoCDNamespace
	}
	return DefaultArgoCDNamespace
}

// maxOwnerDepth bounds the walk from an Argo CD Application to the
// Application that applies it (app of apps).
const maxOwnerDepth = 4

// Owners returns the distinct owners of refs, in the order found, with the
// Argo CD Applications that apply those Applications after them (an app of
// apps with self-heal would put a changed sync policy back). A target
// without a marker has no owner; a target that does not exist is an error.
func (f *Finder) Owners(ctx context.Context, refs ...Ref) ([]Owner, error) {
	var out []Owner
	seen := map[string]bool{}
	for _, ref := range refs {
		obj, err := f.get(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", ref, err)
		}
		for depth := 0; obj != nil && depth < maxOwnerDepth; depth++ {
			o, err := f.ownerOf(ctx, ref, obj)
			if err != nil || o == nil {
				if err != nil {
					return nil, err
				}
				break
			}
			if seen[o.key()] {
				break
			}
			seen[o.key()] = true
			out = append(out, *o)
			if o.Kind != KindApplication {
				// Flux's apply is server-side: the Kustomization that applies
				// this owner does not own spec.suspend and leaves it alone.
				break
			}
			ref = Ref{GVR: ApplicationGVR, Kind: "Application", Namespace: o.Namespace, Name: o.Name}
			obj, err = f.getObj(ctx, ApplicationGVR, o.Namespace, o.Name)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", o, err)
			}
		}
	}
	return out, nil
}

// get reads ref, trying its other versions when the first is not found.
func (f *Finder) get(ctx context.Context, ref Ref) (*unstructured.Unstructured, error) {
	obj, err := f.getObj(ctx, ref.GVR, ref.Namespace, ref.Name)
	for _, v := range ref.OtherVersions {
		if !apierrors.IsNotFound(err) {
			break
		}
		gvr := ref.GVR
		gvr.Version = v
		obj, err = f.getObj(ctx, gvr, ref.Namespace, ref.Name)
	}
	return obj, err
}

// ownerOf reads the markers on obj: Flux's labels first (they name the
// owner exactly), then Argo CD's tracking annotation, then its instance
// label (only when an Application of that name exists: Helm charts set
// the same label to their release name).
func (f *Finder) ownerOf(ctx context.Context, ref Ref, obj *unstructured.Unstructured) (*Owner, error) {
	labels, annotations := obj.GetLabels(), obj.GetAnnotations()
	if n, ns := labels[LabelKustomizeName], labels[LabelKustomizeNamespace]; n != "" && ns != "" {
		return &Owner{Kind: KindKustomization, Namespace: ns, Name: n, Found: "labels " + LabelKustomizeName + "/namespace on " + ref.String()}, nil
	}
	if n, ns := labels[LabelHelmName], labels[LabelHelmNamespace]; n != "" && ns != "" {
		return &Owner{Kind: KindHelmRelease, Namespace: ns, Name: n, Found: "labels " + LabelHelmName + "/namespace on " + ref.String()}, nil
	}
	if id := annotations[AnnotationArgoTracking]; id != "" {
		ns, name, ok := f.parseTrackingID(id, ref)
		if !ok {
			return nil, fmt.Errorf("%s: annotation %s=%q does not name this object (copied from another?)", ref, AnnotationArgoTracking, id)
		}
		return f.application(ctx, ns, name, "annotation "+AnnotationArgoTracking+" on "+ref.String())
	}
	if name := labels[LabelArgoInstance]; name != "" {
		o, err := f.application(ctx, f.argoNamespace(), name, "label "+LabelArgoInstance+" on "+ref.String())
		switch {
		case apierrors.IsNotFound(err):
			return nil, nil // a Helm release name, not an Application
		case apierrors.IsForbidden(err):
			if served, derr := f.applicationsServed(); derr != nil || served {
				return nil, fmt.Errorf("%w; Argo CD is installed, so the label %s=%s may name its Application (if Helm set it and no Argo CD applies this canary, set rollback.gitops: none)", err, LabelArgoInstance, name)
			}
			return nil, nil // no Argo CD here: a Helm release name
		}
		return o, err
	}
	return nil, nil
}

// applicationsServed asks the API server's discovery (open to every
// authenticated user) whether Argo CD's Applications exist in the cluster.
func (f *Finder) applicationsServed() (bool, error) {
	if f.Discovery == nil {
		return true, nil
	}
	d, err := f.Discovery()
	if err != nil {
		return false, err
	}
	list, err := d.ServerResourcesForGroupVersion(ApplicationGVR.GroupVersion().String())
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, r := range list.APIResources {
		if r.Name == ApplicationGVR.Resource {
			return true, nil
		}
	}
	return false, nil
}

// parseTrackingID reads Argo CD's "app:group/kind:namespace/name" and
// checks that it names ref. The app is "namespace_name" for an Application
// outside Argo CD's own namespace.
func (f *Finder) parseTrackingID(id string, ref Ref) (ns, name string, ok bool) {
	parts := strings.SplitN(id, ":", 3)
	if len(parts) != 3 {
		return "", "", false
	}
	_, kind, ok1 := strings.Cut(parts[1], "/")
	objNS, objName, ok2 := strings.Cut(parts[2], "/")
	if !ok1 || !ok2 || kind != ref.Kind || objName != ref.Name || (objNS != "" && objNS != ref.Namespace) {
		return "", "", false
	}
	ns, name = f.argoNamespace(), parts[0]
	if n, a, found := strings.Cut(parts[0], "_"); found {
		ns, name = n, a
	}
	return ns, name, name != ""
}

// application returns the Owner of an existing Application, with the
// ApplicationSet that generated it.
func (f *Finder) application(ctx context.Context, ns, name, found string) (*Owner, error) {
	app, err := f.getObj(ctx, ApplicationGVR, ns, name)
	if err != nil {
		return nil, fmt.Errorf("reading Argo CD Application %s/%s (%s): %w", ns, name, found, err)
	}
	o := &Owner{Kind: KindApplication, Namespace: ns, Name: name, Found: found}
	for _, r := range app.GetOwnerReferences() {
		if r.Kind == "ApplicationSet" && r.Controller != nil && *r.Controller {
			o.ApplicationSet = r.Name
		}
	}
	return o, nil
}
