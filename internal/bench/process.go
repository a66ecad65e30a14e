package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rewind-sre/rewind/internal/child"
)

// process is a child process of the bench: Prometheus or rewind serve.
type process struct {
	*child.Process
	cmd *exec.Cmd
	url string
}

func (p *process) stop() {
	if p != nil {
		p.Stop(10 * time.Second)
	}
}

func start(name string, cmd *exec.Cmd) (*process, error) {
	c, err := child.Start(name, cmd)
	if err != nil {
		return nil, err
	}
	return &process{Process: c, cmd: cmd}, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startPrometheus starts Debian's prometheus scraping the exporter's
// shards every scrape interval, and waits until it is ready.
func startPrometheus(ctx context.Context, bin, dir, exporterAddr string, shards int, scrape time.Duration) (*process, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\n  evaluation_interval: 1m\nscrape_configs:\n",
		model.Duration(scrape), model.Duration(min(scrape, 10*time.Second)))
	for k := range shards {
		fmt.Fprintf(&cfg, "  - job_name: shard-%d\n    honor_labels: true\n    metrics_path: /metrics/%d\n    static_configs: [{targets: [%q]}]\n", k, k, exporterAddr)
	}
	file := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(file, []byte(cfg.String()), 0o600); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--config.file="+file, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = log, log
	p, err := start("prometheus", cmd)
	if err != nil {
		return nil, err
	}
	p.url = "http://" + addr
	if err := waitReady(ctx, p, p.url+"/-/ready"); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

func waitReady(ctx context.Context, p *process, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return p.WaitReady(ctx, 100*time.Millisecond, func() bool { return child.HTTPOK(url) })
}

// startRewind starts `rewind serve` on the policy and waits for the
// address it prints.
func startRewind(ctx context.Context, bin, dir, policy string) (*process, error) {
	log, err := os.Create(filepath.Join(dir, "rewind.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--policy", policy, "--listen", "127.0.0.1:0", "--open-reads",
		"--store", filepath.Join(dir, "rewind.db"), "--evidence", filepath.Join(dir, "evidence"))
	cmd.Stderr = log
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p, err := start("rewind", cmd)
	if err != nil {
		return nil, err
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if _, rest, ok := strings.Cut(sc.Text(), "listening on "); ok {
				addr <- strings.Fields(rest)[0]
			}
		}
	}()
	select {
	case a := <-addr:
		p.url = a
	case <-p.Exited():
		return nil, fmt.Errorf("rewind serve exited: %v (see %s)", p.Err(), log.Name())
	case <-time.After(5 * time.Minute):
		p.stop()
		return nil, errors.New("rewind serve printed no address within 5 minutes")
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
	return p, nil
}

// rss reads a process's resident and peak resident set sizes (bytes).
func rss(pid int) (now, peak int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			now = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return now, peak
}

// scrape reads a /metrics page into its families.
func scrape(url string) (map[string]*dto.MetricFamily, error) {
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(bytes.NewReader(b))
}

// sum adds up the values of a family's series whose labels include match.
func sum(fams map[string]*dto.MetricFamily, name string, match map[string]string) float64 {
	total := 0.0
	f := fams[name]
	if f == nil {
		return 0
	}
outer:
	for _, m := range f.Metric {
		for k, v := range match {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue outer
			}
		}
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Untyped != nil:
			total += m.Untyped.GetValue()
		case m.Histogram != nil:
			total += m.Histogram.GetSampleSum()
		}
	}
	return total
}

// histogram returns the count, sum and smallest bucket bound that holds
// every observation of a family's (single) histogram.
func histogram(fams map[string]*dto.MetricFamily, name string) (count uint64, total, maxBound float64) {
	f := fams[name]
	if f == nil || len(f.Metric) == 0 || f.Metric[0].Histogram == nil {
		return 0, 0, 0
	}
	h := f.Metric[0].Histogram
	maxBound = -1
	for _, b := range h.Bucket {
		if b.GetCumulativeCount() == h.GetSampleCount() {
			maxBound = b.GetUpperBound()
			break
		}
	}
	return h.GetSampleCount(), h.GetSampleSum(), maxBound
}
