package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// PodExporter stands in for the instrumented pods of a Deployment: every
// tick it reads the Ready pods that match a label selector from the real
// API server, spreads a steady request load over them as a Service would,
// and serves each pod's counters on /metrics — http_requests_total{status}
// and the http_request_duration_seconds histogram, labelled namespace, app,
// pod and pod_template_hash as Prometheus' Kubernetes discovery labels a
// pod's series — for a real Prometheus to scrape. Each image has an error
// rate (SetErrorRate), so a new revision can turn bad. A pod that is gone
// is no longer exported: Prometheus marks its series stale.
type PodExporter struct {
	Addr string // host:port of /metrics

	mu      sync.Mutex
	errRate map[string]float64 // by image
	pods    map[string]*podCounters
	alive   []string // the pods exported now, sorted
}

type podCounters struct {
	labels   string // namespace, app, pod, pod_template_hash
	ok, errs float64
	carry    float64 // fractional errors not yet counted
}

// podExporterTick is how often the exporter advances its counters.
const podExporterTick = 100 * time.Millisecond

// StartPodExporter serves /metrics on a loopback port and drives rps
// requests a second through the Ready pods of namespace that match
// selector, until the test ends.
func StartPodExporter(t testing.TB, cs kubernetes.Interface, namespace, selector string, rps float64) *PodExporter {
	t.Helper()
	e := &PodExporter{errRate: map[string]float64{}, pods: map[string]*podCounters{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.Addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(e.serve), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(podExporterTick)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
			pods, err := cs.CoreV1().Pods(namespace).List(lctx, metav1.ListOptions{LabelSelector: selector})
			lcancel()
			if err == nil {
				e.advance(pods.Items, rps*podExporterTick.Seconds())
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	return e
}

// SetErrorRate makes the pods running image fail that share of requests.
func (e *PodExporter) SetErrorRate(image string, rate float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.errRate[image] = rate
}

// advance spreads n requests over the Ready pods.
func (e *PodExporter) advance(pods []corev1.Pod, n float64) {
	var ready []corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil && podReady(p) && len(p.Spec.Containers) > 0 {
			ready = append(ready, p)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.alive = e.alive[:0]
	for _, p := range ready {
		c := e.pods[p.Name]
		if c == nil {
			c = &podCounters{labels: fmt.Sprintf(`app=%q,namespace=%q,pod=%q,pod_template_hash=%q`,
				p.Labels["app"], p.Namespace, p.Name, p.Labels["pod-template-hash"])}
			e.pods[p.Name] = c
		}
		share := n / float64(len(ready))
		c.carry += share * e.errRate[p.Spec.Containers[0].Image]
		bad := float64(int(c.carry))
		c.carry -= bad
		c.ok += share - bad
		c.errs += bad
		e.alive = append(e.alive, p.Name)
	}
	sort.Strings(e.alive)
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// serve writes the counters of the pods alive now, in the text format. The
// latency histogram puts every request at 20 ms.
func (e *PodExporter) serve(w http.ResponseWriter, _ *http.Request) {
	e.mu.Lock()
	var b strings.Builder
	b.WriteString("# TYPE http_requests_total counter\n")
	for _, name := range e.alive {
		c := e.pods[name]
		fmt.Fprintf(&b, "http_requests_total{%s,status=\"200\"} %g\n", c.labels, c.ok)
		fmt.Fprintf(&b, "http_requests_total{%s,status=\"500\"} %g\n", c.labels, c.errs)
	}
	b.WriteString("# TYPE http_request_duration_seconds histogram\n")
	for _, name := range e.alive {
		c := e.pods[name]
		total := c.ok + c.errs
		for _, le := range []string{"0.01", "0.025", "0.05", "0.1", "0.25", "+Inf"} {
			v := total
			if le == "0.01" {
				v = 0
			}
			fmt.Fprintf(&b, "http_request_duration_seconds_bucket{%s,le=%q} %g\n", c.labels, le, v)
		}
		fmt.Fprintf(&b, "http_request_duration_seconds_count{%s} %g\n", c.labels, total)
		fmt.Fprintf(&b, "http_request_duration_seconds_sum{%s} %g\n", c.labels, 0.02*total)
	}
	e.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = w.Write([]byte(b.String()))
}
