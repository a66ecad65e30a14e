package policy

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Discovery says where a live watch learns of new rollouts. Backtests always
// read kube-state-metrics: the API server keeps no history.
type Discovery string

const (
	// DiscoveryKubeStateMetrics: kube_replicaset_owner and
	// kube_replicaset_created in Prometheus (the default).
	DiscoveryKubeStateMetrics Discovery = "kube-state-metrics"
	// DiscoveryKubernetes: a watch of the Deployment and its ReplicaSets on
	// the API server.
	DiscoveryKubernetes Discovery = "kubernetes"
)

// Defaults of the watch block.
const (
	DefaultRevisionLabel = "pod_template_hash"
	DefaultWatchDuration = time.Hour
	DefaultHistoryWindow = time.Hour
	DefaultMinSeasons    = 1
	// defaultServing is the request rate that says a revision still serves
	// (the traffic query when the system has one).
	defaultServing = `sum(rate(http_requests_total{ {{selector}} }[5m]))`
	// The revisions a watch system's template triggers are compiled with:
	// label values no ReplicaSet has, so a template never matches a series.
	templateRevision = "<new revision>"
	templatePrevious = "<previous revision>"
	// exampleDeployment stands for {{deployment}} when a template is checked.
	exampleDeployment = "deployment"
)

// DefaultSeasons are the reference windows' distances into the past: the
// same hours one day and one week before.
var DefaultSeasons = []time.Duration{24 * time.Hour, 7 * 24 * time.Hour}

// Watch is the rollout-watch part of a system: whose rollouts are watched,
// how the service's series are selected, how long a new revision is watched
// and against what history it is judged once the old revision is gone.
type Watch struct {
	Namespace string
	// Deployment is the one Deployment watched; empty when MatchLabels
	// selects the Deployments (one system per match, named
	// SYSTEM.DEPLOYMENT, whose Selector holds {{deployment}}).
	Deployment  string
	MatchLabels map[string]string
	// Selector is the label matchers of the service's series, without the
	// revision label; it may hold {{deployment}}.
	Selector string
	// RevisionLabel tells revisions apart on the service's series.
	RevisionLabel string
	// Duration is how long a new revision is watched after its rollout completed.
	Duration  time.Duration
	Discovery Discovery
	History   History
	Peers     Peers

	serving string // the request-rate template that says a revision serves
	spec    systemSpec
	file    string
}

// History is how a new revision is judged once the old one is gone: against
// the Window before the rollout started and the Window centred on the same
// instant each Season earlier, when the metrics reach that far.
type History struct {
	Window     time.Duration
	Seasons    []time.Duration
	MinSeasons int // seasonal windows with enough data needed to judge at all
}

// Peers are the services a degradation is compared with before it is blamed
// on a rollout: other watch systems of the policy, and series selectors of
// services Rewind does not watch.
type Peers struct {
	AllWatched bool     // every other watch system (peers.systems not given)
	Systems    []string // named watch systems (when not AllWatched)
	Selectors  []string
}

var deploymentPlaceholder = regexp.MustCompile(`\{\{\s*deployment\s*\}\}`)

// ServiceSelector is the service's series selector for one Deployment.
func (w *Watch) ServiceSelector(deployment string) string {
	return deploymentPlaceholder.ReplaceAllLiteralString(w.Selector, deployment)
}

// RevisionSelector selects one revision's series of the service.
func (w *Watch) RevisionSelector(deployment, revision string) string {
	return w.ServiceSelector(deployment) + "," + w.RevisionLabel + "=" + strconv.Quote(revision)
}

// ServingQuery is the request rate of the series that selector picks: a
// positive value says that they serve.
func (w *Watch) ServingQuery(selector string) string { return resolve(w.serving, selector) }

// SystemName names the system that watches one Deployment.
func (w *Watch) SystemName(system, deployment string) string {
	if w.Deployment != "" {
		return system
	}
	return system + "." + deployment
}

// IsWatch reports whether s is a rollout-watch system.
func (s *System) IsWatch() bool { return s.Watch != nil }

// Instantiate compiles a watch system's triggers, traffic guard and rollback
// for one Deployment with the given canary and baseline selectors: for a
// rollout, the new and the previous revision (RevisionSelector); for a
// history comparison or a peer, a service selector. The result is a plain
// system named name that observe, decide and the rollback plan run as any
// other; its Watch is the template's.
func (s *System) Instantiate(name, deployment, canarySel, baselineSel string) (*System, error) {
	w := s.Watch
	if w == nil {
		return nil, fmt.Errorf("system %s is not a watch system", s.Name)
	}
	c := &compiler{file: w.file, lines: map[string]int{}}
	spec := w.spec
	out := c.revisionSystem("systems["+s.Name+"]", &spec, w, deployment, canarySel, baselineSel)
	if len(c.errs) > 0 {
		return nil, fmt.Errorf("instantiating %s for %s: %w", s.Name, deployment, c.errs)
	}
	out.Name, out.Watch = name, w
	return out, nil
}

func (c *compiler) watchSystem(path string, s *systemSpec) *System {
	w := c.watch(path+".watch", s.Watch)
	if s.Traffic != nil && s.Traffic.Query != "" {
		w.serving = s.Traffic.Query
	}
	if s.Canary != nil {
		c.errf(path+".canary", "not used by a watch system: its revisions are told apart by watch.revisionLabel")
	}
	if s.Baseline != nil {
		c.errf(path+".baseline", "not used by a watch system: the new revision is judged against the previous one and the service's history")
	}
	for i, t := range s.Triggers {
		if t.Canary != "" || t.Baseline != "" {
			c.errf(fmt.Sprintf("%s.triggers[%d]", path, i), "the explicit form names no {{selector}}: a watch system's triggers use the query, judge, expr or probe form")
		}
	}
	c.watchRollbackChecks(path+".rollback", s.Rollback, w)
	dep := w.Deployment
	if dep == "" {
		dep = exampleDeployment
	}
	sys := c.revisionSystem(path, s, w, dep, w.RevisionSelector(dep, templateRevision), w.RevisionSelector(dep, templatePrevious))
	w.spec, w.file = *s, c.file
	sys.Watch = w
	return sys
}

// revisionSystem compiles the body of a watch system with fixed selectors.
func (c *compiler) revisionSystem(path string, s *systemSpec, w *Watch, deployment, canarySel, baselineSel string) *System {
	sys := c.systemHead(path, s)
	sys.CanarySelector, sys.BaselineSelector = canarySel, baselineSel
	c.systemTriggers(path, s, sys)
	// After `rollout undo` the whole service is the restored revision: the
	// verification reads the service, whatever the rollout.
	sys.Rollback = c.rollback(path+".rollback", watchRollbackSpec(s.Rollback, w, deployment), canarySel, w.ServiceSelector(deployment))
	return sys
}

// watchRollbackSpec is the rollback of a watch system: `rollout undo` of the
// watched Deployment (no drain, no scale-down), with the rest as written.
func watchRollbackSpec(r *rollbackSpec, w *Watch, deployment string) *rollbackSpec {
	var out rollbackSpec
	if r != nil {
		out = *r
	}
	k := kubernetesSpec{Namespace: w.Namespace, Deployment: deployment}
	if r != nil && r.Kubernetes != nil {
		k.Kubeconfig = r.Kubernetes.Kubeconfig
	}
	out.Kubernetes, out.Istio, out.Drain = &k, nil, nil
	return &out
}

func (c *compiler) watchRollbackChecks(path string, r *rollbackSpec, w *Watch) {
	if r == nil {
		return
	}
	if k := r.Kubernetes; k != nil {
		if k.Namespace != "" && k.Namespace != w.Namespace || k.Deployment != "" && k.Deployment != w.Deployment {
			c.errf(path+".kubernetes", "a watch system undoes the Deployment it watches (%s/%s): leave namespace and deployment out", w.Namespace, w.Deployment)
		}
		if k.ScaleToZero {
			c.errf(path+".kubernetes.scaleToZero", "a watch system's rollback is `rollout undo` of its Deployment: nothing is scaled to zero")
		}
	}
	if r.Istio != nil {
		c.errf(path+".istio", "a watch system has no traffic split to drain: its rollback is `rollout undo` of the Deployment")
	}
	if r.Drain != nil {
		c.errf(path+".drain", "a watch system has no traffic split to drain: its rollback is `rollout undo` of the Deployment")
	}
	for _, step := range []string{"drain", "scale-down"} {
		if _, ok := r.Exec[step]; ok {
			c.errf(path+".exec."+step, "a watch system's rollback has no %s step", step)
		}
		if _, ok := r.Webhook[step]; ok {
			c.errf(path+".webhook."+step, "a watch system's rollback has no %s step", step)
		}
	}
}

// watch validates the watch block and fills in its defaults.
func (c *compiler) watch(path string, s *watchSpec) *Watch {
	w := &Watch{
		Namespace: s.Namespace, Deployment: s.Deployment, Selector: s.Selector,
		RevisionLabel: DefaultRevisionLabel, Duration: DefaultWatchDuration, Discovery: DiscoveryKubeStateMetrics,
		History: History{Window: DefaultHistoryWindow, Seasons: slices.Clone(DefaultSeasons), MinSeasons: DefaultMinSeasons},
		Peers:   Peers{AllWatched: true},
		serving: defaultServing,
	}
	if errs := validation.IsDNS1123Label(s.Namespace); errs != nil {
		c.errf(path+".namespace", "required: the Deployment's namespace (%s)", strings.Join(errs, "; "))
	}
	switch {
	case (s.Deployment == "") == (s.Deployments == nil):
		c.errf(path, "give exactly one of deployment (a name) or deployments.matchLabels (one system per matching Deployment)")
	case s.Deployment != "":
		if errs := validation.IsDNS1123Subdomain(s.Deployment); errs != nil {
			c.errf(path+".deployment", "not a Deployment name: %s", strings.Join(errs, "; "))
		}
	default:
		w.MatchLabels = c.matchLabels(path+".deployments.matchLabels", s.Deployments.MatchLabels)
		if !deploymentPlaceholder.MatchString(s.Selector) {
			c.errf(path+".selector", "needs {{deployment}} where the Deployment's name goes, when deployments.matchLabels selects several")
		}
	}
	if s.RevisionLabel != "" {
		w.RevisionLabel = s.RevisionLabel
	}
	if !labelNameRE.MatchString(w.RevisionLabel) {
		c.errf(path+".revisionLabel", "not a Prometheus label name: %q", w.RevisionLabel)
	}
	c.watchSelector(path+".selector", s.Selector, w.RevisionLabel)
	if s.Duration != nil {
		if w.Duration = time.Duration(*s.Duration); w.Duration <= 0 {
			c.errf(path+".duration", "must be positive")
		}
	}
	if s.Discovery != "" {
		w.Discovery = Discovery(s.Discovery)
	}
	if w.Discovery != DiscoveryKubeStateMetrics && w.Discovery != DiscoveryKubernetes {
		c.errf(path+".discovery", "must be kube-state-metrics or kubernetes, not %q", s.Discovery)
	}
	if s.History != nil {
		c.history(path+".history", s.History, &w.History)
	}
	if p := s.Peers; p != nil {
		w.Peers = Peers{AllWatched: p.Systems == nil, Systems: p.Systems}
		for i, sel := range p.Selectors {
			if err := checkSelector(sel); err != nil {
				c.errf(fmt.Sprintf("%s.peers.selectors[%d]", path, i), "%v", err)
			}
			w.Peers.Selectors = append(w.Peers.Selectors, sel)
		}
	}
	return w
}

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func (c *compiler) matchLabels(path string, m map[string]string) map[string]string {
	if len(m) == 0 {
		c.errf(path, "at least one label is required")
	}
	for k, v := range m {
		if errs := validation.IsQualifiedName(k); errs != nil {
			c.errf(path+"."+k, "not a label key: %s", strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); errs != nil {
			c.errf(path+"."+k, "not a label value: %s", strings.Join(errs, "; "))
		}
	}
	return m
}

func (c *compiler) watchSelector(path, sel, revisionLabel string) {
	if strings.TrimSpace(sel) == "" {
		c.errf(path, `required: the label matchers of the service's series, e.g. namespace="shop",app="checkout"`)
		return
	}
	resolved := deploymentPlaceholder.ReplaceAllLiteralString(sel, exampleDeployment)
	if err := checkSelector(resolved); err != nil {
		c.errf(path, "%v", err)
		return
	}
	ms, _ := promParser.ParseMetricSelector("{" + resolved + "}")
	for _, m := range ms {
		if m.Name == revisionLabel {
			c.errf(path, "must not match the revision label %s: Rewind adds it per revision", revisionLabel)
		}
		if m.Name == "__name__" {
			c.errf(path, "must not name a metric: it selects every series of the service")
		}
	}
}

func (c *compiler) history(path string, s *historySpec, h *History) {
	if s.Window != nil {
		if h.Window = time.Duration(*s.Window); h.Window <= 0 {
			c.errf(path+".window", "must be positive")
		}
	}
	if s.Seasons != nil {
		h.Seasons = nil
		for i, d := range s.Seasons {
			if time.Duration(d) < h.Window {
				c.errf(fmt.Sprintf("%s.seasons[%d]", path, i), "%s is shorter than the window %s: the reference window would reach into the present", d, Duration(h.Window))
			}
			h.Seasons = append(h.Seasons, time.Duration(d))
		}
	}
	if s.MinSeasons != nil {
		h.MinSeasons = *s.MinSeasons
	}
	if h.MinSeasons < 0 || h.MinSeasons > len(h.Seasons) {
		c.errf(path+".minSeasons", "must be between 0 and the number of seasons (%d)", len(h.Seasons))
	}
}

// watchPeers checks that the peers named by watch systems are other watch systems.
func (c *compiler) watchPeers(p *Policy) {
	for i, s := range p.Systems {
		if s.Watch == nil {
			continue
		}
		for j, name := range s.Watch.Peers.Systems {
			path := fmt.Sprintf("systems[%d].watch.peers.systems[%d]", i, j)
			switch o := p.System(name); {
			case o == nil:
				c.errf(path, "no system named %q", name)
			case o == s:
				c.errf(path, "a system is not its own peer")
			case o.Watch == nil:
				c.errf(path, "%s is not a watch system: list its service's series selector under peers.selectors", name)
			}
		}
	}
}
