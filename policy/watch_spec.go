package policy

// The YAML of a rollout-watch system's watch block (docs/rollout-watch.md),
// decoded strictly like the rest of the policy.

type watchSpec struct {
	Namespace     string           `yaml:"namespace"`
	Deployment    string           `yaml:"deployment"`
	Deployments   *deploymentsSpec `yaml:"deployments"`
	Selector      string           `yaml:"selector"`
	RevisionLabel string           `yaml:"revisionLabel"`
	Duration      *Duration        `yaml:"duration"`
	Discovery     string           `yaml:"discovery"`
	History       *historySpec     `yaml:"history"`
	Peers         *peersSpec       `yaml:"peers"`
}

type deploymentsSpec struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type historySpec struct {
	Window     *Duration  `yaml:"window"`
	Seasons    []Duration `yaml:"seasons"`
	MinSeasons *int       `yaml:"minSeasons"`
}

type peersSpec struct {
	Systems   []string `yaml:"systems"`
	Selectors []string `yaml:"selectors"`
}
