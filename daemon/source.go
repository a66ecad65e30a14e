package daemon

import (
	"context"
	"fmt"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/source/prometheus"
)

// SourceFunc builds the metrics source of one Prometheus endpoint of the
// policy. The daemon calls it once per distinct endpoint (the whole
// prometheus section) of a policy, and every system that names the
// endpoint shares the source: a per-endpoint client, query budget or
// connection pool belongs in the source. It must not contact the endpoint.
// An error leaves the endpoint's systems degraded (then blind), with the
// error in /readyz and in every failed query; it does not stop the daemon.
type SourceFunc func(p policy.Prometheus) (rewind.Source, error)

// PrometheusSource is a SourceFunc: a client of the endpoint's Prometheus
// HTTP API of its own.
func PrometheusSource(p policy.Prometheus) (rewind.Source, error) { return NewPrometheus(p) }

// PooledSource is the daemon's default SourceFunc: clients from pool, so
// that every prometheus section naming one endpoint (URL, credentials,
// TLS), in this policy and the next one a reload brings, shares its
// connections, its bound on queries in flight (prometheus.maxInFlight)
// and its backoff.
func PooledSource(pool *prometheus.Pool) SourceFunc {
	return func(p policy.Prometheus) (rewind.Source, error) { return pool.Client(clientConfig(p)) }
}

// NewPrometheus builds the HTTP API client of a policy's prometheus
// section (analyze, backtest and postmortem use it directly).
func NewPrometheus(p policy.Prometheus) (*prometheus.Client, error) {
	return prometheus.New(clientConfig(p))
}

func clientConfig(p policy.Prometheus) prometheus.Config {
	return prometheus.Config{
		URL: p.URL, Timeout: p.Timeout, BearerTokenFile: p.BearerTokenFile,
		BasicAuthUsername: p.BasicAuthUsername, BasicAuthPasswordFile: p.BasicAuthPassword,
		CAFile: p.CAFile, InsecureSkipVerify: p.InsecureSkipVerify, MaxInFlight: p.MaxInFlight,
	}
}

// sourceName is how /readyz names an endpoint.
func sourceName(p policy.Prometheus) string {
	if p.URL == "" {
		return "metrics source"
	}
	return "prometheus " + p.URL
}

// unavailable is the source of an endpoint whose client could not be
// built: every query fails with the reason (the triggers are degraded).
type unavailable struct{ err error }

func (u unavailable) Query(context.Context, string, time.Time) (rewind.Vector, error) {
	return nil, fmt.Errorf("%w: %v", rewind.ErrQuery, u.err)
}

// probe is the readiness check of a source: a trivial query now.
func probe(src rewind.Source) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		_, err := src.Query(ctx, "vector(1)", time.Now())
		return err
	}
}
