package releases

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/rewind-sre/rewind/source/embedded"
)

// TestGenerate: the history carries what a rollout watch reads — the
// ReplicaSets in kube-state-metrics, a rolling update pod by pod, the
// seed's request metrics per pod keyed by pod_template_hash, exactly the
// counts of Truth — and leaves out what kube-state-metrics is told to miss.
func TestGenerate(t *testing.T) {
	svc := Reference("shop", "checkout", "aaa1")
	svc.Releases = []Release{{Hash: "bbb2", At: T0.Add(10 * time.Minute), Step: time.Minute, ErrorRate: 0.2}}
	miss := Reference("shop", "cart", "ccc3")
	miss.Releases = []Release{{Hash: "ddd4", At: T0.Add(10 * time.Minute), NoKSM: true}}
	h := History{Start: T0, Duration: 30 * time.Minute, Seasons: []time.Duration{24 * time.Hour}, Seed: 3, Services: []Service{svc, miss}}
	data, truth, err := Generate(h)
	if err != nil {
		t.Fatal(err)
	}
	db, err := embedded.Open(embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.LoadOpenMetrics(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	q := func(promql string, at time.Time) map[string]float64 {
		v, err := db.Query(context.Background(), promql, at)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, s := range v {
			out[s.Labels["replicaset"]+s.Labels["pod_template_hash"]] = s.V
		}
		return out
	}
	at := T0.Add(15*time.Minute + 10*time.Second) // just after a scrape
	if got := q(`kube_replicaset_created{namespace="shop"}`, at); got["checkout-bbb2"] != float64(T0.Add(10*time.Minute).Unix()) || got["checkout-aaa1"] != float64(T0.Add(-30*24*time.Hour).Unix()) || len(got) != 3 {
		t.Fatalf("created: %v", got)
	}
	if got := q(`kube_replicaset_spec_replicas{namespace="shop"}`, T0.Add(11*time.Minute+10*time.Second)); got["checkout-bbb2"] != 2 || got["checkout-aaa1"] != 1 {
		t.Fatalf("replicas one minute into the rollout: %v", got)
	}
	if got := q(`kube_replicaset_owner{owner_name="cart"}`, at); len(got) != 1 || got["cart-ccc3"] != 1 {
		t.Fatalf("cart's ReplicaSets in kube-state-metrics: %v (ddd4 must be missing)", got)
	}
	// Every pod of the new revision serves by now: the counters sum to Truth.
	got := q(`sum by (pod_template_hash) (http_requests_total{app="checkout"})`, at)
	var last Count
	for _, c := range truth["checkout"]["bbb2"] {
		if !c.T.After(at) {
			last = c
		}
	}
	if got["bbb2"] != last.Requests || last.Requests < 3000 {
		t.Fatalf("requests of bbb2: %v, truth %v", got["bbb2"], last.Requests)
	}
	errRate := q(`sum(http_requests_total{app="checkout",status="500",pod_template_hash="bbb2"})`, at)[""] / last.Requests
	if math.Abs(errRate-0.2) > 0.03 {
		t.Fatalf("bad revision's error rate %.3f, want 0.2", errRate)
	}
	// The day before is there for the seasonal references, at the same hours.
	if got := q(`sum(http_requests_total{app="checkout"} offset 1d)`, at); got[""] == 0 {
		t.Fatal("no history a day before")
	}
	if !strings.HasSuffix(string(data), "# EOF\n") {
		t.Fatal("no # EOF")
	}
}
