package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// Bounds of the helpers' waits.
const (
	promtoolTimeout = 2 * time.Minute
	readyTimeout    = time.Minute
	readyPoll       = 50 * time.Millisecond
	stopTimeout     = 10 * time.Second
	startAttempts   = 3
)

// Prometheus is a running Prometheus server on a loopback port.
type Prometheus struct {
	URL  string // base URL, e.g. http://127.0.0.1:40123
	Addr string // host:port

	cmd      *exec.Cmd
	output   *outputBuffer
	exited   chan struct{} // closed when the process has exited
	waitErr  error         // valid after exited is closed
	stopOnce sync.Once
}

// StartPrometheus loads openMetrics (see the package comment for the format;
// OpenMetrics builds it) into a new TSDB with promtool and serves it with a
// real Prometheus server, stopped by t.Cleanup. An empty openMetrics starts
// an empty server. The server does not scrape anything.
func StartPrometheus(t testing.TB, openMetrics []byte) *Prometheus {
	t.Helper()
	promtool := lookBinary(t, "promtool", "prometheus")
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	if len(openMetrics) > 0 {
		input := filepath.Join(dir, "history.om")
		if err := os.WriteFile(input, openMetrics, 0o600); err != nil {
			t.Fatalf("writing OpenMetrics input: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), promtoolTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, promtool, "tsdb", "create-blocks-from", "openmetrics", input, dataDir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool tsdb create-blocks-from openmetrics: %v\n%s", err, out)
		}
	}
	return startPrometheus(t, dir, dataDir, prometheusConfig{Global: globalConfig{ScrapeInterval: "1m"}})
}

// StartPrometheusScraping starts an empty Prometheus server that scrapes the
// given host:port targets (job "test", path /metrics) every scrapeInterval,
// stopped by t.Cleanup.
func StartPrometheusScraping(t testing.TB, targets []string, scrapeInterval time.Duration) *Prometheus {
	t.Helper()
	if scrapeInterval < time.Millisecond {
		t.Fatalf("StartPrometheusScraping: scrape interval %s is too short", scrapeInterval)
	}
	interval := model.Duration(scrapeInterval).String()
	// The scrape timeout may not exceed the interval (default 10s).
	timeout := model.Duration(min(scrapeInterval, 10*time.Second)).String()
	cfg := prometheusConfig{Global: globalConfig{ScrapeInterval: interval, ScrapeTimeout: timeout, EvaluationInterval: interval}}
	if len(targets) > 0 {
		cfg.ScrapeConfigs = []scrapeConfig{{JobName: "test", StaticConfigs: []staticConfig{{Targets: targets}}}}
	}
	dir := t.TempDir()
	return startPrometheus(t, dir, filepath.Join(dir, "data"), cfg)
}

// prometheusConfig is the subset of prometheus.yml the helpers write. It is
// written as JSON, which is valid YAML and escapes every string.
type prometheusConfig struct {
	Global        globalConfig   `json:"global"`
	ScrapeConfigs []scrapeConfig `json:"scrape_configs,omitempty"`
}

type globalConfig struct {
	ScrapeInterval     string `json:"scrape_interval,omitempty"`
	ScrapeTimeout      string `json:"scrape_timeout,omitempty"`
	EvaluationInterval string `json:"evaluation_interval,omitempty"`
}

type scrapeConfig struct {
	JobName       string         `json:"job_name"`
	StaticConfigs []staticConfig `json:"static_configs"`
}

type staticConfig struct {
	Targets []string `json:"targets"`
}

// errAddrInUse reports that the server lost the race for its port.
var errAddrInUse = errors.New("address already in use")

func startPrometheus(t testing.TB, dir, dataDir string, cfg prometheusConfig) *Prometheus {
	t.Helper()
	bin := lookBinary(t, "prometheus", "prometheus")
	configFile := filepath.Join(dir, "prometheus.yml")
	config, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatalf("encoding prometheus.yml: %v", err)
	}
	if err := os.WriteFile(configFile, config, 0o600); err != nil {
		t.Fatalf("writing prometheus.yml: %v", err)
	}
	for attempt := 1; ; attempt++ {
		addr := freeLoopbackAddr(t)
		p, err := launch(bin, dir, addr,
			"--config.file="+configFile,
			"--storage.tsdb.path="+dataDir,
			"--storage.tsdb.retention.time=100y",
			"--web.listen-address="+addr,
		)
		if err == nil {
			t.Cleanup(func() {
				p.Stop()
				if t.Failed() {
					t.Logf("prometheus %s output:\n%s", p.Addr, p.output)
				}
			})
			return p
		}
		if errors.Is(err, errAddrInUse) && attempt < startAttempts {
			t.Logf("prometheus lost the race for %s, retrying on another port", addr)
			continue
		}
		t.Fatalf("starting prometheus: %v", err)
	}
}

// launch starts the server and waits until it is ready. On failure the
// process is stopped and the error carries its output.
func launch(bin, dir, addr string, args ...string) (*Prometheus, error) {
	p := &Prometheus{
		URL:    "http://" + addr,
		Addr:   addr,
		output: &outputBuffer{},
		exited: make(chan struct{}),
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Stdout = p.output
	p.cmd.Stderr = p.output
	killWithParent(p.cmd)
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	if err := p.waitReady(); err != nil {
		p.Stop()
		if strings.Contains(p.output.String(), "address already in use") {
			return nil, fmt.Errorf("%w: %s", errAddrInUse, addr)
		}
		return nil, fmt.Errorf("%w\noutput:\n%s", err, p.output)
	}
	return p, nil
}

// waitReady polls /-/ready until it answers 200, the process exits or
// readyTimeout passes.
func (p *Prometheus) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	ticker := time.NewTicker(readyPoll)
	defer ticker.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/-/ready", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("prometheus exited before it was ready: %v", p.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("prometheus not ready on %s within %s", p.Addr, readyTimeout)
		case <-ticker.C:
		}
	}
}

// Stop kills the server and waits for it to exit. It is safe to call more
// than once; t.Cleanup calls it too.
func (p *Prometheus) Stop() {
	p.stopOnce.Do(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		_ = p.cmd.Process.Kill()
		select {
		case <-p.exited:
		case <-time.After(stopTimeout):
		}
	})
}

// Output returns what the server has logged so far.
func (p *Prometheus) Output() string { return p.output.String() }
