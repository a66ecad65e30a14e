package service

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// prometheusAccept is the Accept header a Prometheus server scrapes with:
// OpenMetrics preferred.
const prometheusAccept = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"

// fast is a configuration for tests: sub-millisecond requests and a
// background that only advances when the test calls advance.
func fast(version string) Config {
	return Config{Version: version, Release: "1.5.0", Median: 10 * time.Microsecond, Tick: time.Hour, Seed: 7}
}

// start starts a service that stops when the test ends.
func start(t *testing.T, cfg Config) *Service {
	t.Helper()
	s, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s
}

// families are parsed metrics by name.
type families map[string]*dto.MetricFamily

// scrape GETs url/metrics as Prometheus does and parses the answer in the
// format it came in.
func scrape(t *testing.T, url string) families {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", prometheusAccept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	if f := expfmt.ResponseFormat(resp.Header); f.FormatType() != expfmt.TypeTextPlain {
		t.Errorf("/metrics answered in %s, want the text format (OpenMetrics renames counters)", f)
	}
	return decode(t, resp.Body, expfmt.ResponseFormat(resp.Header))
}

// gathered parses what WriteMetrics writes.
func gathered(t *testing.T, s *Service) families {
	t.Helper()
	var buf bytes.Buffer
	if err := s.WriteMetrics(&buf); err != nil {
		t.Fatal(err)
	}
	return parse(t, buf.Bytes())
}

func parse(t *testing.T, text []byte) families {
	t.Helper()
	return decode(t, bytes.NewReader(text), expfmt.NewFormat(expfmt.TypeTextPlain))
}

func decode(t *testing.T, r io.Reader, f expfmt.Format) families {
	t.Helper()
	out := families{}
	dec := expfmt.NewDecoder(r, f)
	for {
		var mf dto.MetricFamily
		err := dec.Decode(&mf)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("parsing metrics: %v", err)
		}
		out[mf.GetName()] = &mf
	}
}

// value is the value of the one series of name whose labels include the
// given name/value pairs: a counter's or gauge's value, a histogram's count.
func (fs families) value(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mf := fs[name]
	if mf == nil {
		t.Fatalf("no metric %s", name)
	}
	var found []*dto.Metric
	for _, m := range mf.GetMetric() {
		if hasLabels(m, labels...) {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s%v: %d series, want 1", name, labels, len(found))
	}
	m := found[0]
	switch mf.GetType() {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	case dto.MetricType_HISTOGRAM:
		return float64(m.GetHistogram().GetSampleCount())
	}
	t.Fatalf("%s: unexpected type %s", name, mf.GetType())
	return 0
}

func hasLabels(m *dto.Metric, pairs ...string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		ok := false
		for _, l := range m.GetLabel() {
			if l.GetName() == pairs[i] && l.GetValue() == pairs[i+1] {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// serve answers n requests in-process, one after the other, and returns
// how many were answered 500.
func serve(t *testing.T, s *Service, n int) int {
	t.Helper()
	failed := 0
	for range n {
		rec := httptest.NewRecorder()
		s.serveWork(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil))
		if rec.Code == http.StatusInternalServerError {
			failed++
		}
	}
	return failed
}

// get GETs url and returns the status code.
func get(t *testing.T, url string) (int, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// eventually polls cond every few milliseconds until it holds, for at most
// 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-tick.C:
		}
	}
}
