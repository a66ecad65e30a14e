package policy

import (
	"fmt"
	"regexp"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

const (
	defaultInterval   = 30 * time.Second
	defaultTimeout    = 10 * time.Second
	defaultVerifyFor  = 30 * time.Second
	defaultVerifyWait = 2 * time.Minute
	defaultLogTail    = 10000
	// defaultVerifyQuery is the seed's post-rollback check: baseline success rate.
	defaultVerifyQuery = `sum(rate(http_requests_total{status!~"5..", {{selector}} }[1m])) / sum(rate(http_requests_total{ {{selector}} }[1m]))`
	defaultVerifyCond  = `baseline >= 0.99`
	// defaultDrainQuery reacts within two scrapes: irate of the last samples.
	defaultDrainQuery  = `sum(irate(http_requests_total{ {{selector}} }[1m]))`
	defaultDrainBelow  = 0.1
	defaultDrainWithin = time.Minute
)

// MinInterval is the shortest evaluation interval: a cycle's queries,
// their timeout and the scrape behind them take about that long.
const MinInterval = time.Second

// MinTimeout is the shortest Prometheus query timeout.
const MinTimeout = time.Millisecond

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$`)

func (c *compiler) policy(f *fileSpec) *Policy {
	if f.APIVersion != "rewind/v1" {
		c.errf("apiVersion", "must be rewind/v1, not %q", f.APIVersion)
	}
	if f.Kind != "Policy" {
		c.errf("kind", "must be Policy, not %q", f.Kind)
	}
	p := &Policy{Notifiers: map[string]Notifier{}}
	for name, n := range f.Notifiers {
		p.Notifiers[name] = c.notifier("notifiers."+name, name, n)
	}
	if len(f.Systems) == 0 {
		c.errf("systems", "at least one system is required")
	}
	names := map[string]bool{}
	for i := range f.Systems {
		path := fmt.Sprintf("systems[%d]", i)
		s := c.system(path, &f.Systems[i])
		if names[s.Name] {
			c.errf(path+".name", "duplicate system name %q", s.Name)
		}
		names[s.Name] = true
		for j, n := range s.Notify {
			if _, ok := p.Notifiers[n]; !ok {
				c.errf(fmt.Sprintf("%s.notify[%d]", path, j), "no notifier named %q under notifiers", n)
			}
		}
		p.Systems = append(p.Systems, s)
	}
	c.sharedEndpoints(p.Systems)
	c.watchPeers(p)
	return p
}

// sharedEndpoints checks that systems reading one Prometheus endpoint agree
// on its bound on queries in flight: the bound is the endpoint's, not a
// system's.
func (c *compiler) sharedEndpoints(systems []*System) {
	first := map[string]int{}
	for i, s := range systems {
		if s.Prometheus.URL == "" {
			continue
		}
		key := s.Prometheus.Endpoint()
		j, ok := first[key]
		if !ok {
			first[key] = i
			continue
		}
		if a, b := systems[j].Prometheus.MaxInFlight, s.Prometheus.MaxInFlight; a != b {
			c.errf(fmt.Sprintf("systems[%d].prometheus.maxInFlight", i), "is %d, but systems[%d] (%s) reads the same Prometheus with %d: the bound is shared by every system of an endpoint", b, j, systems[j].Name, a)
		}
	}
}

func (c *compiler) system(path string, s *systemSpec) *System {
	if s.Watch != nil {
		return c.watchSystem(path, s)
	}
	sys := c.systemHead(path, s)
	if s.Canary == nil {
		c.errf(path+".canary", "required: canary.selector, the label matchers of the canary")
	} else if err := checkSelector(s.Canary.Selector); err != nil {
		c.errf(path+".canary.selector", "%v", err)
	} else {
		sys.CanarySelector = s.Canary.Selector
	}
	if s.Baseline == nil {
		c.errf(path+".baseline", "required: baseline.selector, the label matchers of the baseline")
	} else if err := checkSelector(s.Baseline.Selector); err != nil {
		c.errf(path+".baseline.selector", "%v", err)
	} else {
		sys.BaselineSelector = s.Baseline.Selector
	}
	c.systemTriggers(path, s, sys)
	sys.Rollback = c.rollback(path+".rollback", s.Rollback, sys.CanarySelector, sys.BaselineSelector)
	return sys
}

// systemHead compiles what every system, canary or watch, begins with:
// its name, interval, notices and Prometheus.
func (c *compiler) systemHead(path string, s *systemSpec) *System {
	sys := &System{Name: s.Name, Interval: defaultInterval, Notify: s.Notify, path: path}
	if !nameRE.MatchString(s.Name) {
		c.errf(path+".name", "must be a lowercase name of letters, digits, '-', '.', '_' (got %q)", s.Name)
	}
	if s.Interval != nil {
		if sys.Interval = time.Duration(*s.Interval); sys.Interval < MinInterval {
			c.errf(path+".interval", "must be at least %s (got %s): each cycle queries the metrics source", Duration(MinInterval), *s.Interval)
		}
	}
	sys.Prometheus = c.prometheus(path+".prometheus", s.Prometheus)
	return sys
}

// systemTriggers compiles the traffic guard and the triggers of a system
// whose selectors are set: at least one trigger, each name once.
func (c *compiler) systemTriggers(path string, s *systemSpec, sys *System) {
	if s.Traffic != nil {
		sys.Traffic = c.traffic(path+".traffic", s.Traffic, sys.CanarySelector)
	}
	if len(s.Triggers) == 0 {
		c.errf(path+".triggers", "at least one trigger is required")
	}
	names := map[string]bool{}
	for i := range s.Triggers {
		tp := fmt.Sprintf("%s.triggers[%d]", path, i)
		t := c.trigger(tp, &s.Triggers[i], sys)
		if names[t.Name] {
			c.errf(tp+".name", "duplicate trigger name %q", t.Name)
		}
		names[t.Name] = true
		sys.Triggers = append(sys.Triggers, t)
	}
}

func (c *compiler) prometheus(path string, p *prometheusSpec) Prometheus {
	out := Prometheus{Timeout: defaultTimeout, MaxInFlight: DefaultMaxInFlight}
	if p == nil {
		return out // backtest --data and --prometheus need none
	}
	out.URL, out.BearerTokenFile, out.CAFile, out.InsecureSkipVerify = p.URL, p.BearerTokenFile, p.CAFile, p.InsecureSkipVerify
	if err := out.CheckURL(); err != nil {
		c.errf(path+".url", "%v", err)
	}
	if p.Timeout != nil {
		out.Timeout = time.Duration(*p.Timeout)
		if out.Timeout < MinTimeout {
			c.errf(path+".timeout", "must be at least %s", Duration(MinTimeout))
		}
	}
	if p.MaxInFlight != nil {
		if out.MaxInFlight = *p.MaxInFlight; out.MaxInFlight < 1 || out.MaxInFlight > 256 {
			c.errf(path+".maxInFlight", "must be between 1 and 256")
		}
	}
	if p.BasicAuth != nil {
		out.BasicAuthUsername, out.BasicAuthPassword = p.BasicAuth.Username, p.BasicAuth.PasswordFile
		if p.BasicAuth.Username == "" || p.BasicAuth.PasswordFile == "" {
			c.errf(path+".basicAuth", "needs username and passwordFile")
		}
		if p.BearerTokenFile != "" {
			c.errf(path+".basicAuth", "use either basicAuth or bearerTokenFile, not both")
		}
	}
	return out
}

func (c *compiler) traffic(path string, t *trafficSpec, canarySel string) *Traffic {
	out := &Traffic{Query: resolve(t.Query, canarySel)}
	if t.Query == "" {
		c.errf(path+".query", "required")
	} else if _, err := checkPromQL(out.Query); err != nil {
		c.errf(path+".query", "%v", err)
	}
	if t.AtLeast == nil {
		c.errf(path+".atLeast", "required: the canary request rate below which triggers have insufficient data")
	} else if out.AtLeast = *t.AtLeast; out.AtLeast < 0 {
		c.errf(path+".atLeast", "must not be negative")
	}
	return out
}

func (c *compiler) rollback(path string, r *rollbackSpec, canarySel, baselineSel string) Rollback {
	out := Rollback{Mode: ModeAutomatic, Evidence: Evidence{LogTailLines: defaultLogTail}}
	out.Verify = Verify{Query: resolve(defaultVerifyQuery, baselineSel), Condition: defaultVerifyCond, For: defaultVerifyFor, Timeout: defaultVerifyWait}
	out.Drain = Drain{Query: resolve(defaultDrainQuery, canarySel), Below: defaultDrainBelow, Within: defaultDrainWithin}
	var v verifySpec
	if r != nil {
		if d := r.Drain; d != nil {
			c.drain(path+".drain", d, canarySel, &out.Drain)
		}
		out.Exec, out.Webhook = c.generic(path, r)
		if r.Mode != "" {
			out.Mode = Mode(r.Mode)
		}
		if out.Mode != ModeAutomatic && out.Mode != ModeNotifyOnly {
			c.errf(path+".mode", "must be automatic or notify-only, not %q", r.Mode)
		}
		if k := r.Kubernetes; k != nil {
			out.Kubernetes = &Kubernetes{Namespace: k.Namespace, Deployment: k.Deployment, ScaleToZero: k.ScaleToZero, Kubeconfig: k.Kubeconfig}
			if k.Namespace == "" || k.Deployment == "" {
				c.errf(path+".kubernetes", "needs namespace and deployment")
			}
		}
		if i := r.Istio; i != nil {
			out.Istio = &Istio{Namespace: i.Namespace, VirtualService: i.VirtualService, BaselineHost: i.BaselineHost, CanaryHost: i.CanaryHost}
			if i.VirtualService == "" || i.BaselineHost == "" {
				c.errf(path+".istio", "needs virtualService and baselineHost")
			}
			if out.Istio.Namespace == "" && out.Kubernetes != nil {
				out.Istio.Namespace = out.Kubernetes.Namespace
			}
		}
		if e := r.Evidence; e != nil {
			out.Evidence.Dir = e.Dir
			if e.LogTailLines != nil {
				if out.Evidence.LogTailLines = *e.LogTailLines; out.Evidence.LogTailLines < 0 {
					c.errf(path+".evidence.logTailLines", "must not be negative")
				}
			}
		}
		if r.Verify != nil {
			v = *r.Verify
		}
	}
	if r != nil {
		out.GitOps = c.gitops(path+".gitops", r.GitOps)
	} else {
		out.GitOps = c.gitops(path+".gitops", nil)
	}
	vp := path + ".verify"
	if v.Query != "" {
		out.Verify.Query = resolve(v.Query, baselineSel)
		if _, err := checkPromQL(out.Verify.Query); err != nil {
			c.errf(vp+".query", "%v", err)
		}
	}
	if v.Condition != "" {
		out.Verify.Condition = v.Condition
	}
	prg, _, err := compileCondition(out.Verify.Condition)
	if err != nil {
		c.errf(vp+".condition", "%v", err)
	}
	out.Verify.program = prg
	if v.For != nil {
		out.Verify.For = time.Duration(*v.For)
	}
	if v.Timeout != nil {
		out.Verify.Timeout = time.Duration(*v.Timeout)
	}
	if out.Verify.For < 0 || out.Verify.Timeout <= 0 || out.Verify.Timeout < out.Verify.For {
		c.errf(vp, "needs 0 <= for <= timeout and a positive timeout")
	}
	return out
}

func (c *compiler) notifier(path, name string, n notifierSpec) Notifier {
	out := Notifier{Name: name}
	count := 0
	secret := func(p, file, env string) Secret {
		if (file == "") == (env == "") {
			c.errf(p, "give exactly one of the file or the environment variable that holds the secret")
		}
		return Secret{File: file, Env: env}
	}
	if s := n.Slack; s != nil {
		count++
		sec := secret(path+".slack", s.WebhookURLFile, s.WebhookURLEnv)
		out.Slack = &sec
	}
	if p := n.PagerDuty; p != nil {
		count++
		out.PagerDuty = &PagerDuty{RoutingKey: secret(path+".pagerduty", p.RoutingKeyFile, p.RoutingKeyEnv), URL: p.URL}
		if p.URL != "" {
			if err := checkURL(p.URL, urlEndpoint, "the routing key comes from routingKeyFile or routingKeyEnv"); err != nil {
				c.errf(path+".pagerduty.url", "%v", err)
			}
		}
	}
	if e := n.Email; e != nil {
		count++
		out.Email = &Email{SMTP: e.SMTP, From: e.From, To: e.To, Username: e.Username}
		if e.Username != "" {
			out.Email.Password = secret(path+".email", e.PasswordFile, e.PasswordEnv)
		}
		if e.SMTP == "" || e.From == "" || len(e.To) == 0 {
			c.errf(path+".email", "needs smtp (host:port), from and to")
		} else if err := checkHostPort(e.SMTP); err != nil {
			c.errf(path+".email.smtp", "%v", err)
		}
	}
	if w := n.Webhook; w != nil {
		count++
		out.Webhook = &Webhook{URL: w.URL}
		if w.SecretFile != "" || w.SecretEnv != "" {
			out.Webhook.Secret = secret(path+".webhook", w.SecretFile, w.SecretEnv)
		}
		if err := checkURL(w.URL, urlEndpoint, "sign with secretFile or secretEnv"); err != nil {
			c.errf(path+".webhook.url", "%v", err)
		}
	}
	if count != 1 {
		c.errf(path, "a notifier has exactly one of slack, pagerduty, email, webhook")
	}
	return out
}

var _ = rewind.ActionRollback

func (c *compiler) drain(path string, d *drainSpec, canarySel string, out *Drain) {
	if d.Query != "" {
		out.Query = resolve(d.Query, canarySel)
		if _, err := checkPromQL(out.Query); err != nil {
			c.errf(path+".query", "%v", err)
		}
	}
	if d.Below != nil {
		if out.Below = *d.Below; out.Below < 0 {
			c.errf(path+".below", "must not be negative")
		}
	}
	if d.Within != nil {
		if out.Within = time.Duration(*d.Within); out.Within <= 0 {
			c.errf(path+".within", "must be positive")
		}
	}
}

// genericSteps are the steps an exec or webhook executor may implement.
var genericSteps = []string{"drain", "undo", "scale-down", "evidence"}

func (c *compiler) generic(path string, r *rollbackSpec) (map[string]Exec, map[string]Webhook) {
	execs, hooks := map[string]Exec{}, map[string]Webhook{}
	for step, e := range r.Exec {
		p := path + ".exec." + step
		if !oneOf(step, genericSteps...) {
			c.errf(p, "not a step an executor runs: use drain, undo, scale-down or evidence")
		}
		x := Exec{Command: e.Command, Timeout: time.Minute}
		if len(e.Command) == 0 || e.Command[0] == "" {
			c.errf(p+".command", "required: the program and its arguments, as a list (no shell)")
		}
		if e.Timeout != nil {
			x.Timeout = time.Duration(*e.Timeout)
		}
		execs[step] = x
	}
	for step, h := range r.Webhook {
		p := path + ".webhook." + step
		if !oneOf(step, genericSteps...) {
			c.errf(p, "not a step an executor runs: use drain, undo, scale-down or evidence")
		}
		if _, ok := r.Exec[step]; ok {
			c.errf(p, "step %s has both an exec and a webhook executor", step)
		}
		w := Webhook{URL: h.URL, Timeout: 30 * time.Second}
		if h.SecretFile != "" || h.SecretEnv != "" {
			w.Secret = Secret{File: h.SecretFile, Env: h.SecretEnv}
		}
		if h.SecretFile != "" && h.SecretEnv != "" {
			c.errf(p, "give exactly one of secretFile and secretEnv")
		}
		if err := checkURL(h.URL, urlEndpoint, "sign with secretFile or secretEnv"); err != nil {
			c.errf(p+".url", "%v", err)
		}
		if h.Timeout != nil {
			w.Timeout = time.Duration(*h.Timeout)
		}
		hooks[step] = w
	}
	for step := range execs {
		if (step == "drain" && r.Istio != nil) || (step != "drain" && step != "evidence" && r.Kubernetes != nil) {
			c.errf(path+".exec."+step, "step %s is already run by the %s executor", step, map[bool]string{true: "istio", false: "kubernetes"}[step == "drain"])
		}
	}
	for step := range hooks {
		if (step == "drain" && r.Istio != nil) || (step != "drain" && step != "evidence" && r.Kubernetes != nil) {
			c.errf(path+".webhook."+step, "step %s is already run by the %s executor", step, map[bool]string{true: "istio", false: "kubernetes"}[step == "drain"])
		}
	}
	return execs, hooks
}
