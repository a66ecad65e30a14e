package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/plan"
)

// IndexFile is the bundle file in which Evidence lists what it wrote. It
// has the shape of the Kubernetes evidence executor's index.json, which
// report.Bundle reads to describe the platform's files in INDEX.md.
const IndexFile = "index.json"

// Evidence is the demo's platform evidence: into the rollback's bundle
// directory (rb.Evidence when set, else Dir/<rollback id>) it writes the
// service's request log (<version>-requests.log), its metrics now
// (<version>-metrics.txt) and, after a restart, the metrics its previous
// process left (<version>-metrics-previous.txt), then IndexFile. It reads
// the service in-process, so it works after the service was stopped.
//
// The index is written last: a bundle with this rollback's index is
// complete, and Do skips it.
type Evidence struct {
	Service *Service
	Dir     string // parent of the bundles
}

var _ rewind.Executor = Evidence{}

// Index is the content of IndexFile.
type Index struct {
	Rollback  string       `json:"rollback"`
	System    string       `json:"system"`
	Service   string       `json:"service"`
	Collected time.Time    `json:"collected"`
	Files     []IndexEntry `json:"files"`
}

// IndexEntry is one file of the bundle, relative to it.
type IndexEntry struct {
	Path  string `json:"path"`
	Bytes int64  `json:"bytes"`
	What  string `json:"what"`
}

// ReadIndex reads the IndexFile of a bundle directory.
func ReadIndex(dir string) (*Index, error) {
	data, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		return nil, err
	}
	var idx Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("%s: %w", IndexFile, err)
	}
	return &idx, nil
}

func (e Evidence) bundle(rb *rewind.Rollback) (string, error) {
	switch {
	case e.Service == nil:
		return "", errors.New("evidence: no service")
	case rb.Evidence != "":
		return rb.Evidence, nil
	case e.Dir != "":
		return filepath.Join(e.Dir, rb.ID), nil
	}
	return "", errors.New("evidence: no evidence directory configured")
}

func (e Evidence) Plan(_ context.Context, rb *rewind.Rollback) ([]rewind.Change, error) {
	dir, err := e.bundle(rb)
	if err != nil {
		return nil, err
	}
	v := e.Service.Version()
	return []rewind.Change{{Target: "filesystem", Action: "write", Detail: fmt.Sprintf(
		"evidence bundle %s: the %s's request log (%s-requests.log), its metrics (%s-metrics.txt, and those of its previous process after a restart), %s",
		dir, v, v, v, IndexFile)}}, nil
}

func (e Evidence) Do(ctx context.Context, rb *rewind.Rollback) (rewind.StepResult, error) {
	if err := ctx.Err(); err != nil {
		return rewind.StepResult{}, err
	}
	dir, err := e.bundle(rb)
	if err != nil {
		return rewind.StepResult{}, err
	}
	facts := map[string]string{plan.FactBundle: dir}
	if idx, err := ReadIndex(dir); err == nil && idx.Rollback == rb.ID {
		return rewind.StepResult{Skipped: true, Facts: facts,
			Detail: fmt.Sprintf("evidence of the %s already in %s (%s)", e.Service.Version(), dir, idx.Collected.Format(time.RFC3339))}, nil
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return rewind.StepResult{}, err
	}
	files, err := e.write(dir)
	if err != nil {
		return rewind.StepResult{Facts: facts}, err
	}
	if err := ctx.Err(); err != nil { // no index: a re-run writes the bundle again
		return rewind.StepResult{Facts: facts}, fmt.Errorf("collecting evidence into %s: %w", dir, err)
	}
	idx := Index{Rollback: rb.ID, System: rb.System, Service: e.Service.Version(), Collected: time.Now().UTC(), Files: files}
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return rewind.StepResult{Facts: facts}, err
	}
	if err := os.WriteFile(filepath.Join(dir, IndexFile), append(data, '\n'), 0o640); err != nil {
		return rewind.StepResult{Facts: facts}, err
	}
	facts["files"] = fmt.Sprint(len(files))
	return rewind.StepResult{Facts: facts, Detail: fmt.Sprintf("evidence of the %s in %s: %d files", e.Service.Version(), dir, len(files))}, nil
}

// write writes the service's files into dir and returns their entries.
func (e Evidence) write(dir string) ([]IndexEntry, error) {
	s := e.Service
	v := s.Version()
	var files []IndexEntry
	add := func(name, what string, data []byte) error {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o640); err != nil {
			return err
		}
		files = append(files, IndexEntry{Path: name, Bytes: int64(len(data)), What: what})
		return nil
	}

	reqs := s.Requests()
	var log strings.Builder
	for _, r := range reqs {
		log.WriteString(r.String())
		log.WriteByte('\n')
	}
	what := fmt.Sprintf("the %s's last %d requests (at most %d are kept), oldest first: time, method, path, status, duration, release, fault", v, len(reqs), s.cfg.LogSize)
	if err := add(v+"-requests.log", what, []byte(log.String())); err != nil {
		return nil, err
	}

	var m bytes.Buffer
	if err := s.WriteMetrics(&m); err != nil {
		return nil, fmt.Errorf("gathering the %s's metrics: %w", v, err)
	}
	state := "running"
	if !s.Running() {
		state = "scaled to zero"
	}
	what = fmt.Sprintf("the %s's metrics when the evidence was taken (release %s, fault %s, %s)", v, s.Release(), s.Fault(), state)
	if err := add(v+"-metrics.txt", what, m.Bytes()); err != nil {
		return nil, err
	}

	if p := s.Previous(); p != nil {
		what = fmt.Sprintf("the metrics the %s's previous process (release %s, fault %s) left when it was restarted at %s",
			v, p.Release, p.Fault, p.Ended.UTC().Format(time.RFC3339))
		if err := add(v+"-metrics-previous.txt", what, p.Metrics); err != nil {
			return nil, err
		}
	}
	return files, nil
}
