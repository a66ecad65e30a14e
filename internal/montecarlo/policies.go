package montecarlo

import (
	_ "embed"

	"github.com/rewind-sre/rewind/policy"
)

// Rules is a policy under test with the name the table shows.
type Rules struct {
	Name   string
	Policy *policy.Policy
}

// defaultName is the name of DefaultRules, whose measurements the bars judge.
const defaultName = "default (judge)"

//go:embed testdata/seed-rules.yaml
var seedRules []byte

// DefaultRules is the built-in policy: error and latency triggers judged on
// request counts.
func DefaultRules() (Rules, error) {
	p, err := policy.Parse("default.yaml", policy.Default())
	return Rules{Name: defaultName, Policy: p}, err
}

// SeedRules is the built-in policy with the seed's query-form error,
// ceiling, success-rate and p99 triggers (testdata/seed-rules.yaml).
func SeedRules() (Rules, error) {
	p, err := policy.Parse("testdata/seed-rules.yaml", seedRules)
	return Rules{Name: "seed rules (query)", Policy: p}, err
}
