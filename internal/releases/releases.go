// Package releases generates the metric history of services deployed as
// plain Deployments, as a rollout watch sees it: kube-state-metrics series
// of their ReplicaSets (kube_replicaset_owner, kube_replicaset_created,
// kube_replicaset_spec_replicas) and the seed's request metrics of every
// pod, labelled with namespace, app, pod and pod_template_hash. A release
// is a rolling update that replaces the pods one by one; its revision may
// be bad (more errors, slower), the service may follow a daily traffic peak
// (more requests, errors and latency at the peak, every day), and incidents
// may degrade every revision at once. The history covers a main span and,
// for the seasonal references of a watch, the same span one day or one
// week earlier. It is written as OpenMetrics text that promtool and
// Rewind's embedded source both read, and the exact counts behind it are
// kept (Truth) for tests to hold detection times against.
package releases

import (
	"fmt"
	"math"
	"time"
)

// History is a generated history of one or more services.
type History struct {
	Start    time.Time     // the main span
	Duration time.Duration //
	Scrape   time.Duration // default 15 s
	// Offset is added to every scrape time (default 7 s), as real scrapes
	// are not aligned with evaluations.
	Offset time.Duration
	// Seasons adds the main span shifted back by each duration, widened by
	// SeasonMargin on both sides (default 1 h): the history that the
	// seasonal reference windows of a watch read.
	Seasons      []time.Duration
	SeasonMargin time.Duration
	// Before widens the main span backwards (default 1 h 30 m), for the
	// reference window before a rollout.
	Before   time.Duration
	Seed     uint64
	Services []Service
}

// Service is one Deployment and the series of its pods.
type Service struct {
	Namespace string
	Name      string // the Deployment's name and the app label
	Replicas  int    // default 3
	Profile   Profile
	// Initial is the pod-template-hash of the revision that runs before the
	// first release; its ReplicaSet was created InitialAge before Start
	// (default 30 days).
	Initial    string
	InitialAge time.Duration
	Releases   []Release
	Incidents  []Incident
	// NoKSM: kube-state-metrics exports nothing of this service.
	NoKSM bool
}

// Profile is a healthy revision's behaviour.
type Profile struct {
	RPS        float64 // requests per second, all pods together
	ErrorRate  float64 // probability of a 5xx
	LatencyP50 float64 // seconds; lognormal
	LatencyCV  float64 // sigma of log latency
	Daily      *Daily  // a daily peak, or none
}

// Daily is a daily peak: from RampStart the rate, the error rate and the
// latency rise linearly to their peak values at PeakStart, stay there until
// PeakEnd and fall back linearly by RampEnd (times of day, UTC).
type Daily struct {
	RampStart, PeakStart, PeakEnd, RampEnd time.Duration
	RPS, ErrorRate, LatencyFactor          float64
}

// Release is a rolling update to a new revision.
type Release struct {
	Hash string
	At   time.Time // the new ReplicaSet's creation; its first pod serves from then
	// Step is the time between pod replacements (default 30 s): at At+k·Step
	// the (k+1)-th new pod serves and one old pod stops.
	Step time.Duration
	// The new revision's behaviour from At+EffectAfter on: its error rate
	// (0: the profile's) and its latency factor (0: 1).
	ErrorRate     float64
	LatencyFactor float64
	EffectAfter   time.Duration
	// NoKSM: kube-state-metrics misses this ReplicaSet.
	NoKSM bool
}

// Bad reports whether the release changes the behaviour.
func (r Release) Bad() bool { return r.ErrorRate > 0 || r.LatencyFactor > 0 && r.LatencyFactor != 1 }

// EffectAt is when a bad release's behaviour starts.
func (r Release) EffectAt() time.Time { return r.At.Add(r.EffectAfter) }

// Incident degrades every pod of a service in [From, To).
type Incident struct {
	From, To      time.Time
	ErrorRate     float64 // 0: unchanged
	LatencyFactor float64 // 0: unchanged
}

// Buckets are the latency histogram's upper bounds (seconds), +Inf implied.
var Buckets = []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

func (h *History) defaults() error {
	if h.Scrape <= 0 {
		h.Scrape = 15 * time.Second
	}
	if h.Offset == 0 {
		h.Offset = 7 * time.Second
	}
	if h.SeasonMargin == 0 {
		h.SeasonMargin = time.Hour
	}
	if h.Before == 0 {
		h.Before = 90 * time.Minute
	}
	if h.Duration <= 0 || len(h.Services) == 0 {
		return fmt.Errorf("releases: a history needs a positive duration and a service")
	}
	for i := range h.Services {
		s := &h.Services[i]
		if s.Replicas <= 0 {
			s.Replicas = 3
		}
		if s.InitialAge <= 0 {
			s.InitialAge = 30 * 24 * time.Hour
		}
		if s.Namespace == "" || s.Name == "" || s.Initial == "" {
			return fmt.Errorf("releases: service %d needs a namespace, a name and an initial revision", i)
		}
		for j := range s.Releases {
			if s.Releases[j].Step <= 0 {
				s.Releases[j].Step = 30 * time.Second
			}
			if s.Releases[j].Hash == "" {
				return fmt.Errorf("releases: release %d of %s has no hash", j, s.Name)
			}
		}
	}
	return nil
}

// at returns the profile's rate, error rate and latency median at t.
func (p Profile) at(t time.Time) (rps, errRate, p50 float64) {
	rps, errRate, p50 = p.RPS, p.ErrorRate, p.LatencyP50
	if d := p.Daily; d != nil {
		f := d.level(t)
		rps += (d.RPS - p.RPS) * f
		errRate += (d.ErrorRate - p.ErrorRate) * f
		p50 *= 1 + (d.LatencyFactor-1)*f
	}
	return rps, errRate, p50
}

// level is the peak's share at t: 0 off-peak, 1 at the peak, linear between.
func (d *Daily) level(t time.Time) float64 {
	tod := t.Sub(t.Truncate(24 * time.Hour))
	switch {
	case tod < d.RampStart || tod >= d.RampEnd:
		return 0
	case tod < d.PeakStart:
		return float64(tod-d.RampStart) / float64(d.PeakStart-d.RampStart)
	case tod < d.PeakEnd:
		return 1
	default:
		return 1 - float64(tod-d.PeakEnd)/float64(d.RampEnd-d.PeakEnd)
	}
}

// incident returns the error rate and latency factor an incident imposes at t.
func (s *Service) incident(t time.Time) (errRate, latency float64) {
	latency = 1
	for _, in := range s.Incidents {
		if !t.Before(in.From) && t.Before(in.To) {
			errRate = max(errRate, in.ErrorRate)
			if in.LatencyFactor > 0 {
				latency *= in.LatencyFactor
			}
		}
	}
	return errRate, latency
}

// lognormalCDF is P(latency <= x) for a lognormal with median p50 and sigma cv.
func lognormalCDF(x, p50, cv float64) float64 {
	if x <= 0 {
		return 0
	}
	return 0.5 * math.Erfc(-(math.Log(x)-math.Log(p50))/(cv*math.Sqrt2))
}
