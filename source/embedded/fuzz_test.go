package embedded

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// FuzzLoadOpenMetrics checks that no input panics the loader, that every
// error names a line of the input, and that whatever loads can be queried.
func FuzzLoadOpenMetrics(f *testing.F) {
	for _, seed := range []string{
		"# EOF\n",
		"a 1 1700000000\n# EOF\n",
		"# HELP temp Temperature.\n# TYPE temp gauge\ntemp{room=\"a\"} 20 1700000000\ntemp{room=\"a\"} 21.5 1700000001.5\n# EOF\n",
		"# TYPE req counter\nreq_total{code=\"200\"} 1 1700000000 # {trace_id=\"x\"} 1 1700000000\nreq_created{code=\"200\"} 1699999999 1700000000\n# EOF\n",
		"# TYPE lat histogram\nlat_bucket{le=\"0.1\"} 0 1700000000\nlat_bucket{le=\"+Inf\"} 0 1700000000\nlat_sum 0 1700000000\nlat_count 0 1700000000\n# EOF\n",
		"a 3 1700000003\na 1 1700000001\na 1 1700000001\na 2 1700000001\n# EOF\n",
		"a{x=\"1\",x=\"2\"} 1 1700000000\n# EOF\n",
		"{\"utf8.name\",\"le\"=\"1\"} NaN -1e3\n# EOF",
		"a 1 1e20\n# EOF\n",
		"a 1\n",
		"# UNIT a_seconds seconds\n# TYPE a_seconds summary\na_seconds{quantile=\"0.5\"} 1 1\n# EOF\n",
	} {
		f.Add([]byte(seed))
	}
	db, err := Open(Options{Dir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = db.Close() })
	ctx := context.Background()

	f.Fuzz(func(t *testing.T, in []byte) {
		err := db.LoadOpenMetrics(bytes.NewReader(in))
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) {
				t.Fatalf("error without a line: %v", err)
			}
			if lines := bytes.Count(in, []byte{'\n'}) + 1; le.Line < 1 || le.Line > lines {
				t.Fatalf("line %d outside the input's %d lines: %v", le.Line, lines, err)
			}
			return
		}
		if _, maxt, ok := db.Bounds(); ok {
			if _, err := db.Query(ctx, `count({__name__=~".+"})`, maxt.Add(time.Minute)); err != nil {
				t.Fatalf("query after load: %v", err)
			}
		}
	})
}
