package rollout

import (
	"strings"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func owner(rs, dep string) rewind.Sample {
	return rewind.Sample{Labels: map[string]string{"namespace": "shop", "replicaset": rs, "owner_name": dep}, V: 1}
}

func created(rs string, at time.Time) rewind.Sample {
	return rewind.Sample{Labels: map[string]string{"namespace": "shop", "replicaset": rs}, V: float64(at.Unix())}
}

func seen(hash string, from, to time.Time) rewind.Series {
	s := rewind.Series{Labels: map[string]string{"pod_template_hash": hash}}
	for t := from; !t.After(to); t = t.Add(5 * time.Minute) {
		s.Points = append(s.Points, rewind.Point{T: t, V: 12})
	}
	return s
}

func TestDiscover(t *testing.T) {
	from, to := t0, t0.Add(6*time.Hour)
	inv := Inventory{
		Owners: rewind.Vector{
			owner("checkout-aaa", "checkout"), owner("checkout-bbb", "checkout"), owner("checkout-ccc", "checkout"),
			owner("checkout-ddd", "checkout"), owner("cart-xxx", "cart"), owner("legacy", "checkout"),
		},
		Created: rewind.Vector{
			created("checkout-aaa", t0.Add(-48*time.Hour)), created("checkout-bbb", t0.Add(time.Hour)),
			created("checkout-ccc", t0.Add(3*time.Hour)), created("cart-xxx", t0.Add(2*time.Hour)),
			created("legacy", t0.Add(4*time.Hour)),
			{Labels: map[string]string{"replicaset": "checkout-zzz"}, V: 1}, // not owned
		},
		Revisions: rewind.Matrix{
			seen("aaa", from, t0.Add(time.Hour+10*time.Minute)), seen("bbb", t0.Add(time.Hour), to),
			seen("ccc", t0.Add(3*time.Hour), to), seen("ddd", t0.Add(4*time.Hour), to), seen("eee", t0.Add(5*time.Hour), to),
		},
	}
	got := Discover("checkout", "shop", "checkout", "pod_template_hash", inv, from, to)
	var lines []string
	for _, r := range got {
		lines = append(lines, r.Start.Sub(t0).String()+" "+r.Revision+"<-"+r.Previous+" "+short(r.Missing))
	}
	want := []string{
		"1h0m0s bbb<-aaa ",
		"3h0m0s ccc<-bbb ",
		"4h0m0s ddd<- kube_replicaset_created",
		"4h0m0s legacy<- ReplicaSet",
		"5h0m0s eee<- revision",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	for _, r := range got {
		if r.System != "checkout" || r.Namespace != "shop" || r.Deployment != "checkout" {
			t.Fatalf("rollout %+v", r)
		}
	}
	// Without kube-state-metrics, every new revision is reported and none judged.
	got = Discover("checkout", "shop", "checkout", "pod_template_hash", Inventory{Revisions: inv.Revisions}, from, to)
	if len(got) != 4 {
		t.Fatalf("without kube-state-metrics: %+v", got)
	}
	for _, r := range got {
		if r.Missing == "" {
			t.Fatalf("judged without kube-state-metrics: %+v", r)
		}
	}
	// Nothing at all: nothing found.
	if got := Discover("checkout", "shop", "checkout", "pod_template_hash", Inventory{}, from, to); len(got) != 0 {
		t.Fatalf("from nothing: %+v", got)
	}
}

// TestDiscoverSameSecond: ReplicaSets created within the same second are
// ordered by the Deployment's revision numbers when they are known.
func TestDiscoverSameSecond(t *testing.T) {
	inv := Inventory{
		Owners:  rewind.Vector{owner("checkout-zzz", "checkout"), owner("checkout-aaa", "checkout"), owner("checkout-mmm", "checkout")},
		Created: rewind.Vector{created("checkout-zzz", t0), created("checkout-aaa", t0), created("checkout-mmm", t0)},
		Numbers: map[string]int64{"checkout-zzz": 1, "checkout-aaa": 2, "checkout-mmm": 3},
	}
	got := Discover("c", "shop", "checkout", "pod_template_hash", inv, t0.Add(-time.Hour), t0.Add(time.Hour))
	if len(got) != 2 || got[0].Revision != "aaa" || got[0].Previous != "zzz" || got[1].Revision != "mmm" || got[1].Previous != "aaa" {
		t.Fatalf("%+v", got)
	}
}

func TestDiscoverIgnoresJunk(t *testing.T) {
	inv := Inventory{
		Owners:  rewind.Vector{owner("checkout-aaa", "checkout"), owner("checkout-bbb", "checkout"), {Labels: map[string]string{"owner_name": "checkout"}}},
		Created: rewind.Vector{created("checkout-aaa", t0.Add(-time.Hour)), {Labels: map[string]string{"replicaset": "checkout-bbb"}, V: -1}},
	}
	for _, v := range []float64{-1, 0, 1e300} {
		inv.Created[1].V = v
		got := Discover("c", "shop", "checkout", "pod_template_hash", inv, t0, t0.Add(time.Hour))
		if len(got) != 1 || got[0].Missing == "" || got[0].Revision != "bbb" || !got[0].Start.IsZero() {
			t.Fatalf("creation %g: %+v", v, got)
		}
	}
}

func short(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

func TestKSMLabel(t *testing.T) {
	if got := KSMLabel("app.kubernetes.io/name"); got != "label_app_kubernetes_io_name" {
		t.Fatal(got)
	}
}
