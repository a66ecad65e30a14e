package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/evidence"
	"github.com/rewind-sre/rewind/notify"
	"github.com/rewind-sre/rewind/notify/channels"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/report"
	"github.com/rewind-sre/rewind/verify"
)

// generation is everything the daemon builds from one policy: the sources,
// each system's platform and runner, the notifiers, their routing and the
// readiness checks. Apply builds a new one and swaps it in whole.
type generation struct {
	pol       *policy.Policy
	kubes     map[string]*Kube // the clusters of the systems, by kubeconfig path
	systems   map[string]*built
	notifiers map[string]rewind.Notifier
	router    notify.Router
	checks    []check
}

// built is one system of a generation.
type built struct {
	sys    *policy.System
	source rewind.Source
	runner *plan.Runner // nil: the system has no executor (notify-only)
}

// check is one readiness check: a dependency, the systems that need it.
type check struct {
	name    string
	systems []string
	run     func(ctx context.Context) error
}

func (g *generation) system(name string) (*built, error) {
	if b := g.systems[name]; b != nil {
		return b, nil
	}
	return nil, fmt.Errorf("no system named %q in %s", name, g.pol.File)
}

// build makes the generation of pol. Its error is policy.Errors: every
// configuration problem found, with file:line and path. Dependencies that
// are missing or down are not errors: they fail the steps that need them
// and show in the checks.
func (d *Daemon) build(pol *policy.Policy) (*generation, error) {
	kubes := map[string]*Kube{}
	g := &generation{pol: pol, kubes: kubes, systems: map[string]*built{}}
	env := Env{Now: d.opt.Now, Log: d.log,
		Kube: func(path string) *Kube {
			if kubes[path] == nil {
				kubes[path] = newKube(path, d.opt.Now)
			}
			return kubes[path]
		}}
	sources := map[policy.Prometheus]*check{}
	var endpoints []policy.Prometheus // in the policy's order
	srcs := map[policy.Prometheus]rewind.Source{}
	var errs policy.Errors
	for _, sys := range pol.Systems {
		src, ok := srcs[sys.Prometheus]
		if !ok {
			var err error
			if src, err = d.opt.Source(sys.Prometheus); err != nil {
				src = unavailable{err}
			}
			srcs[sys.Prometheus] = src
			sources[sys.Prometheus] = &check{name: sourceName(sys.Prometheus), run: probe(src)}
			endpoints = append(endpoints, sys.Prometheus)
		}
		c := sources[sys.Prometheus]
		c.systems = append(c.systems, sys.Name)
		env.EvidenceDir = d.evidenceDir(sys)
		b, err := d.buildSystem(sys, src, env)
		if err != nil {
			errs = append(errs, pol.At(sys.Path()+".rollback", "%v", err))
			continue
		}
		g.systems[sys.Name] = b
	}
	if len(errs) > 0 {
		return nil, errs.Sorted()
	}
	for _, k := range endpoints {
		g.checks = append(g.checks, *sources[k])
	}
	g.checks = append(g.checks, check{name: "policy files and variables", run: func(context.Context) error {
		if errs := pol.CheckEnvironment(policy.Everything); len(errs) > 0 {
			return errs
		}
		return nil
	}})
	for _, path := range slices.Sorted(maps.Keys(kubes)) {
		k := kubes[path]
		g.checks = append(g.checks, check{name: k.Name(), systems: kubeSystems(pol, path), run: k.Check})
	}
	var err error
	g.notifiers, err = channels.FromPolicy(pol, channels.Options{Log: d.log})
	if err != nil {
		return nil, err
	}
	g.router = notify.PolicyRouter(pol)
	return g, nil
}

// buildSystem assembles the runner of one system and the metrics steps
// around its platform.
func (d *Daemon) buildSystem(sys *policy.System, src rewind.Source, env Env) (*built, error) {
	b := &built{sys: sys, source: src}
	plat, err := platformOf(sys, d.opt.Platforms, env)
	if err != nil {
		return nil, err
	}
	if plat.empty() {
		return b, nil // notify-only: nothing to change, no runner
	}
	rb := sys.Rollback
	bundle := &report.Bundle{Dir: env.EvidenceDir, Source: src, System: sys, Now: d.opt.Now}
	ex := maps.Clone(plat.Executors)
	ex[rewind.StepDrain] = &verify.Drain{Route: plat.Executors[rewind.StepDrain], Source: src, Drain: rb.Drain, Now: d.opt.Now, Poll: d.opt.Poll}
	ex[rewind.StepCheckBaseline] = &verify.Baseline{Source: src, Verify: rb.Verify, Now: d.opt.Now}
	ex[rewind.StepEvidence] = Sequence{plat.Executors[rewind.StepEvidence], bundle}
	if a := d.archive(env.EvidenceDir); a != nil {
		ex[rewind.StepEvidence] = Sequence{plat.Executors[rewind.StepEvidence], bundle, a}
	}
	ex[rewind.StepVerify] = &verify.Validator{Source: src, System: sys, Now: d.opt.Now, Poll: d.opt.Poll}
	if sys.Watch != nil {
		watchSteps(ex)
	}
	timeouts := map[rewind.StepName]time.Duration{
		rewind.StepDrain:  plan.DefaultTimeouts[rewind.StepDrain] + rb.Drain.Within,
		rewind.StepVerify: rb.Verify.Timeout + 30*time.Second, // the validator bounds itself; this is the backstop
	}
	b.runner = &plan.Runner{Store: d.opt.Store, Fence: plat.Fence, Executors: ex, Timeouts: timeouts, Now: d.opt.Now,
		Progress: d.progress}
	return b, nil
}

// platformOf merges the parts of a system's platform. A system whose
// rollbacks are automatic needs an executor; a notify-only one does not.
func platformOf(sys *policy.System, platforms []PlatformFunc, env Env) (Platform, error) {
	parts := make([]Platform, 0, len(platforms))
	for _, f := range platforms {
		p, err := f(sys, env)
		if err != nil {
			return Platform{}, err
		}
		parts = append(parts, p)
	}
	plat, err := merge(parts)
	if err != nil {
		return Platform{}, err
	}
	if plat.empty() && sys.Rollback.Mode == policy.ModeAutomatic {
		return Platform{}, errors.New("mode automatic needs an executor: configure kubernetes, istio, exec or webhook, or set mode: notify-only")
	}
	return plat, nil
}

// Check is the one validation of a policy beyond loading it, as every
// command runs it: the platform of each system (with platforms, default
// DefaultPlatforms: an automatic system needs an executor) and, in scope,
// the files and variables the policy names on this machine
// (policy.CheckEnvironment). Nothing is contacted.
func Check(pol *policy.Policy, scope policy.Scope, platforms ...PlatformFunc) policy.Errors {
	if len(platforms) == 0 {
		platforms = DefaultPlatforms
	}
	kubes := map[string]*Kube{}
	env := Env{Now: time.Now, Log: slog.New(slog.DiscardHandler), EvidenceDir: DefaultEvidenceDir(),
		Kube: func(path string) *Kube {
			if kubes[path] == nil {
				kubes[path] = newKube(path, time.Now)
			}
			return kubes[path]
		}}
	var errs policy.Errors
	for _, sys := range pol.Systems {
		if _, err := platformOf(sys, platforms, env); err != nil {
			errs = append(errs, pol.At(sys.Path()+".rollback", "%v", err))
		}
	}
	errs = append(errs, pol.CheckEnvironment(scope)...)
	return errs.Sorted()
}

// evidenceDir is where a system's bundles go: Options.EvidenceDir, else
// the policy's rollback.evidence.dir, else Options.EvidenceFallback.
func (d *Daemon) evidenceDir(sys *policy.System) string {
	switch {
	case d.opt.EvidenceDir != "":
		return d.opt.EvidenceDir
	case sys.Rollback.Evidence.Dir != "":
		return sys.Rollback.Evidence.Dir
	}
	return d.opt.EvidenceFallback
}

// kubeSystems names the systems that use the cluster of a kubeconfig path.
func kubeSystems(pol *policy.Policy, path string) []string {
	var out []string
	for _, s := range pol.Systems {
		k, i := s.Rollback.Kubernetes, s.Rollback.Istio
		if k != nil && k.Kubeconfig == path || k == nil && i != nil && path == "" {
			out = append(out, s.Name)
		}
	}
	return out
}

// describe is a check's failure as /readyz shows it.
func (c check) describe(err error) string {
	if len(c.systems) == 0 {
		return err.Error()
	}
	return err.Error() + " (systems: " + strings.Join(c.systems, ", ") + ")"
}

// archive is the last part of the evidence step when bundles are kept in
// durable storage (Options.Evidence): it copies dir/<id> there, once.
func (d *Daemon) archive(dir string) *evidence.Archive {
	if d.opt.Evidence == nil {
		return nil
	}
	return &evidence.Archive{Store: d.opt.Evidence, Dir: dir, Log: d.log,
		OnResult: func(r string) { d.archived.WithLabelValues(r).Inc() }}
}
