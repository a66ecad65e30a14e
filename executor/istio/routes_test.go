package istio

import (
	"encoding/json"
	"strings"
	"testing"
)

// routes decodes spec.http from JSON as the dynamic client does (integers
// as int64).
func routes(t *testing.T, js string) []any {
	t.Helper()
	var out []any
	dec := json.NewDecoder(strings.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	var fix func(any) any
	fix = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				x[k] = fix(e)
			}
		case []any:
			for i, e := range x {
				x[i] = fix(e)
			}
		case json.Number:
			n, _ := x.Int64()
			return n
		}
		return v
	}
	return fix(out).([]any)
}

func weights(http []any) [][]int64 {
	var out [][]int64
	for _, r := range http {
		var ws []int64
		for _, d := range r.(map[string]any)["route"].([]any) {
			w, ok := weight(d.(map[string]any)["weight"])
			if !ok {
				w = -1
			}
			ws = append(ws, w)
		}
		out = append(out, ws)
	}
	return out
}

func TestDrain(t *testing.T) {
	h := hosts{namespace: "shop", baseline: "web", canary: "web-canary"}
	for _, tc := range []struct {
		name    string
		h       hosts
		http    string
		want    string // weights after, as JSON
		changed int
		splits  int
		err     string
	}{
		{name: "two-way", h: h,
			http: `[{"route":[{"destination":{"host":"web"},"weight":90},{"destination":{"host":"web-canary"},"weight":10}]}]`,
			want: `[[100,0]]`, changed: 1, splits: 1},
		{name: "canary first, full names", h: h,
			http: `[{"route":[{"destination":{"host":"web-canary.shop.svc.cluster.local"},"weight":30},{"destination":{"host":"web.shop.svc.cluster.local"},"weight":70}]}]`,
			want: `[[0,100]]`, changed: 1, splits: 1},
		{name: "already drained", h: h,
			http: `[{"route":[{"destination":{"host":"web"},"weight":100},{"destination":{"host":"web-canary"},"weight":0}]}]`,
			want: `[[100,0]]`, changed: 0, splits: 1},
		{name: "all on the canary", h: h,
			http: `[{"route":[{"destination":{"host":"web"},"weight":0},{"destination":{"host":"web-canary"},"weight":100}]}]`,
			want: `[[100,0]]`, changed: 1, splits: 1},
		{name: "two baseline subsets keep their proportion", h: h,
			http: `[{"route":[{"destination":{"host":"web","subset":"a"},"weight":45},{"destination":{"host":"web","subset":"b"},"weight":45},{"destination":{"host":"web-canary"},"weight":10}]}]`,
			want: `[[50,50,0]]`, changed: 1, splits: 1},
		{name: "uneven remainder", h: h,
			http: `[{"route":[{"destination":{"host":"web","subset":"a"},"weight":33},{"destination":{"host":"web","subset":"b"},"weight":33},{"destination":{"host":"web-canary"},"weight":34}]}]`,
			want: `[[50,50,0]]`, changed: 1, splits: 1},
		{name: "a third host keeps its weight", h: h,
			http: `[{"route":[{"destination":{"host":"web"},"weight":70},{"destination":{"host":"web-canary"},"weight":20},{"destination":{"host":"legacy"},"weight":10}]}]`,
			want: `[[90,0,10]]`, changed: 1, splits: 1},
		{name: "any other host is the canary without canaryHost", h: hosts{namespace: "shop", baseline: "web"},
			http: `[{"route":[{"destination":{"host":"web"},"weight":70},{"destination":{"host":"web-v2"},"weight":20},{"destination":{"host":"web-v3"},"weight":10}]},{"route":[{"destination":{"host":"static"}}]}]`,
			want: `[[100,0,0],[-1]]`, changed: 1, splits: 1},
		{name: "other routes untouched", h: h,
			http: `[{"route":[{"destination":{"host":"static"}}]},{"route":[{"destination":{"host":"web"}}]},{"route":[{"destination":{"host":"web"},"weight":50},{"destination":{"host":"web-canary"},"weight":50}]}]`,
			want: `[[-1],[-1],[100,0]]`, changed: 1, splits: 1},
		{name: "canary-only route is reported, not changed", h: h,
			http: `[{"route":[{"destination":{"host":"web-canary"}}]},{"route":[{"destination":{"host":"web"},"weight":50},{"destination":{"host":"web-canary"},"weight":50}]}]`,
			want: `[[-1],[100,0]]`, changed: 1, splits: 1},
		{name: "third hosts take everything", h: h,
			http: `[{"route":[{"destination":{"host":"web"},"weight":0},{"destination":{"host":"web-canary"},"weight":0},{"destination":{"host":"legacy"},"weight":100}]}]`,
			err:  "already take 100%"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			http := routes(t, tc.http)
			res, err := drain(http, tc.h)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(weights(http))
			if string(got) != tc.want || len(res.changes) != tc.changed || res.splits != tc.splits {
				t.Errorf("weights %s, %d changed, %d splits; want %s, %d, %d", got, len(res.changes), res.splits, tc.want, tc.changed, tc.splits)
			}
			for _, c := range res.changes {
				t.Logf("%s", c)
			}
		})
	}
}

func TestSameHost(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"web", "web", true},
		{"web", "web.shop.svc.cluster.local", true},
		{"web.shop.svc.cluster.local", "web", true},
		{"web", "web.other.svc.cluster.local", false},
		{"web", "web-canary", false},
		{"", "", false},
		{"*.example.com", "*.example.com", true},
	} {
		if got := sameHost(tc.a, tc.b, "shop"); got != tc.want {
			t.Errorf("sameHost(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestRouteChangeString(t *testing.T) {
	c := routeChange{Index: 2, Name: "api", Hosts: []string{"web", "web-canary", "legacy"}, Before: []int64{70, 20, 10}, After: []int64{90, 0, 10}}
	if got, want := c.String(), `http[2] "api": web 70 → 90, web-canary 20 → 0`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
