package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// Mesh stands in for the data plane of an Istio mesh in tests: every tick it
// reads a VirtualService's route weights from the real API server and sends
// that share of a steady request load to the canary and the baseline, as
// counters http_requests_total{version, status} on its /metrics endpoint for
// a real Prometheus to scrape. A rollback's drain is then visible in the
// metrics exactly as in a mesh: the canary's counter stops growing.
type Mesh struct {
	Addr     string // host:port of /metrics
	requests *prometheus.CounterVec
	mu       sync.Mutex
	errRate  map[string]float64
}

var virtualServices = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}

// StartMesh serves /metrics on a loopback port and drives rps requests a
// second through the named VirtualService until the test ends. Hosts map
// route destinations to versions ("dwcp-canary" → "canary").
func StartMesh(t testing.TB, dyn dynamic.Interface, namespace, virtualService string, hosts map[string]string, rps float64) *Mesh {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := &Mesh{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "http_requests_total", Help: "Requests by version and status."}, []string{"version", "status"}),
		errRate:  map[string]float64{},
	}
	reg.MustRegister(m.requests)
	for _, v := range hosts {
		m.requests.WithLabelValues(v, "200").Add(0)
		m.requests.WithLabelValues(v, "500").Add(0)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.Addr = ln.Addr().String()
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.drive(ctx, dyn.Resource(virtualServices).Namespace(namespace), virtualService, hosts, rps)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	return m
}

// SetErrorRate makes a version answer this share of its requests with 500.
func (m *Mesh) SetErrorRate(version string, rate float64) {
	m.mu.Lock()
	m.errRate[version] = rate
	m.mu.Unlock()
}

func (m *Mesh) drive(ctx context.Context, vs dynamic.ResourceInterface, name string, hosts map[string]string, rps float64) {
	const tick = 100 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	carry := map[string]float64{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		obj, err := vs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			continue // the API server may be down in a fault test: no traffic moves
		}
		for version, w := range weights(obj, hosts) {
			carry[version] += rps * tick.Seconds() * w
			n := float64(int(carry[version]))
			carry[version] -= n
			m.mu.Lock()
			bad := float64(int(n*m.errRate[version] + 0.5))
			m.mu.Unlock()
			m.requests.WithLabelValues(version, "500").Add(bad)
			m.requests.WithLabelValues(version, "200").Add(n - bad)
		}
	}
}

// weights reads the first HTTP route's destination weights as shares per version.
func weights(vs *unstructured.Unstructured, hosts map[string]string) map[string]float64 {
	routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	out := map[string]float64{}
	if len(routes) == 0 {
		return out
	}
	dests, _, _ := unstructured.NestedSlice(routes[0].(map[string]any), "route")
	total := 0.0
	for _, d := range dests {
		dm, _ := d.(map[string]any)
		host, _, _ := unstructured.NestedString(dm, "destination", "host")
		w, found, _ := unstructured.NestedInt64(dm, "weight")
		if !found && len(dests) == 1 {
			w = 100
		}
		if v, ok := hosts[host]; ok {
			out[v] += float64(w)
			total += float64(w)
		}
	}
	for v := range out {
		if total > 0 {
			out[v] /= total
		}
	}
	return out
}

// String names the mesh for logs.
func (m *Mesh) String() string { return fmt.Sprintf("mesh at %s", m.Addr) }
