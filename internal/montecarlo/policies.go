package montecarlo

import (
	_ "embed"
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/rewind-sre/rewind/policy"
)

// Rules is a policy under test with the name the table shows.
type Rules struct {
	Name   string
	Policy *policy.Policy
}

// The judges compared: the built-in policy with every judge trigger in one
// mode, under the seed's hold times.
const (
	FixedName      = "fixed window"
	SequentialName = "sequential"
	seedName       = "seed rules (query)"
)

//go:embed testdata/seed-rules.yaml
var seedRules []byte

// FixedRules is the built-in policy with every judge trigger tested on its
// window at each evaluation (sequential: false).
func FixedRules() (Rules, error) { return judgeMode(FixedName, false) }

// SequentialRules is the built-in policy with every judge trigger that has
// a hold time proven by the anytime-valid test over its episode
// (sequential: true); a trigger that fires at once (for: 0s) keeps the test
// of its window, the only evidence there is at once (docs/judge.md).
func SequentialRules() (Rules, error) { return judgeMode(SequentialName, true) }

// DefaultRules is the built-in policy as shipped, named after its judge
// mode: the one whose measurements the bars judge.
func DefaultRules() (Rules, error) {
	p, err := policy.Parse("default.yaml", policy.Default())
	if err != nil {
		return Rules{}, err
	}
	name := FixedName
	for _, t := range p.Systems[0].Triggers {
		if t.Judge != nil && t.Judge.Sequential {
			name = SequentialName
		}
	}
	return Rules{Name: name, Policy: p}, nil
}

// SeedRules is the built-in policy with the seed's query-form error,
// ceiling, success-rate and p99 triggers (testdata/seed-rules.yaml).
func SeedRules() (Rules, error) {
	p, err := policy.Parse("testdata/seed-rules.yaml", seedRules)
	return Rules{Name: seedName, Policy: p}, err
}

func judgeMode(name string, sequential bool) (Rules, error) {
	text, err := withSequential(policy.Default(), sequential)
	if err != nil {
		return Rules{}, err
	}
	p, err := policy.Parse("default.yaml ("+name+")", text)
	return Rules{Name: name, Policy: p}, err
}

// withSequential sets `sequential` on every judge trigger of a policy that
// has a hold time, and clears it on the others.
func withSequential(text []byte, on bool) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil {
		return nil, err
	}
	n := 0
	var walk func(*yaml.Node)
	walk = func(node *yaml.Node) {
		if node.Kind == yaml.MappingNode {
			held := false
			for i := 0; i+1 < len(node.Content); i += 2 {
				if k, v := node.Content[i], node.Content[i+1]; k.Value == "for" {
					d, err := policy.ParseDuration(v.Value)
					held = err == nil && d > 0
				}
			}
			for i := 0; i+1 < len(node.Content); i += 2 {
				if k, v := node.Content[i], node.Content[i+1]; k.Value == "judge" && v.Kind == yaml.MappingNode {
					setKey(v, "sequential", fmt.Sprint(on && held))
					n++
				}
			}
		}
		for _, c := range node.Content {
			walk(c)
		}
	}
	walk(&doc)
	if n == 0 {
		return nil, fmt.Errorf("the policy has no judge trigger")
	}
	return yaml.Marshal(&doc)
}

func setKey(m *yaml.Node, key, value string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1].Value, m.Content[i+1].Tag = value, "!!bool"
			return
		}
	}
	m.Content = append(m.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Value: key},
		&yaml.Node{Kind: yaml.ScalarNode, Value: value, Tag: "!!bool"})
}
