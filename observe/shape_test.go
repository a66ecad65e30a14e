package observe_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/internal/testenv"
	"github.com/rewind-sre/rewind/observe"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/source/embedded"
)

// shapeData is a small history of three systems, two sides each, with
// counters x and y by instance and status, a gauge g and a histogram h;
// system c's canary has no y and no h at all.
func shapeData(t *testing.T) *embedded.DB {
	t.Helper()
	var om testenv.OpenMetrics
	r := rand.New(rand.NewPCG(1, 2))
	cum := map[string]float64{}
	for at := t0; !at.After(t0.Add(20 * time.Minute)); at = at.Add(15 * time.Second) {
		for _, sys := range []string{"a", "b", "c"} {
			for _, side := range []string{"canary", "baseline"} {
				for _, inst := range []string{"i1", "i2"} {
					for _, status := range []string{"200", "500"} {
						l := map[string]string{"system": sys, "version": side, "instance": inst, "status": status}
						k := fmt.Sprint(l)
						cum["x"+k] += float64(r.IntN(40))
						om.Counter("x", l, at, cum["x"+k])
						if sys == "c" && side == "canary" {
							continue
						}
						cum["y"+k] += float64(r.IntN(30))
						om.Counter("y", l, at, cum["y"+k])
					}
					l := map[string]string{"system": sys, "version": side, "instance": inst}
					om.Gauge("g", l, at, float64(r.IntN(6)))
					if sys == "c" && side == "canary" {
						continue
					}
					k := fmt.Sprint(l)
					b := map[float64]float64{}
					acc := 0.0
					for _, le := range []float64{0.1, 0.5, 1} {
						cum["h"+k+fmt.Sprint(le)] += float64(r.IntN(20))
						acc += cum["h"+k+fmt.Sprint(le)]
						b[le] = acc
					}
					om.Histogram("h", l, at, b, acc+3, acc)
				}
			}
		}
	}
	db, err := embedded.Open(embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.LoadOpenMetrics(bytes.NewReader(om.Bytes())); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestShapesEqualPerMember: for each query shape, the grouped query's
// fanned-out answer equals each member query's own answer, series by
// series and bit for bit; shapes that cannot be proven equal are not
// grouped.
func TestShapesEqualPerMember(t *testing.T) {
	db := shapeData(t)
	grouped := []string{
		`sum(rate(x_total{ {{selector}} }[5m]))`,
		`sum by (instance) (rate(x_total{ {{selector}} }[5m]))`,
		`sum by (system, instance) (rate(x_total{ {{selector}} }[5m]))`,
		`rate(x_total{ {{selector}} }[5m])`,
		`histogram_quantile(0.9, sum by (le) (rate(h_bucket{ {{selector}} }[5m])))`,
		`histogram_quantile(0.9, rate(h_bucket{ {{selector}} }[5m]))`,
		`sum(rate(x_total{status="500", {{selector}} }[5m])) / sum(rate(x_total{ {{selector}} }[5m]))`,
		`sum by (instance) (rate(x_total{ {{selector}} }[5m])) / on (instance) sum by (instance) (rate(y_total{ {{selector}} }[5m]))`,
		`sum by (instance, status) (rate(x_total{status="500", {{selector}} }[5m])) / ignoring (status) sum by (instance, status) (rate(y_total{status="200", {{selector}} }[5m]))`,
		`sum by (instance, status, version) (rate(x_total{status="500", {{selector}} }[5m])) / ignoring (status, version) sum by (instance, status) (rate(y_total{status="200", {{selector}} }[5m]))`,
		`rate(x_total{ {{selector}} }[5m]) / on (instance, status, system) rate(y_total{ {{selector}} }[5m])`,
		`g{ {{selector}} } > 2 and on (instance) g{ {{selector}} } < 5`,
		`x_total{ {{selector}} } unless on (instance, status) y_total{ {{selector}} }`,
		`sum by (instance) (x_total{ {{selector}} }) or sum by (instance) (y_total{ {{selector}} })`,
		`count(g{ {{selector}} } > 2)`,
		`quantile(0.5, g{ {{selector}} })`,
		`max(g{ {{selector}} }) > bool 3`,
		`-sum(g{ {{selector}} }) * 2 + 1`,
		`clamp_max(max(g{ {{selector}} }), 4)`,
		`avg(sum by (instance) (rate(x_total{ {{selector}} }[1m])))`,
		`max(g{ {{selector}} } / (g{ {{selector}} } > 0)) > 0.95`,
		`sum(increase(y_total{ {{selector}} }[5m])) > 100`,
		`stddev(g{ {{selector}} }) + group(g{ {{selector}} })`,
		`sum by (version, instance) (g{ {{selector}} }) and on (instance) sum by (instance) (g{ {{selector}} } > 3)`,
		`sum by (version, instance) (g{ {{selector}} }) unless sum by (version, instance) (g{ {{selector}} } > 3)`,
	}
	ungrouped := []string{
		`topk(1, g{ {{selector}} })`,
		`sum without (instance) (g{ {{selector}} })`,
		`absent(y_total{ {{selector}} })`,
		`sum(g{ {{selector}} }) or vector(0)`,
		`sum(g{ {{selector}} }) / scalar(sum(g{ {{selector}} }))`,
		`label_replace(g{ {{selector}} }, "system", "z", "", "")`,
		`g{ {{selector}} } * on (instance) group_left g{ {{selector}} , status="none"}`,
		`max_over_time(sum(g{ {{selector}} })[5m:1m])`,
		`count_values("v", g{ {{selector}} })`,
		`sum(g{ {{selector}} }) - sum(g)`,
		`sum by (version, instance) (g{ {{selector}} }) or sum by (instance) (g{ {{selector}} })`,
		`sum by (version) (g{ {{selector}} }) / on (version) sum (g{ {{selector}} })`,
	}
	for _, tmpl := range append(grouped, ungrouped...) {
		t.Run(tmpl, func(t *testing.T) {
			var members []string
			for _, sys := range []string{"a", "b", "c"} {
				for _, side := range []string{"canary", "baseline"} {
					members = append(members, strings.ReplaceAll(tmpl, "{{selector}}", fmt.Sprintf(`system="%s", version="%s"`, sys, side)))
				}
			}
			b := observe.NewBatch([]*policy.System{{Name: "s", Triggers: exprTriggers(members)}}, observe.BatchOptions{})
			wantGrouped := slices.Contains(grouped, tmpl)
			if n := len(b.Queries()); wantGrouped && n != 1 || !wantGrouped && n != len(members) {
				t.Fatalf("%d queries for %d members (ungrouped: %v): %q", n, len(members), b.Ungrouped, b.Queries())
			}
			nonEmpty := 0
			for _, at := range []time.Time{t0.Add(6 * time.Minute), t0.Add(13*time.Minute + 7*time.Second), t0.Add(30 * time.Minute)} {
				ans := b.Fetch(context.Background(), db, at, 1)
				for _, m := range members {
					want, werr := db.Query(context.Background(), m, at)
					got, gerr := observe.AnswerOf(ans, m)
					if (werr != nil) != (gerr != nil) {
						t.Fatalf("%s at %s: error %v, alone %v", m, at, gerr, werr)
					}
					if !sameVector(got, want) {
						t.Fatalf("%s at %s:\n grouped %v\n   alone %v\n(query %s)", m, at, got, want, b.Queries()[0])
					}
					nonEmpty += len(want)
				}
			}
			if wantGrouped && nonEmpty == 0 {
				t.Fatal("every answer is empty: the comparison proves nothing")
			}
		})
	}
}

func exprTriggers(queries []string) []*policy.Trigger {
	out := make([]*policy.Trigger, len(queries))
	for i, q := range queries {
		out[i] = &policy.Trigger{Name: fmt.Sprint(i), Form: policy.FormExpr, Expr: q}
	}
	return out
}

func sameVector(a, b rewind.Vector) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(s rewind.Sample) string {
		ks := make([]string, 0, len(s.Labels))
		for k, v := range s.Labels {
			ks = append(ks, k+"="+v)
		}
		slices.Sort(ks)
		return strings.Join(ks, ",")
	}
	sort := func(v rewind.Vector) rewind.Vector {
		v = slices.Clone(v)
		slices.SortFunc(v, func(x, y rewind.Sample) int { return strings.Compare(key(x), key(y)) })
		return v
	}
	a, b = sort(a), sort(b)
	for i := range a {
		if key(a[i]) != key(b[i]) || !a[i].T.Equal(b[i].T) || math.Float64bits(a[i].V) != math.Float64bits(b[i].V) {
			return false
		}
	}
	return true
}
