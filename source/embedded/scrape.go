package embedded

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	neturl "net/url"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/model/value"
)

const (
	// scrapeAccept is the Accept header Prometheus sends: OpenMetrics 1.0
	// preferred, the text format accepted.
	scrapeAccept = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"
	// maxScrapeBytes bounds one scrape's body.
	maxScrapeBytes = 32 << 20
)

// targetState is what a scrape target's previous scrape wrote, so that the
// next scrape can mark vanished series stale as Prometheus does.
type targetState struct {
	series map[uint64]labels.Labels
}

// Scrape fetches a /metrics endpoint once, like one Prometheus scrape, and
// appends its samples at time t in one commit. It returns the number of
// exposed samples appended.
//
// Semantics follow Prometheus's defaults: extraLabels are target labels
// added to every series ("instance" defaults to the URL's host:port), and an
// exposed label that clashes with one is renamed "exported_<name>"
// (honor_labels: false); `up` is written as 1, or 0 when the fetch or parse
// fails; a series exposed by the previous scrape of the same target (URL and
// extraLabels) but not by this one, or all of them after a failed scrape,
// gets a staleness marker. Differences: timestamps in the exposition are
// ignored (every sample is at t), `_created` series are skipped, a second
// copy of a series in one exposition is dropped, and no scrape_* series are
// written. The Prometheus text format and OpenMetrics 1.0 are understood
// (by Content-Type; text format when it is missing or unknown).
func (db *DB) Scrape(ctx context.Context, url string, extraLabels map[string]string, t time.Time) (int, error) {
	target, err := targetLabels(url, extraLabels)
	if err != nil {
		return 0, err
	}
	body, ctype, scrapeErr := db.fetch(ctx, url)

	key := url + "\xff" + target.String()
	db.scrapeMu.Lock()
	defer db.scrapeMu.Unlock()
	st := db.targets[key]
	if st == nil {
		st = &targetState{}
		db.targets[key] = st
	}

	app := db.Appender(ctx)
	ts := t.UnixMilli()
	cur := map[uint64]labels.Labels{}
	n := 0
	if scrapeErr == nil {
		n, scrapeErr = appendExposition(app, body, ctype, target, ts, cur)
		if scrapeErr != nil {
			if err := app.Rollback(); err != nil {
				return 0, errors.Join(scrapeErr, err)
			}
			n, cur = 0, map[uint64]labels.Labels{}
		}
	}
	for h, lset := range st.series {
		if _, ok := cur[h]; !ok {
			if err := app.add(lset, ts, math.Float64frombits(value.StaleNaN)); err != nil {
				return 0, errors.Join(err, app.Rollback())
			}
		}
	}
	up := 1.0
	if scrapeErr != nil {
		up = 0
	}
	upLabels := labels.NewBuilder(target).Set(labels.MetricName, "up").Labels()
	if err := app.add(upLabels, ts, up); err != nil {
		return 0, errors.Join(err, app.Rollback())
	}
	if err := app.Commit(); err != nil {
		return 0, err
	}
	st.series = cur
	if scrapeErr != nil {
		return 0, fmt.Errorf("embedded: scrape %s: %w", url, scrapeErr)
	}
	return n, nil
}

// targetLabels builds the target label set: extraLabels plus a default
// "instance" of the URL's host.
func targetLabels(url string, extra map[string]string) (labels.Labels, error) {
	u, err := neturl.Parse(url)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return labels.EmptyLabels(), fmt.Errorf("embedded: scrape: invalid URL %q", url)
	}
	lb := labels.NewBuilder(labels.EmptyLabels())
	lb.Set("instance", u.Host)
	for n, v := range extra {
		lb.Set(n, v)
	}
	lb.Del(labels.MetricName)
	return lb.Labels(), nil
}

// fetch GETs url and returns its body and Content-Type.
func (db *DB) fetch(ctx context.Context, url string) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", scrapeAccept)
	req.Header.Set("User-Agent", "rewind-embedded")
	resp, err := db.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("server returned HTTP status %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxScrapeBytes+1))
	if err != nil {
		return nil, "", err
	}
	if len(body) > maxScrapeBytes {
		return nil, "", fmt.Errorf("body larger than %d bytes", maxScrapeBytes)
	}
	return body, resp.Header.Get("Content-Type"), nil
}

// appendExposition parses one scrape body and appends its float samples at
// ts with the target labels; it records the written series in cur.
func appendExposition(app *Appender, body []byte, ctype string, target labels.Labels, ts int64, cur map[uint64]labels.Labels) (int, error) {
	p, err := textparse.New(body, ctype, labels.NewSymbolTable(), textparse.ParserOptions{
		FallbackContentType:     "text/plain",
		OpenMetricsSkipSTSeries: true,
	})
	if p == nil {
		return 0, fmt.Errorf("unusable Content-Type: %w", err)
	}
	var (
		exposed labels.Labels
		lb      = labels.NewBuilder(labels.EmptyLabels())
		n       int
	)
	for {
		entry, err := p.Next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
		if entry != textparse.EntrySeries {
			continue // metadata; the text formats carry no native histograms
		}
		_, _, v := p.Series()
		p.Labels(&exposed)
		lb.Reset(exposed)
		target.Range(func(l labels.Label) {
			if ev := exposed.Get(l.Name); ev != "" {
				lb.Set("exported_"+l.Name, ev)
			}
			lb.Set(l.Name, l.Value)
		})
		lset := lb.Labels()
		h := lset.Hash()
		if _, dup := cur[h]; dup {
			continue
		}
		if err := validLabels(lset); err != nil {
			return 0, err
		}
		if err := app.add(lset, ts, v); err != nil {
			return 0, err
		}
		cur[h] = lset
		n++
	}
}
