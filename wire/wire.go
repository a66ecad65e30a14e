// Package wire builds Rewind's rollback machinery for one system of a policy:
// the metrics source, the plan's executors per step and the durable runner.
// It is the one package that imports every adapter; cmd and cli call it.
package wire

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/report"
	"github.com/rewind-sre/rewind/source/prometheus"
	"github.com/rewind-sre/rewind/store/sqlite"
	"github.com/rewind-sre/rewind/verify"
)

// Options configure Runner. Zero values take the policy's settings.
type Options struct {
	EvidenceDir string // default the policy's rollback.evidence.dir, else "rewind-evidence"
	// Source overrides the system's Prometheus (tests, the demo).
	Source rewind.Source
	// Platform supplies the platform executors (drain route, undo,
	// scale-down, platform evidence) and the fence; default: Kubernetes
	// and Istio from the policy.
	Platform Platform
	Now      func() time.Time
	Progress func(rb *rewind.Rollback, step rewind.StepRecord)
	// Poll is how often waiting steps re-read the metrics (default 2 s).
	Poll time.Duration
}

// Platform is what a rollback changes: routing, the workload and its evidence.
type Platform struct {
	Route     rewind.Executor // drain: route traffic to the baseline
	Undo      rewind.Executor
	ScaleDown rewind.Executor
	Evidence  rewind.Executor // logs, objects, events: written into the bundle
	Fence     rewind.Fence
}

func (p Platform) empty() bool {
	return p.Route == nil && p.Undo == nil && p.ScaleDown == nil && p.Evidence == nil && p.Fence == nil
}

// OpenStore opens (creating) the rollback journal; path "" is "rewind.db".
func OpenStore(ctx context.Context, path string) (*sqlite.Store, error) {
	if path == "" {
		path = "rewind.db"
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, err
		}
	}
	return sqlite.Open(ctx, path)
}

// Runner assembles the rollback runner of sys on a shared store, and the
// metrics source it reads.
func Runner(sys *policy.System, st plan.Store, opt Options) (*plan.Runner, rewind.Source, error) {
	src := opt.Source
	if src == nil {
		var err error
		if src, err = PrometheusSource(sys.Prometheus, ""); err != nil {
			return nil, nil, err
		}
	}
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	evDir := opt.EvidenceDir
	if evDir == "" {
		evDir = sys.Rollback.Evidence.Dir
	}
	if evDir == "" {
		evDir = "rewind-evidence"
	}
	plat := opt.Platform
	if plat.empty() {
		var err error
		if plat, err = platformFromPolicy(sys, evDir, now); err != nil {
			return nil, nil, err
		}
	}
	rb := sys.Rollback
	bundle := &report.Bundle{Dir: evDir, Source: src, System: sys, Now: now}
	ex := map[rewind.StepName]rewind.Executor{
		rewind.StepDrain:         &verify.Drain{Route: plat.Route, Source: src, Drain: rb.Drain, Now: now, Poll: opt.Poll},
		rewind.StepCheckBaseline: &verify.Baseline{Source: src, Verify: rb.Verify, Now: now},
		rewind.StepEvidence:      Sequence{plat.Evidence, bundle},
		rewind.StepVerify:        &verify.Validator{Source: src, System: sys, Now: now, Poll: opt.Poll},
	}
	if plat.Undo != nil {
		ex[rewind.StepUndo] = plat.Undo
	}
	if plat.ScaleDown != nil {
		ex[rewind.StepScaleDown] = plat.ScaleDown
	}
	timeouts := map[rewind.StepName]time.Duration{
		rewind.StepDrain:  plan.DefaultTimeouts[rewind.StepDrain] + rb.Drain.Within,
		rewind.StepVerify: rb.Verify.Timeout + 30*time.Second, // the validator bounds itself; this is the backstop
	}
	return &plan.Runner{Store: st, Fence: plat.Fence, Executors: ex, Timeouts: timeouts, Now: now, Progress: opt.Progress}, src, nil
}

// PrometheusSource builds the HTTP API client; url overrides cfg.URL.
func PrometheusSource(cfg policy.Prometheus, url string) (*prometheus.Client, error) {
	if url != "" {
		cfg.URL = url
	}
	if cfg.URL == "" {
		return nil, errors.New("no Prometheus URL: set prometheus.url in the policy")
	}
	return prometheus.New(prometheus.Config{
		URL: cfg.URL, Timeout: cfg.Timeout, BearerTokenFile: cfg.BearerTokenFile,
		BasicAuthUsername: cfg.BasicAuthUsername, BasicAuthPasswordFile: cfg.BasicAuthPassword,
		CAFile: cfg.CAFile, InsecureSkipVerify: cfg.InsecureSkipVerify,
	})
}

// Sequence runs executors in order as one step; nil entries are left out.
// The step is skipped only when every part skipped.
type Sequence []rewind.Executor

var _ rewind.Executor = Sequence(nil)

func (s Sequence) Plan(ctx context.Context, rb *rewind.Rollback) ([]rewind.Change, error) {
	var out []rewind.Change
	for _, e := range s {
		if e == nil {
			continue
		}
		ch, err := e.Plan(ctx, rb)
		if err != nil {
			return out, err
		}
		out = append(out, ch...)
	}
	return out, nil
}

func (s Sequence) Do(ctx context.Context, rb *rewind.Rollback) (rewind.StepResult, error) {
	out := rewind.StepResult{Skipped: true, Facts: map[string]string{}}
	for _, e := range s {
		if e == nil {
			continue
		}
		r, err := e.Do(ctx, rb)
		if err != nil {
			return out, err
		}
		out.Skipped = out.Skipped && r.Skipped
		out.Escalate = out.Escalate || r.Escalate
		if r.Detail != "" {
			if out.Detail != "" {
				out.Detail += "; "
			}
			out.Detail += r.Detail
		}
		for k, v := range r.Facts {
			out.Facts[k] = v
		}
	}
	return out, nil
}

var errNoPlatform = fmt.Errorf("the policy's rollback section names no kubernetes, istio, exec or webhook executor")
