package observe

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
)

// liveSkew is how far from the wall clock an evaluation may be and still
// run a probe: a health check answers only now, so a replay of the past
// (backtest) has no data for it.
const liveSkew = 10 * time.Second

// probeClient does not follow redirects: a 3xx is the answer.
var probeClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// probe evaluates the probe form: it holds (the canary is unhealthy) when
// the endpoint answers with an unexpected status, too slowly, with a body
// that does not match, or not at all. The canary value is the latency in
// seconds.
func probe(ctx context.Context, t *policy.Trigger, at time.Time, o *rewind.Observation) {
	p := t.Probe
	if d := time.Since(at); d > liveSkew || d < -liveSkew {
		o.Outcome, o.Reason = rewind.OutcomeNoData, "a probe answers only now: it is not replayed"
		return
	}
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
	if err != nil {
		o.Outcome, o.Reason = rewind.OutcomeError, "probe: "+err.Error()
		return
	}
	req.Header.Set("User-Agent", "rewind-probe")
	start := time.Now()
	resp, err := probeClient.Do(req)
	if err != nil {
		o.Outcome, o.Reason = rewind.OutcomeTrue, fmt.Sprintf("probe %s failed: %v", p.URL, err)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	took := time.Since(start)
	o.Canary = rewind.Float(took.Seconds())
	o.Readings = []rewind.Reading{{Side: "probe", Query: "GET " + p.URL, At: at, Value: o.Canary, Series: 1}}
	switch {
	case len(p.ExpectStatus) > 0 && !slices.Contains(p.ExpectStatus, resp.StatusCode),
		len(p.ExpectStatus) == 0 && (resp.StatusCode < 200 || resp.StatusCode > 399):
		o.Outcome, o.Reason = rewind.OutcomeTrue, fmt.Sprintf("probe %s answered %s", p.URL, resp.Status)
	case p.MaxLatency > 0 && took > p.MaxLatency:
		o.Outcome, o.Reason = rewind.OutcomeTrue, fmt.Sprintf("probe %s took %s, over %s", p.URL, took.Round(time.Millisecond), p.MaxLatency)
	case p.BodyMatch != nil && !p.BodyMatch.Match(body):
		o.Outcome, o.Reason = rewind.OutcomeTrue, fmt.Sprintf("probe %s: body does not match %s", p.URL, p.BodyMatch)
	default:
		o.Outcome = rewind.OutcomeFalse
	}
}
