package rollout

import (
	"math"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

// FuzzDiscover: whatever series a Prometheus returns, discovery neither
// panics nor lists a rollout it could judge without a start.
func FuzzDiscover(f *testing.F) {
	f.Add("checkout-aaa", "checkout", 1e9, "checkout-bbb", 1.7e9, "bbb", int64(0))
	f.Add("", "", math.NaN(), "x", math.Inf(1), "", int64(-1))
	f.Add("checkout-", "checkout", -5.0, "checkout-", 0.0, "checkout-", int64(1<<40))
	f.Fuzz(func(t *testing.T, rs1, owner string, c1 float64, rs2 string, c2 float64, hash string, seen int64) {
		inv := Inventory{
			Owners:  rewind.Vector{{Labels: map[string]string{"replicaset": rs1, "owner_name": owner}}, {Labels: map[string]string{"replicaset": rs2, "owner_name": owner}}},
			Created: rewind.Vector{{Labels: map[string]string{"replicaset": rs1}, V: c1}, {Labels: map[string]string{"replicaset": rs2}, V: c2}},
			Revisions: rewind.Matrix{{Labels: map[string]string{"pod_template_hash": hash},
				Points: []rewind.Point{{T: time.Unix(0, seen).UTC(), V: 1}}}},
		}
		for _, r := range Discover("s", "ns", owner, "pod_template_hash", inv, time.Unix(0, 0), time.Unix(1<<33, 0)) {
			if r.Missing == "" && (r.Start.IsZero() || r.Revision == "") {
				t.Fatalf("judgeable rollout without a start or revision: %+v", r)
			}
		}
	})
}
