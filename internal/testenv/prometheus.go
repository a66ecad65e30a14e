package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
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
	*server // URL, Addr; Stop, Output
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
	return &Prometheus{server: startServer(t, "prometheus", bin, dir, func(addr string) []string {
		return []string{
			"--config.file=" + configFile,
			"--storage.tsdb.path=" + dataDir,
			"--storage.tsdb.retention.time=100y",
			"--web.listen-address=" + addr,
		}
	})}
}
