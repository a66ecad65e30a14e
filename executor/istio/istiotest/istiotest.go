// Package istiotest builds the VirtualService fixture the drain tests share
// on a real API server with Istio's CRD (internal/testenv).
package istiotest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// GVR is the VirtualService resource in its storage version.
var GVR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}

// Hosts of the fixture.
const (
	Baseline = "web-baseline"
	Canary   = "web-canary"
)

// VirtualService is a VirtualService with more than the canary split: two
// split routes (baseline first in one, canary first in the other, with
// matches, retries, a timeout, header operations and subsets), a route to
// another host, a route that only mirrors, and a TCP route to the canary
// that a drain must leave alone.
func VirtualService(ns, name string) *unstructured.Unstructured {
	dest := func(host string, port int64, weight int64) map[string]any {
		d := map[string]any{"destination": map[string]any{"host": host, "port": map[string]any{"number": port}}}
		if weight >= 0 {
			d["weight"] = weight
		}
		return d
	}
	baseline := dest(Baseline, 8080, 90)
	baseline["destination"].(map[string]any)["subset"] = "stable"
	baseline["headers"] = map[string]any{"response": map[string]any{"set": map[string]any{"x-track": "baseline"}}}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "VirtualService",
		"metadata":   map[string]any{"name": name, "namespace": ns, "labels": map[string]any{"app": "web"}},
		"spec": map[string]any{
			"hosts":    []any{"web." + ns + ".svc.cluster.local", "web.example.com"},
			"gateways": []any{"mesh", "web-gateway"},
			"http": []any{
				map[string]any{
					"name": "api-split",
					"match": []any{
						map[string]any{"uri": map[string]any{"prefix": "/api"}},
						map[string]any{"headers": map[string]any{"x-beta": map[string]any{"exact": "1"}}},
					},
					"route":   []any{baseline, dest(Canary, 8080, 10)},
					"retries": map[string]any{"attempts": int64(3), "perTryTimeout": "2s", "retryOn": "5xx,reset"},
					"timeout": "10s",
				},
				map[string]any{
					"name":  "static",
					"match": []any{map[string]any{"uri": map[string]any{"prefix": "/static"}}},
					"route": []any{dest("static-files", 80, -1)},
				},
				map[string]any{
					"name":  "default-split",
					"route": []any{dest(Canary, 8080, 25), dest(Baseline, 8080, 75)},
				},
			},
			"tcp": []any{
				map[string]any{
					"match": []any{map[string]any{"port": int64(9000)}},
					"route": []any{dest(Canary, 9000, -1)},
				},
			},
		},
	}}
}

// Create creates vs and returns it as stored.
func Create(t testing.TB, dyn dynamic.Interface, vs *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got, err := dyn.Resource(GVR).Namespace(vs.GetNamespace()).Create(ctx, vs, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating VirtualService %s/%s: %v", vs.GetNamespace(), vs.GetName(), err)
	}
	return got
}

// Get reads the VirtualService.
func Get(t testing.TB, dyn dynamic.Interface, ns, name string) *unstructured.Unstructured {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got, err := dyn.Resource(GVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading VirtualService %s/%s: %v", ns, name, err)
	}
	return got
}

// Weights lists the weights of every HTTP route's destinations as
// "host=weight" (-1 when unset), by route name.
func Weights(vs *unstructured.Unstructured) map[string][]string {
	out := map[string][]string{}
	http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	for _, r := range http {
		route := r.(map[string]any)
		name, _ := route["name"].(string)
		dests, _ := route["route"].([]any)
		for _, d := range dests {
			dest := d.(map[string]any)
			host, _, _ := unstructured.NestedString(dest, "destination", "host")
			w, ok := dest["weight"].(int64)
			if !ok {
				w = -1
			}
			out[name] = append(out[name], host+"="+jsonInt(w))
		}
	}
	return out
}

// WithoutWeights is vs's spec with every HTTP destination's weight removed,
// as JSON: what a drain must leave unchanged.
func WithoutWeights(vs *unstructured.Unstructured) string {
	spec, _, _ := unstructured.NestedMap(vs.Object, "spec")
	http, _, _ := unstructured.NestedSlice(spec, "http")
	for _, r := range http {
		dests, _ := r.(map[string]any)["route"].([]any)
		for _, d := range dests {
			delete(d.(map[string]any), "weight")
		}
	}
	if http != nil {
		spec["http"] = http
	}
	data, _ := json.Marshal(spec)
	return string(data)
}

func jsonInt(v int64) string {
	data, _ := json.Marshal(v)
	return string(data)
}
