// Package report keeps what a rollback leaves for people: the evidence
// bundle (the decision, the metrics around the incident, an index of every
// file, including those written by the platform executors) and, later, the
// post-mortem draft.
package report

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/policy"
)

// Bundle is the metrics half of the evidence step, run after the platform's
// evidence executor (pod logs, objects, events) has written into the same
// directory: it adds the decision, the rollback record so far and range data
// of every query of the system around the incident, then writes INDEX.md
// listing every file in the bundle.
type Bundle struct {
	Dir    string // parent directory; the bundle is Dir/<rollback id>
	Source rewind.Source
	System *policy.System
	Now    func() time.Time
	// Before is how much history before the decision (or before now, for
	// a manual rollback) the metrics cover; default 30 minutes.
	Before time.Duration
}

var _ rewind.Executor = (*Bundle)(nil)

// Path is the bundle directory of a rollback.
func (b *Bundle) Path(rb *rewind.Rollback) string { return filepath.Join(b.Dir, rb.ID) }

func (b *Bundle) Plan(_ context.Context, rb *rewind.Rollback) ([]rewind.Change, error) {
	return []rewind.Change{{Target: "filesystem", Action: "write", Detail: fmt.Sprintf("evidence bundle %s: decision.json, rollback.json, metrics.json, INDEX.md", b.Path(rb))}}, nil
}

func (b *Bundle) Do(ctx context.Context, rb *rewind.Rollback) (rewind.StepResult, error) {
	dir := b.Path(rb)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return rewind.StepResult{}, err
	}
	var problems []string
	if rb.Decision != nil {
		if err := writeJSON(filepath.Join(dir, "decision.json"), rb.Decision); err != nil {
			return rewind.StepResult{}, err
		}
	}
	if err := writeJSON(filepath.Join(dir, "rollback.json"), rb); err != nil {
		return rewind.StepResult{}, err
	}
	if err := b.metrics(ctx, rb, filepath.Join(dir, "metrics.json")); err != nil {
		if ctx.Err() != nil {
			return rewind.StepResult{}, ctx.Err()
		}
		problems = append(problems, "metrics: "+err.Error())
	}
	n, err := writeIndex(dir, rb, problems)
	if err != nil {
		return rewind.StepResult{}, err
	}
	res := rewind.StepResult{Detail: fmt.Sprintf("evidence bundle %s (%d files)", dir, n), Facts: map[string]string{plan.FactBundle: dir}}
	if len(problems) > 0 {
		res.Detail += "; incomplete: " + strings.Join(problems, "; ")
	}
	return res, nil
}

// metrics writes range data of every query of the system around the incident.
func (b *Bundle) metrics(ctx context.Context, rb *rewind.Rollback, path string) error {
	rs, ok := b.Source.(rewind.RangeSource)
	if !ok {
		return fmt.Errorf("the metrics source cannot answer range queries")
	}
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	end := now()
	anchor := end
	if rb.Decision != nil {
		anchor = rb.Decision.At
	}
	before := b.Before
	if before <= 0 {
		before = 30 * time.Minute
	}
	start, step := anchor.Add(-before), b.System.Interval
	type series struct {
		Labels map[string]string `json:"labels"`
		Points [][2]float64      `json:"points"` // [unix seconds, value]
	}
	type result struct {
		Query  string   `json:"query"`
		Error  string   `json:"error,omitempty"`
		Series []series `json:"series"`
	}
	out := struct {
		Start time.Time `json:"start"`
		End   time.Time `json:"end"`
		Step  string    `json:"step"`
		Data  []result  `json:"data"`
	}{Start: start.UTC(), End: end.UTC(), Step: step.String()}
	var failed int
	for _, q := range rolloutSystem(b.System, rb).Queries() {
		m, err := rs.QueryRange(ctx, q, start, end, step)
		r := result{Query: q, Series: []series{}}
		if err != nil {
			r.Error, failed = err.Error(), failed+1
		}
		for _, s := range m {
			ps := make([][2]float64, 0, len(s.Points))
			for _, p := range s.Points {
				ps = append(ps, [2]float64{float64(p.T.UnixMilli()) / 1000, finiteOr0(p.V)})
			}
			r.Series = append(r.Series, series{Labels: s.Labels, Points: ps})
		}
		out.Data = append(out.Data, r)
	}
	if err := writeJSON(path, out); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d queries failed (see metrics.json)", failed, len(out.Data))
	}
	return nil
}

func finiteOr0(v float64) float64 {
	if v != v || v > 1e308 || v < -1e308 {
		return 0
	}
	return v
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o640)
}

// writeIndex lists every file of the bundle with its size.
func writeIndex(dir string, rb *rewind.Rollback, problems []string) (int, error) {
	type entry struct {
		path string
		size int64
	}
	var files []entry
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "INDEX.md" {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files = append(files, entry{rel, info.Size()})
		return nil
	})
	if err != nil {
		return 0, err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].path < files[j].path })
	what, missing := platformIndex(dir)
	problems = append(problems, missing...)
	var b strings.Builder
	fmt.Fprintf(&b, "# Evidence: rollback %s of %s\n\nReason: %s\n\n| file | bytes | what |\n|---|---|---|\n", rb.ID, rb.System, rb.Reason)
	for _, f := range files {
		d := what[filepath.ToSlash(f.path)]
		if d == "" {
			d = describe(f.path)
		}
		fmt.Fprintf(&b, "| %s | %d | %s |\n", f.path, f.size, d)
	}
	if len(problems) > 0 {
		b.WriteString("\n## Not collected\n\n")
		for _, p := range problems {
			fmt.Fprintf(&b, "- %s\n", p)
		}
	}
	return len(files) + 1, os.WriteFile(filepath.Join(dir, "INDEX.md"), []byte(b.String()), 0o640)
}

// platformIndex reads the platform executor's index.json (if any): what its
// files are, and what it could not collect.
func platformIndex(dir string) (what map[string]string, missing []string) {
	what = map[string]string{}
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return what, nil
	}
	var idx struct {
		Files []struct {
			Path, What, Error string
			Missing           bool
		}
	}
	if json.Unmarshal(data, &idx) != nil {
		return what, []string{"index.json is not readable"}
	}
	for _, f := range idx.Files {
		if f.Missing {
			missing = append(missing, fmt.Sprintf("%s (%s): %s", f.Path, f.What, f.Error))
			continue
		}
		what[f.Path] = f.What
	}
	return what, missing
}

func describe(path string) string {
	switch {
	case path == "decision.json":
		return "the decision: triggers, resolved queries, values with timestamps, state history, policy hash"
	case path == "rollback.json":
		return "the rollback record and its steps when the evidence was taken"
	case path == "metrics.json":
		return "range data of every query of the system around the incident"
	case strings.HasSuffix(path, ".log"):
		return "container log"
	case strings.HasSuffix(path, ".yaml"):
		return "Kubernetes object"
	case strings.Contains(path, "event"):
		return "events, sorted by time"
	}
	return ""
}
