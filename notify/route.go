package notify

import (
	"sort"
	"sync"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
)

// Router picks the notifiers (by name) that get an event.
type Router interface {
	Route(e rewind.Event) []string
}

// RouterFunc adapts a function to Router.
type RouterFunc func(e rewind.Event) []string

func (f RouterFunc) Route(e rewind.Event) []string { return f(e) }

// PolicyRouter routes an event to the notifiers its system lists in the
// policy (systems[].notify), in the listed order. An event of a system that
// is not in the policy goes nowhere.
func PolicyRouter(p *policy.Policy) Router {
	routes := map[string][]string{}
	for _, s := range p.Systems {
		routes[s.Name] = dedup(s.Notify)
	}
	return RouterFunc(func(e rewind.Event) []string { return routes[e.System] })
}

func dedup(names []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// Counters counts attempts by notifier and result: the numbers behind
// rewind_notifications_total{notifier,result}. Its Observe method is an
// Outbox.OnResult. The zero value is ready to use; safe for concurrent use.
type Counters struct {
	mu sync.Mutex
	m  map[counterKey]uint64
}

type counterKey struct {
	notifier string
	result   Result
}

// Observe counts one result.
func (c *Counters) Observe(notifier string, r Result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[counterKey]uint64{}
	}
	c.m[counterKey{notifier, r}]++
}

// Get returns one count.
func (c *Counters) Get(notifier string, r Result) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[counterKey{notifier, r}]
}

// Count is one counter's value.
type Count struct {
	Notifier string
	Result   Result
	Value    uint64
}

// Snapshot returns every counter, sorted by notifier and result.
func (c *Counters) Snapshot() []Count {
	c.mu.Lock()
	out := make([]Count, 0, len(c.m))
	for k, v := range c.m {
		out = append(out, Count{k.notifier, k.result, v})
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Notifier != out[j].Notifier {
			return out[i].Notifier < out[j].Notifier
		}
		return out[i].Result < out[j].Result
	})
	return out
}
