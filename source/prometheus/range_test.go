package prometheus

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSplitRange(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		name     string
		points   int // evaluation instants in [start, end]
		step     time.Duration
		extra    time.Duration // end beyond the last grid instant
		maxSteps int
		want     []int // points per chunk
	}{
		{"single instant", 1, time.Minute, 0, 10, []int{1}},
		{"exactly max", 10, time.Minute, 0, 10, []int{10}},
		{"one over max", 11, time.Minute, 0, 10, []int{10, 1}},
		{"end off grid", 25, time.Second, 500 * time.Millisecond, 10, []int{10, 10, 5}},
		{"step longer than range", 1, time.Hour, 10 * time.Minute, 10, []int{1}},
		{"real limit", 25001, time.Second, 0, maxStepsPerRequest, []int{10000, 10000, 5001}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			end := t0.Add(time.Duration(tc.points-1)*tc.step + tc.extra)
			chunks := splitRange(t0, end, tc.step, tc.maxSteps)
			if len(chunks) != len(tc.want) {
				t.Fatalf("%d chunks %v, want %d", len(chunks), chunks, len(tc.want))
			}
			next := t0
			for i, c := range chunks {
				if !c.start.Equal(next) {
					t.Errorf("chunk %d starts at %s, want %s (on the grid, right after the previous chunk)", i, c.start, next)
				}
				n := int(c.end.Sub(c.start)/tc.step) + 1
				if n != tc.want[i] || n > tc.maxSteps {
					t.Errorf("chunk %d has %d points, want %d", i, n, tc.want[i])
				}
				next = c.start.Add(time.Duration(n) * tc.step)
			}
			if last := chunks[len(chunks)-1].end; !last.Equal(end) {
				t.Errorf("last chunk ends at %s, want %s", last, end)
			}
		})
	}
}

func TestSplitRangeHugeSpanDoesNotOverflow(t *testing.T) {
	start := time.Unix(0, 0)
	chunks := splitRange(start, start.Add(200*365*24*time.Hour), 30*24*time.Hour, 10)
	if len(chunks) < 200 || len(chunks) > 300 {
		t.Errorf("%d chunks for 200 years in 30-day steps of 10", len(chunks))
	}
}

// rangeAPI answers query_range like Prometheus: for every instant of the
// grid, series "a" has the value t (unix seconds) and series "b" exists only
// before cutoff. It refuses requests of more than 11 000 points.
func rangeAPI(t *testing.T, cutoff float64) *fakeAPI {
	return newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		start, _ := strconv.ParseFloat(r.Form.Get("start"), 64)
		end, _ := strconv.ParseFloat(r.Form.Get("end"), 64)
		step, _ := strconv.ParseFloat(r.Form.Get("step"), 64)
		if (end-start)/step > 11000 {
			answer(400, `{"status":"error","errorType":"bad_data","error":"exceeded maximum resolution of 11,000 points per timeseries"}`)(w, r)
			return
		}
		var a, b []string
		for i := 0; ; i++ {
			ts := start + float64(i)*step
			if ts > end {
				break
			}
			p := fmt.Sprintf(`[%s,"%s"]`, strconv.FormatFloat(ts, 'f', -1, 64), strconv.FormatFloat(ts, 'f', -1, 64))
			a = append(a, p)
			if ts < cutoff {
				b = append(b, p)
			}
		}
		series := []string{fmt.Sprintf(`{"metric":{"s":"a","job":"x"},"values":[%s]}`, strings.Join(a, ","))}
		if len(b) > 0 {
			series = append(series, fmt.Sprintf(`{"metric":{"s":"b"},"values":[%s]}`, strings.Join(b, ",")))
		}
		answer(200, `{"status":"success","data":{"resultType":"matrix","result":[`+strings.Join(series, ",")+`]}}`)(w, r)
	})
}

func TestQueryRangeSplitsAndMerges(t *testing.T) {
	start := time.Unix(1700000000, 0)
	end := start.Add(25000 * time.Second) // 25 001 points at 1s
	api := rangeAPI(t, float64(start.Unix()+15000))
	c := mustNew(t, Config{URL: api.URL})

	m, err := c.QueryRange(context.Background(), "x", start, end, time.Second)
	if err != nil {
		t.Fatalf("QueryRange: %v", err)
	}
	reqs := api.seen()
	if len(reqs) != 3 {
		t.Errorf("%d requests, want 3", len(reqs))
	}
	for _, r := range reqs {
		if r.Path != "/api/v1/query_range" || r.Form.Get("partial_response") != "false" || r.Form.Get("timeout") != "10s" || r.Form.Get("step") != "1" {
			t.Errorf("request %s %v lacks parameters", r.Path, r.Form)
		}
	}
	if len(m) != 2 || m[0].Labels["s"] != "a" || m[1].Labels["s"] != "b" {
		t.Fatalf("matrix has series %v, want a and b merged across chunks", m)
	}
	for i, s := range m {
		want := map[int]int{0: 25001, 1: 15000}[i]
		if len(s.Points) != want {
			t.Errorf("series %v: %d points, want %d", s.Labels, len(s.Points), want)
		}
		for j, p := range s.Points {
			wantT := start.Add(time.Duration(j) * time.Second)
			if !p.T.Equal(wantT) || p.V != float64(wantT.Unix()) {
				t.Fatalf("series %v point %d = %v, want %s", s.Labels, j, p, wantT)
			}
		}
	}
}

func TestQueryRangeFailures(t *testing.T) {
	start := time.Unix(1700000000, 0)
	t.Run("vector result", func(t *testing.T) {
		api := newFakeAPI(t, answer(200, threeSeries))
		_, err := mustNew(t, Config{URL: api.URL}).QueryRange(context.Background(), "x", start, start.Add(time.Hour), time.Minute)
		wantQueryError(t, err, "x", KindResultType, `"vector"`)
	})
	t.Run("native histograms", func(t *testing.T) {
		api := newFakeAPI(t, answer(200, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"histograms":[[1,{"count":"1"}]]}]}}`))
		_, err := mustNew(t, Config{URL: api.URL}).QueryRange(context.Background(), "x", start, start.Add(time.Hour), time.Minute)
		wantQueryError(t, err, "x", KindResultType, "native histogram")
	})
	t.Run("points out of order", func(t *testing.T) {
		api := newFakeAPI(t, answer(200, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[2,"1"],[1,"1"]]}]}}`))
		_, err := mustNew(t, Config{URL: api.URL}).QueryRange(context.Background(), "x", start, start.Add(time.Hour), time.Minute)
		wantQueryError(t, err, "x", KindDecode, "time order")
	})
	t.Run("second chunk fails", func(t *testing.T) {
		calls := 0
		ok := rangeAPI(t, 0)
		api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
			if calls++; calls == 2 {
				answer(503, `{"status":"error","errorType":"unavailable","error":"store down"}`)(w, r)
				return
			}
			ok.Config.Handler.ServeHTTP(w, r)
		})
		m, err := mustNew(t, Config{URL: api.URL}).QueryRange(context.Background(), "x", start, start.Add(20000*time.Second), time.Second)
		wantQueryError(t, err, "x", KindHTTP, "store down")
		if m != nil {
			t.Errorf("partial matrix %v returned with the error", m)
		}
	})
	for name, tc := range map[string]struct {
		end  time.Time
		step time.Duration
	}{
		"zero step":        {start.Add(time.Hour), 0},
		"negative step":    {start.Add(time.Hour), -time.Second},
		"end before start": {start.Add(-time.Second), time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			api := newFakeAPI(t, answer(200, threeSeries))
			_, err := mustNew(t, Config{URL: api.URL}).QueryRange(context.Background(), "x", start, tc.end, tc.step)
			wantQueryError(t, err, "x", KindRequest)
			if n := len(api.seen()); n != 0 {
				t.Errorf("%d requests sent for invalid arguments", n)
			}
		})
	}
}

func TestQueryRangeNaNPassesThrough(t *testing.T) {
	api := newFakeAPI(t, answer(200, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"1"},"values":[[1700000000,"NaN"],[1700000060,"-Inf"]]}]}}`))
	m, err := mustNew(t, Config{URL: api.URL}).QueryRange(context.Background(), "x", time.Unix(1700000000, 0), time.Unix(1700000060, 0), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || len(m[0].Points) != 2 || !math.IsNaN(m[0].Points[0].V) || !math.IsInf(m[0].Points[1].V, -1) {
		t.Errorf("matrix %v, want NaN and -Inf passed through", m)
	}
}
