// Package kubetest builds the fixtures the executor tests share on a real
// control plane (internal/testenv): namespaces, and canary Deployments
// rolled out through two revisions with kwok-ready pods.
package kubetest

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// Images of the canary's two revisions.
const (
	ImageV1 = "registry.example/web:v1"
	ImageV2 = "registry.example/web:v2"
)

// Timeout bounds each fixture's waits.
const Timeout = time.Minute

var seq atomic.Int64

var notDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// Namespace creates a namespace named after the test (and a sequence
// number) and returns its name.
func Namespace(t testing.TB, cs clientset.Interface) string {
	t.Helper()
	name := strings.Trim(notDNS.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(name) > 50 {
		name = name[len(name)-50:]
	}
	name = strings.Trim(fmt.Sprintf("%s-%d", name, seq.Add(1)), "-")
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	return name
}

// Canary is the options of CanaryDeployment.
type Canary struct {
	Replicas        int32
	Containers      []string // container names; default one, "web"
	MinReadySeconds int32    // > 0 keeps an undo's rollout from completing for that long
	Annotations     map[string]string
}

// CanaryDeployment creates Deployment ns/name at ImageV1, waits until it is
// available, updates it to ImageV2 and waits again: revision 2 of 2.
func CanaryDeployment(t testing.TB, cs clientset.Interface, ns, name string, o Canary) *appsv1.Deployment {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if o.Replicas == 0 {
		o.Replicas = 2
	}
	if len(o.Containers) == 0 {
		o.Containers = []string{"web"}
	}
	labels := map[string]string{"app": name, "track": "canary"}
	var containers []corev1.Container
	for _, c := range o.Containers {
		containers = append(containers, corev1.Container{Name: c, Image: ImageV1})
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: o.Annotations},
		Spec: appsv1.DeploymentSpec{
			Replicas: &o.Replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: containers},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating deployment %s/%s: %v", ns, name, err)
	}
	WaitAvailable(t, cs, ns, name, ImageV1)
	SetImage(t, cs, ns, name, ImageV2, func(d *appsv1.Deployment) { d.Spec.MinReadySeconds = o.MinReadySeconds })
	if o.MinReadySeconds == 0 {
		WaitAvailable(t, cs, ns, name, ImageV2)
	}
	got, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// SetImage updates every container of the Deployment to image, after
// applying more changes.
func SetImage(t testing.TB, cs clientset.Interface, ns, name, image string, more ...func(*appsv1.Deployment)) {
	t.Helper()
	Update(t, cs, ns, name, func(d *appsv1.Deployment) {
		for i := range d.Spec.Template.Spec.Containers {
			d.Spec.Template.Spec.Containers[i].Image = image
		}
		for _, f := range more {
			f(d)
		}
	})
}

// Update reads, changes and writes the Deployment, retrying on conflict.
func Update(t testing.TB, cs clientset.Interface, ns, name string, change func(*appsv1.Deployment)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		change(d)
		_, err = cs.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("updating deployment %s/%s: %v", ns, name, err)
	}
}

// WaitAvailable polls (every 20 ms, bounded by Timeout) until the
// Deployment runs image with every replica updated, available and Ready.
func WaitAvailable(t testing.TB, cs clientset.Interface, ns, name, image string) *appsv1.Deployment {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			if ok, why := Available(d, image); ok {
				return d
			} else {
				last = why
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("deployment %s/%s not available with %s: %s", ns, name, image, last)
		case <-tick.C:
		}
	}
}

// Available reports whether d runs image in every container with every
// replica updated and available, and why not.
func Available(d *appsv1.Deployment, image string) (bool, string) {
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Image != image {
			return false, fmt.Sprintf("container %s runs %s", c.Name, c.Image)
		}
	}
	st, want := d.Status, *d.Spec.Replicas
	if d.Status.ObservedGeneration < d.Generation {
		return false, fmt.Sprintf("observedGeneration %d < generation %d", st.ObservedGeneration, d.Generation)
	}
	if st.Replicas != want || st.UpdatedReplicas != want || st.ReadyReplicas != want || st.AvailableReplicas != want {
		return false, fmt.Sprintf("replicas %d updated %d ready %d available %d, want %d", st.Replicas, st.UpdatedReplicas, st.ReadyReplicas, st.AvailableReplicas, want)
	}
	return true, ""
}
