package istio

import (
	"fmt"
	"slices"
	"strings"
)

// hosts tells the baseline and canary destinations apart.
type hosts struct {
	namespace string // of the VirtualService: short names are relative to it
	baseline  string
	canary    string // "": any destination that is not the baseline
}

func (h hosts) isBaseline(host string) bool { return sameHost(host, h.baseline, h.namespace) }

func (h hosts) isCanary(host string) bool {
	if h.canary == "" {
		return !h.isBaseline(host)
	}
	return sameHost(host, h.canary, h.namespace)
}

// sameHost compares two destination hosts, a short name (no dot) being
// <name>.<namespace>.svc.cluster.local as Istio interprets it.
func sameHost(a, b, namespace string) bool {
	full := func(h string) string {
		if h != "" && !strings.ContainsAny(h, ".*") {
			return h + "." + namespace + ".svc.cluster.local"
		}
		return h
	}
	return a != "" && full(a) == full(b)
}

// routeChange is the drain of one HTTP route: the weights of its
// destinations before and after, in their order.
type routeChange struct {
	Index  int
	Name   string
	Hosts  []string
	Before []int64
	After  []int64
}

func (c routeChange) String() string {
	var parts []string
	for i, h := range c.Hosts {
		if c.Before[i] != c.After[i] {
			parts = append(parts, fmt.Sprintf("%s %d → %d", h, c.Before[i], c.After[i]))
		}
	}
	name := ""
	if c.Name != "" {
		name = fmt.Sprintf(" %q", c.Name)
	}
	return fmt.Sprintf("http[%d]%s: %s", c.Index, name, strings.Join(parts, ", "))
}

// drainResult is what drain found in spec.http.
type drainResult struct {
	changes     []routeChange // routes whose weights change
	splits      int           // routes splitting between canary and baseline
	baseline    bool          // some destination is the baseline
	canaryOnly  []int         // routes sending to the canary without a baseline destination
	explicitHit bool          // the configured canary host is some route's destination
}

// drain sends every HTTP route that splits between canary and baseline
// entirely to the baseline, changing only weights in http (a slice of
// spec.http as the dynamic client decodes it) in place: the canary's share
// goes to the baseline destinations (in proportion to their weights, or
// all to the first if they have none), each canary destination keeps its
// place at weight 0 — the route's shape is unchanged and the drain is
// reverted by setting two numbers — and any third destination keeps its
// weight. Matches, retries, other routes and fields are not touched.
func drain(http []any, h hosts) (drainResult, error) {
	var res drainResult
	for i, r := range http {
		route, _ := r.(map[string]any)
		dests, _ := route["route"].([]any)
		var base, canary, other []int
		var hostNames []string
		weights := make([]int64, len(dests))
		for j, d := range dests {
			dest, _ := d.(map[string]any)
			destination, _ := dest["destination"].(map[string]any)
			host, _ := destination["host"].(string)
			hostNames = append(hostNames, host)
			w, ok := weight(dest["weight"])
			if !ok && len(dests) == 1 {
				w = 100 // a single destination takes all the traffic
			}
			weights[j] = w
			switch {
			case h.isBaseline(host):
				base = append(base, j)
				res.baseline = true
			case h.isCanary(host):
				canary = append(canary, j)
				if h.canary != "" {
					res.explicitHit = true
				}
			default:
				other = append(other, j)
			}
		}
		if len(canary) > 0 && len(base) == 0 {
			if h.canary != "" {
				res.canaryOnly = append(res.canaryOnly, i)
			}
			continue
		}
		if len(canary) == 0 || len(base) == 0 {
			continue
		}
		res.splits++
		var rest int64 = 100
		for _, j := range other {
			rest -= weights[j]
		}
		name, _ := route["name"].(string)
		if rest <= 0 {
			return res, fmt.Errorf("http[%d] %q: the destinations other than canary and baseline already take %d%% of the traffic", i, name, 100-rest)
		}
		after := append([]int64(nil), weights...)
		for _, j := range canary {
			after[j] = 0
		}
		share(after, base, weights, rest)
		if slices.Equal(after, weights) {
			continue
		}
		for _, j := range append(base, canary...) {
			if after[j] != weights[j] || !hasWeight(dests[j]) {
				dests[j].(map[string]any)["weight"] = after[j]
			}
		}
		res.changes = append(res.changes, routeChange{Index: i, Name: name, Hosts: hostNames, Before: weights, After: after})
	}
	return res, nil
}

// share sets out[j] for j in idx to total split in proportion to w[j]
// (largest remainder), or all to idx[0] when their weights are all 0.
func share(out []int64, idx []int, w []int64, total int64) {
	var sum int64
	for _, j := range idx {
		sum += max(w[j], 0)
	}
	if sum == 0 {
		for _, j := range idx {
			out[j] = 0
		}
		out[idx[0]] = total
		return
	}
	given := int64(0)
	for _, j := range idx {
		out[j] = max(w[j], 0) * total / sum
		given += out[j]
	}
	for k := 0; given < total; k = (k + 1) % len(idx) { // remainders, first destinations first
		out[idx[k]]++
		given++
	}
}

func weight(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int32:
		return int64(n), true
	case int:
		return int64(n), true
	case float64:
		return int64(n), true
	}
	return 0, false
}

func hasWeight(d any) bool {
	m, _ := d.(map[string]any)
	_, ok := m["weight"]
	return ok
}
