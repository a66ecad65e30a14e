package service

import (
	"context"
	"math"
	"net/http"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

func TestMetricsServedWithTheSeedsNames(t *testing.T) {
	cfg := fast("canary")
	cfg.Tick = 5 * time.Millisecond
	s := start(t, cfg)
	for range 20 {
		if code, err := get(t, s.URL()+"/"); err != nil || code != http.StatusOK {
			t.Fatalf("GET /: %d %v", code, err)
		}
	}
	eventually(t, "transactions grow in the background", func() bool {
		return scrape(t, s.URL()).value(t, MetricTransactions) > 0
	})

	fs := scrape(t, s.URL())
	want := map[string]dto.MetricType{
		MetricRequests:     dto.MetricType_COUNTER,
		MetricDuration:     dto.MetricType_HISTOGRAM,
		MetricTransactions: dto.MetricType_COUNTER,
		MetricByzantine:    dto.MetricType_COUNTER,
		MetricDAGErrors:    dto.MetricType_COUNTER,
		MetricWorkingSet:   dto.MetricType_GAUGE,
		MetricMemoryLimit:  dto.MetricType_GAUGE,
		MetricTrips:        dto.MetricType_COUNTER,
		MetricBuildInfo:    dto.MetricType_GAUGE,
	}
	var names []string
	for name := range fs {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(fs) != len(want) {
		t.Errorf("exported %v, want exactly the %d names of the seed and %s", names, len(want)-1, MetricBuildInfo)
	}
	for name, typ := range want {
		mf := fs[name]
		if mf == nil {
			t.Errorf("no %s", name)
			continue
		}
		if mf.GetType() != typ {
			t.Errorf("%s is a %s, want %s", name, mf.GetType(), typ)
		}
		for _, m := range mf.GetMetric() {
			if !hasLabels(m, VersionLabel, "canary") {
				t.Errorf("%s has labels %v, want version=canary", name, m.GetLabel())
			}
		}
	}
	if ok := fs.value(t, MetricRequests, "status", "200"); ok != 20 {
		t.Errorf("200s: %v, want 20", ok)
	}
	if bad := fs.value(t, MetricRequests, "status", "500"); bad != 0 {
		t.Errorf("500s: %v, want a series at 0", bad)
	}
	if n := fs.value(t, MetricDuration); n != 20 {
		t.Errorf("durations observed: %v, want 20", n)
	}
	var bounds []float64
	for _, b := range fs[MetricDuration].GetMetric()[0].GetHistogram().GetBucket() {
		bounds = append(bounds, b.GetUpperBound())
	}
	if want := append(DurationBuckets[:len(DurationBuckets):len(DurationBuckets)], math.Inf(1)); !reflect.DeepEqual(bounds, want) {
		t.Errorf("buckets %v, want %v", bounds, want)
	}
	for _, name := range []string{MetricByzantine, MetricDAGErrors, MetricTrips} {
		if v := fs.value(t, name); v != 0 {
			t.Errorf("healthy %s = %v, want 0", name, v)
		}
	}
	limit := fs.value(t, MetricMemoryLimit)
	if limit != 512<<20 {
		t.Errorf("memory limit %v, want 512 MiB", limit)
	}
	if share := fs.value(t, MetricWorkingSet) / limit; share < 0.44 || share > 0.46 {
		t.Errorf("healthy working set at %.3f of the limit, want 0.45 ±1 %%", share)
	}
	if v := fs.value(t, MetricBuildInfo, "release", "1.5.0"); v != 1 {
		t.Errorf("%s{release=1.5.0} = %v", MetricBuildInfo, v)
	}
}

func TestErrorFaults(t *testing.T) {
	const n = 2000
	for _, tc := range []struct {
		fault Fault
		rate  float64
	}{
		{FaultNone, 0.002},
		{FaultErrorRate, 0.10},
		{FaultSuccessRate, 0.08},
	} {
		t.Run(string(tc.fault), func(t *testing.T) {
			t.Parallel()
			cfg := fast("canary")
			cfg.ErrorRate = 0.002
			s := start(t, cfg)
			if err := s.SetFault(tc.fault); err != nil {
				t.Fatal(err)
			}
			failed := serve(t, s, n)
			sigma := math.Sqrt(n * tc.rate * (1 - tc.rate))
			if want := n * tc.rate; math.Abs(float64(failed)-want) > 4*sigma+1 {
				t.Errorf("%d of %d answered 500, want %.0f ± %.0f", failed, n, want, 4*sigma)
			}
			fs := scrape(t, s.URL())
			if got := fs.value(t, MetricRequests, "status", "500"); got != float64(failed) {
				t.Errorf("%s{status=500} = %v, want %d", MetricRequests, got, failed)
			}
			if got := fs.value(t, MetricRequests, "status", "200"); got != float64(n-failed) {
				t.Errorf("%s{status=200} = %v, want %d", MetricRequests, got, n-failed)
			}
		})
	}
}

// TestLatencyDraws checks the latency distribution on many draws: the
// median, and FaultLatency's factor of 3 on the median and the tail.
func TestLatencyDraws(t *testing.T) {
	s := start(t, Config{Version: "canary", Median: 20 * time.Millisecond, Tick: time.Hour, Seed: 3})
	quantiles := func(f Fault) (p50, p99 time.Duration) {
		var ds []time.Duration
		for range 20000 {
			d, _ := s.draw(s.cfg.behaviour(f))
			ds = append(ds, d)
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2], ds[len(ds)*99/100]
	}
	p50, p99 := quantiles(FaultNone)
	if p50 < 19*time.Millisecond || p50 > 21*time.Millisecond {
		t.Errorf("healthy median %v, want 20ms", p50)
	}
	if want := 20 * time.Millisecond * time.Duration(1000*math.Exp(0.3*2.326)) / 1000; math.Abs(float64(p99-want)) > 0.05*float64(want) {
		t.Errorf("healthy p99 %v, want %v (lognormal, σ 0.3)", p99, want)
	}
	f50, f99 := quantiles(FaultLatency)
	for _, r := range []float64{float64(f50) / float64(p50), float64(f99) / float64(p99)} {
		if r < 2.8 || r > 3.2 {
			t.Errorf("latency fault: median %v, p99 %v vs %v, %v: want ×3", f50, f99, p50, p99)
		}
	}
}

// TestLatencyFaultIsServed checks that the time is really spent: the mean
// observed duration is at least the drawn one, about 20 ms × e^(σ²/2)
// healthy and three times that with the fault. Only lower bounds are
// checked: a loaded machine can only make requests slower (the draws
// themselves are checked by TestLatencyDraws).
func TestLatencyFaultIsServed(t *testing.T) {
	s := start(t, Config{Version: "canary", Median: 20 * time.Millisecond, Tick: time.Hour, Seed: 5})
	mean := func() float64 {
		before := gathered(t, s)[MetricDuration].GetMetric()[0].GetHistogram()
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() { get(t, s.URL()+"/") })
		}
		wg.Wait()
		after := gathered(t, s)[MetricDuration].GetMetric()[0].GetHistogram()
		return (after.GetSampleSum() - before.GetSampleSum()) / float64(after.GetSampleCount()-before.GetSampleCount())
	}
	if healthy := mean(); healthy < 0.017 {
		t.Errorf("healthy mean duration %.1fms, want about 21ms", healthy*1000)
	}
	if err := s.SetFault(FaultLatency); err != nil {
		t.Fatal(err)
	}
	if slow := mean(); slow < 0.050 {
		t.Errorf("mean duration %.1fms with the latency fault, want about 63ms", slow*1000)
	}
}

// TestBackgroundFaults drives the background by hand: 60 s in 1 s steps.
func TestBackgroundFaults(t *testing.T) {
	type counts struct{ tx, dag, trips, byzantine, memory float64 }
	healthy := counts{tx: 6000, memory: 0.45}
	for _, tc := range []struct {
		fault Fault
		want  counts
	}{
		{FaultNone, healthy},
		{FaultThroughput, counts{tx: 1800, memory: 0.45}},
		{FaultDAGCorruption, counts{tx: 6000, dag: 60, memory: 0.45}},
		{FaultCircuitBreaker, counts{tx: 6000, trips: 20, memory: 0.45}},
		{FaultMemory, counts{tx: 6000, memory: 0.97}},
		{FaultByzantine, counts{tx: 6000, byzantine: 1, memory: 0.45}},
		{FaultErrorRate, healthy},
		{FaultLatency, healthy},
		{FaultSuccessRate, healthy},
	} {
		t.Run(string(tc.fault), func(t *testing.T) {
			s := start(t, fast("canary"))
			if err := s.SetFault(tc.fault); err != nil {
				t.Fatal(err)
			}
			for range 60 {
				s.advance(time.Second)
			}
			fs := scrape(t, s.URL())
			got := counts{
				tx:        fs.value(t, MetricTransactions),
				dag:       fs.value(t, MetricDAGErrors),
				trips:     fs.value(t, MetricTrips),
				byzantine: fs.value(t, MetricByzantine),
				memory:    fs.value(t, MetricWorkingSet) / fs.value(t, MetricMemoryLimit),
			}
			if math.Abs(got.memory-tc.want.memory) > 0.011*tc.want.memory {
				t.Errorf("working set at %.4f of the limit, want %.2f ±1 %%", got.memory, tc.want.memory)
			}
			got.memory = tc.want.memory
			if got != tc.want {
				t.Errorf("after 60s: %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestByzantineIsOneEventPerSwitch(t *testing.T) {
	s := start(t, fast("canary"))
	for _, f := range []Fault{FaultByzantine, FaultByzantine, FaultNone, FaultByzantine} {
		if err := s.SetFault(f); err != nil {
			t.Fatal(err)
		}
	}
	if v := gathered(t, s).value(t, MetricByzantine); v != 2 {
		t.Errorf("byzantine events %v, want 2 (switched on twice)", v)
	}
}

func TestFaultNames(t *testing.T) {
	for _, f := range Faults() {
		if got, err := ParseFault(string(f)); err != nil || got != f {
			t.Errorf("ParseFault(%q) = %q, %v", f, got, err)
		}
	}
	if _, err := ParseFault("meteor"); err == nil {
		t.Error("ParseFault accepted an unknown fault")
	}
	s := start(t, fast("canary"))
	if err := s.SetFault("meteor"); err == nil || s.Fault() != FaultNone {
		t.Errorf("SetFault(meteor): %v, fault now %s", err, s.Fault())
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{Version: "canary", ErrorRate: 1.5},
		{Version: "canary", Median: -time.Second},
		{Version: "canary", MemoryShare: 2},
	} {
		if s, err := Start(context.Background(), cfg); err == nil {
			s.Stop(context.Background())
			t.Errorf("Start(%+v) accepted", cfg)
		}
	}
}
