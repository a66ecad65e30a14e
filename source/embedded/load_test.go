package embedded

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// base is the timestamp 1700000000 (2023-11-14T22:13:20Z), the origin of the
// small inputs below.
var base = time.Unix(1700000000, 0).UTC()

func TestLoadOpenMetrics(t *testing.T) {
	type point struct {
		query string
		at    int64 // seconds after base
		want  float64
	}
	tests := []struct {
		name    string
		in      string
		errLine int    // 0: loads without error
		errText string // substring of the error
		points  []point
		empty   []string // queries that must return no sample at base+0..3s
	}{
		{
			name: "unit that is not a suffix",
			in: "# HELP temp Temperature.\n# TYPE temp gauge\n# UNIT temp celsius\n" +
				"temp_celsius{room=\"a\"} 20 1700000000\ntemp_celsius{room=\"a\"} 21.5 1700000001.5\n# EOF\n",
			errLine: 3, errText: `unit "celsius" not a suffix of metric "temp"`,
		},
		{
			name: "gauge",
			in:   "# HELP temp Temperature.\n# TYPE temp gauge\ntemp{room=\"a\"} 20 1700000000\ntemp{room=\"a\"} 21.5 1700000001.5\n# EOF\n",
			points: []point{
				{`temp{room="a"}`, 0, 20},
				{`temp{room="a"}`, 1, 20},
				{`temp{room="a"}`, 2, 21.5},
			},
		},
		{
			name:   "no trailing newline after EOF",
			in:     "a 1 1700000000\n# EOF",
			points: []point{{"a", 0, 1}},
		},
		{
			name: "only EOF", in: "# EOF\n",
			empty: []string{"up"},
		},
		{
			name:    "bad value",
			in:      "a 1 1700000000\na 2 1700000001\na two 1700000002\n# EOF\n",
			errLine: 3, errText: "parsing \"two\"",
			empty: []string{"a"}, // nothing of the file is loaded
		},
		{
			name:    "bad label syntax",
			in:      "# TYPE a gauge\na{x=1} 1 1700000000\n# EOF\n",
			errLine: 2,
		},
		{
			name:    "missing EOF",
			in:      "a 1 1700000000\na 2 1700000001\n",
			errLine: 3, errText: "does not end with # EOF",
			empty: []string{"a"},
		},
		{
			name:    "data after EOF",
			in:      "a 1 1700000000\n# EOF\na 2 1700000001\n",
			errLine: 2, errText: "unexpected data after # EOF",
		},
		{
			name:    "blank line",
			in:      "a 1 1700000000\n\na 2 1700000001\n# EOF\n",
			errLine: 2,
		},
		{
			name:    "CRLF",
			in:      "a 1 1700000000\r\n# EOF\r\n",
			errLine: 1, errText: "CRLF",
		},
		{
			name:    "no timestamp",
			in:      "# TYPE a gauge\na 1 1700000000\na 2\n# EOF\n",
			errLine: 3, errText: "no timestamp",
		},
		{
			name:    "timestamp out of range",
			in:      "a 1 1e20\n# EOF\n",
			errLine: 1, errText: "out of range",
		},
		{
			name:    "duplicate label",
			in:      "a 1 1700000000\na{x=\"1\",x=\"2\"} 1 1700000000\n# EOF\n",
			errLine: 2, errText: `label "x" appears twice`,
		},
		{
			name: "unsorted samples are sorted",
			in:   "a 3 1700000003\na 1 1700000001\nb 7 1700000000\na 2 1700000002\na 0 1700000000\n# EOF\n",
			points: []point{
				{"a", 0, 0}, {"a", 1, 1}, {"a", 2, 2}, {"a", 3, 3}, {"b", 3, 7},
				{"count_over_time(a[10s])", 3, 4},
			},
		},
		{
			name:   "exact duplicate is ignored",
			in:     "a 1 1700000000\na 2 1700000001\na 1 1700000000\n# EOF\n",
			points: []point{{"count_over_time(a[10s])", 1, 2}, {"a", 0, 1}},
		},
		{
			name:    "conflicting duplicate",
			in:      "a 1 1700000000\na 2 1700000001\na 5 1700000000\n# EOF\n",
			errLine: 3, errText: "line 1 has value 1",
			empty: []string{"a"},
		},
		{
			name: "label order and empty labels do not split a series",
			in:   "a{x=\"1\",y=\"2\"} 1 1700000000\na{y=\"2\",x=\"1\",z=\"\"} 2 1700000001\n# EOF\n",
			points: []point{
				{`count_over_time(a{x="1",y="2"}[10s])`, 1, 2},
				{`count(a)`, 1, 1},
				{`count(a{z=""})`, 1, 1},
			},
		},
		{
			name: "counter with exemplar and _created",
			in: "# TYPE req counter\nreq_total{code=\"200\"} 1 1700000000 # {trace_id=\"x\"} 1 1700000000\n" +
				"req_created{code=\"200\"} 1699999999 1700000000\nreq_total{code=\"200\"} 4 1700000003\n# EOF\n",
			points: []point{
				{`req_total`, 3, 4},
				{`req_created`, 0, 1699999999}, // loaded like promtool does
				{`req_total - req_total offset 3s`, 3, 3},
			},
		},
		{
			name: "classic histogram",
			in: "# TYPE lat histogram\n" +
				"lat_bucket{le=\"0.1\"} 0 1700000000\nlat_bucket{le=\"1\"} 0 1700000000\nlat_bucket{le=\"+Inf\"} 0 1700000000\nlat_sum 0 1700000000\nlat_count 0 1700000000\n" +
				"lat_bucket{le=\"0.1\"} 50 1700000002\nlat_bucket{le=\"1\"} 90 1700000002\nlat_bucket{le=\"+Inf\"} 100 1700000002\nlat_sum 30 1700000002\nlat_count 100 1700000002\n# EOF\n",
			points: []point{
				{`histogram_quantile(0.5, increase(lat_bucket[5s]))`, 2, 0.1},
				{`histogram_quantile(0.7, increase(lat_bucket[5s]))`, 2, 0.55},
				{`increase(lat_sum[5s]) / increase(lat_count[5s])`, 2, 0.3},
				{`count(lat_bucket)`, 2, 3},
				{`lat_bucket{le="1.0"}`, 2, 90}, // OpenMetrics normalises "le"
			},
		},
		{
			name: "NaN and infinities are values",
			in:   "a NaN 1700000000\nb +Inf 1700000000\nc -Inf 1700000000\n# EOF\n",
			points: []point{
				{"a", 0, math.NaN()}, {"b", 0, math.Inf(1)}, {"c", 0, math.Inf(-1)},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := openDB(t)
			err := db.LoadOpenMetrics(strings.NewReader(tc.in))
			switch {
			case tc.errLine == 0 && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.errLine != 0:
				var le *LineError
				if !errors.As(err, &le) {
					t.Fatalf("want *LineError at line %d, got %v", tc.errLine, err)
				}
				if le.Line != tc.errLine || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("got %q (line %d), want line %d containing %q", err, le.Line, tc.errLine, tc.errText)
				}
			}
			for _, p := range tc.points {
				got := queryOne(t, db, p.query, base.Add(time.Duration(p.at)*time.Second))
				if !near(got, p.want) && !(math.IsNaN(got) && math.IsNaN(p.want)) {
					t.Errorf("%s at +%ds = %v, want %v", p.query, p.at, got, p.want)
				}
			}
			for _, q := range tc.empty {
				for s := range 4 {
					v, err := db.Query(context.Background(), q, base.Add(time.Duration(s)*time.Second))
					if err != nil || len(v) != 0 {
						t.Errorf("%s at +%ds = %v, %v; want no data", q, s, v, err)
					}
				}
			}
		})
	}
}

func TestLoadFileErrorNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.om")
	if err := os.WriteFile(path, []byte("a 1 1700000000\na x 1\n# EOF\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	db := openDB(t)
	err := db.LoadFile(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+":2: ") {
		t.Fatalf("got %v, want an error starting with %q", err, path+":2: ")
	}
	if err := db.LoadFile(filepath.Join(t.TempDir(), "missing.om")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: got %v", err)
	}
}

// Loading a second file continues the series of the first; a file that
// rewrites history already loaded fails at the offending line.
func TestLoadAppendsToExistingData(t *testing.T) {
	db := openDB(t)
	if err := db.LoadOpenMetrics(strings.NewReader("a 1 1700000000\n# EOF\n")); err != nil {
		t.Fatal(err)
	}
	if err := db.LoadOpenMetrics(strings.NewReader("a 2 1700000010\n# EOF\n")); err != nil {
		t.Fatal(err)
	}
	if got := queryOne(t, db, "a", base.Add(10*time.Second)); got != 2 {
		t.Fatalf("a = %v, want 2", got)
	}
	err := db.LoadOpenMetrics(strings.NewReader("# TYPE a gauge\na 3 1700000005\n# EOF\n"))
	var le *LineError
	if !errors.As(err, &le) || le.Line != 2 || !strings.Contains(err.Error(), "out of order") {
		t.Fatalf("got %v, want an out-of-order error at line 2", err)
	}
}

func TestLoadClosed(t *testing.T) {
	db, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := db.LoadOpenMetrics(strings.NewReader("a 1 1\n# EOF\n")); !errors.Is(err, ErrClosed) {
		t.Errorf("load after close: %v", err)
	}
}
