package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/alertmanager"
	"github.com/rewind-sre/rewind/cluster"
	"github.com/rewind-sre/rewind/controller"
	"github.com/rewind-sre/rewind/decide"
	"github.com/rewind-sre/rewind/executor/kubernetes"
	"github.com/rewind-sre/rewind/notify"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/server"
	"github.com/rewind-sre/rewind/wire"
)

func runServe(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "serve", "--policy FILE [--listen ADDR] [--store PATH] [--token-file FILE] [--open-reads] [--evidence DIR]")
	file := fs.String("policy", "", "policy file (YAML); reloaded on SIGHUP and when it changes")
	listen := fs.String("listen", ":8080", "HTTP address of the API, /metrics, /healthz and /readyz")
	store := fs.String("store", "rewind.db", "the rollback journal (SQLite)")
	tokenFile := fs.String("token-file", "", "file holding the bearer token that mutating API calls need (or env REWIND_API_TOKEN)")
	openReads := fs.Bool("open-reads", false, "serve read-only API calls without a token")
	evidence := fs.String("evidence", "", "evidence bundle directory (default: the policy's, else rewind-evidence)")
	elect := fs.Bool("leader-elect", false, "with replicas: act only while holding a Kubernetes Lease")
	leaseNS := fs.String("lease-namespace", os.Getenv("POD_NAMESPACE"), "namespace of the Lease (default $POD_NAMESPACE)")
	leaseName := fs.String("lease-name", "rewind-leader", "name of the Lease")
	leaseKubeconfig := fs.String("lease-kubeconfig", "", "kubeconfig for the Lease (default: in-cluster)")
	identity := fs.String("identity", defaultIdentity(), "this replica's name in the Lease (default $POD_NAME, else host-pid)")
	leaseDuration := fs.Duration("lease-duration", cluster.DefaultLeaseDuration, "how long a Lease holds without renewal")
	renewDeadline := fs.Duration("renew-deadline", cluster.DefaultRenewDeadline, "a leader that cannot renew for this long stops acting")
	retryPeriod := fs.Duration("retry-period", cluster.DefaultRetryPeriod, "how often to try for the Lease")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *elect && *leaseNS == "" {
		return errors.New("--leader-elect needs --lease-namespace (or $POD_NAMESPACE)")
	}
	log := slog.New(slog.NewJSONHandler(env.Stderr, nil))
	pol, err := loadPolicy(env, *file)
	if err != nil {
		return err
	}
	token, err := readToken(*tokenFile)
	if err != nil {
		return err
	}
	if len(token) == 0 {
		log.Warn("no API token (--token-file or REWIND_API_TOKEN): mutating API calls are refused")
	}
	// Outside Kubernetes a single instance holds a file lock on its store;
	// with --leader-elect the Lease decides who acts.
	unlock, err := wire.LockStore(*store)
	if err != nil {
		return fmt.Errorf("not starting: %w", err)
	}
	defer unlock()
	st, err := wire.OpenStore(ctx, *store)
	if err != nil {
		return err
	}
	defer st.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := controller.NewMetrics(reg, Version)
	outbox, err := wire.Outbox(pol, st, log, reg)
	if err != nil {
		return err
	}
	var mu sync.Mutex // guards sources and systems, rebuilt on reload
	sources, systems := map[string]rewind.Source{}, map[string]*policy.System{}
	build := func(sys *policy.System) (*plan.Runner, rewind.Source, error) {
		r, src, err := wire.Runner(sys, st, wire.Options{EvidenceDir: *evidence, Progress: outbox.Progress(pol, wire.Links)})
		mu.Lock()
		sources[sys.Name], systems[sys.Name] = src, sys
		mu.Unlock()
		return r, src, err
	}
	hooks := controller.Hooks{
		Cycle: func(system string, c decide.Cycle) {
			if c.BlindChanged && c.Blind {
				_ = outbox.Publish(context.Background(), notify.BlindEvent(system, "its queries failed 3 cycles in a row: no rollback can be decided", c.At))
			}
		},
		Done: func(rb *rewind.Rollback, _ error) {
			mu.Lock()
			src, sys := sources[rb.System], systems[rb.System]
			mu.Unlock()
			if sys != nil {
				wire.PostMortem(st, src, sys, rb, log)
			}
		},
		Requested: func(system, reason, requester, id string) {
			kind := rewind.EventManualRollbackRequested
			_ = outbox.Publish(context.Background(), rewind.Event{Kind: kind, Severity: notify.SeverityOf(kind, nil), System: system,
				RollbackID: id, Reason: reason + " (by " + requester + ")", At: time.Now()})
		},
	}
	ctl, err := controller.New(controller.Options{Policy: pol, Store: st, Build: build, Metrics: metrics, Log: log, Hooks: hooks})
	if err != nil {
		return err
	}
	go outbox.Run(ctx)
	var checks []server.Checker
	mu.Lock()
	started := maps.Clone(sources)
	mu.Unlock()
	for name, src := range started {
		checks = append(checks, server.Checker{Name: "prometheus of " + name, Check: func(ctx context.Context) error {
			_, err := src.Query(ctx, "vector(1)", time.Now())
			return err
		}})
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           server.Handler(server.Options{Controller: ctl, Store: st, Gatherer: reg, Token: token, OpenReads: *openReads, Checks: checks, Audit: log.With("audit", true), Alerts: alertmanager.New(alertmanager.Options{Controller: ctl, Token: token, Registerer: reg, Log: log, Audit: log.With("audit", true)})}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	fmt.Fprintf(env.Stdout, "rewind serve: listening on http://%s (policy %s, %d systems)\n", ln.Addr(), pol.Hash, len(pol.Systems))
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	refused := func(err error) {
		mu.Lock()
		names := slices.Sorted(maps.Keys(systems))
		mu.Unlock()
		kind := rewind.EventPolicyRefused
		for _, name := range names {
			_ = outbox.Publish(context.Background(), rewind.Event{Kind: kind, Severity: notify.SeverityOf(kind, nil), System: name,
				Reason: "the changed policy " + *file + " was refused; the previous one keeps running: " + err.Error(), At: time.Now()})
		}
	}
	go watchPolicy(ctx, *file, ctl, metrics, log, refused)
	leader := prometheus.NewGauge(prometheus.GaugeOpts{Name: "rewind_leader", Help: "1 while this replica acts: it holds the leader Lease, or the store's file lock without leader election."})
	reg.MustRegister(leader)
	if *elect {
		cfg, cerr := kubernetes.RESTConfig(*leaseKubeconfig)
		if cerr != nil {
			return cerr
		}
		el := &cluster.Election{Config: cfg, Namespace: *leaseNS, Name: *leaseName, Identity: *identity,
			LeaseDuration: *leaseDuration, RenewDeadline: *renewDeadline, RetryPeriod: *retryPeriod, Log: log, Leader: leader}
		err = el.Run(ctx, func(lctx context.Context) { _ = ctl.Run(lctx) })
	} else {
		leader.Set(1)
		err = ctl.Run(ctx)
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shut)
	return err
}

func defaultIdentity() string {
	if p := os.Getenv("POD_NAME"); p != "" {
		return p
	}
	h, _ := os.Hostname()
	return fmt.Sprintf("%s-%d", h, os.Getpid())
}

// readToken reads the API token from a file, or REWIND_API_TOKEN.
func readToken(file string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		return bytes.TrimSpace(b), nil
	}
	return []byte(os.Getenv("REWIND_API_TOKEN")), nil
}

// watchPolicy reloads the policy on SIGHUP and when the file changes; a
// policy that fails validation keeps the old one running and says why.
func watchPolicy(ctx context.Context, file string, ctl *controller.Controller, m *controller.Metrics, log *slog.Logger, refused func(error)) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	last := modTime(file)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		case <-tick.C:
			if mt := modTime(file); mt.Equal(last) {
				continue
			}
		}
		last = modTime(file)
		pol, err := policy.Load(file)
		if err == nil {
			err = ctl.Reload(pol)
		}
		if err != nil {
			m.PolicyReloads.WithLabelValues("invalid").Inc()
			log.Error("policy reload refused; the previous policy keeps running", "file", file, "err", err.Error())
			refused(err)
			continue
		}
		m.PolicyReloads.WithLabelValues("ok").Inc()
		log.Info("policy reloaded", "file", file, "hash", pol.Hash)
	}
}

func modTime(file string) time.Time {
	fi, err := os.Stat(file)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}
