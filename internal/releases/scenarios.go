package releases

import (
	"fmt"
	"strings"
	"time"

	"github.com/rewind-sre/rewind/policy"
)

// Decisions a watch may reach (the strings of backtest.RolloutReport).
const (
	Rollback       = "rollback"
	Healthy        = "healthy"
	SharedIncident = "shared-incident"
	Inconclusive   = "inconclusive"
)

// Scenario is a generated history and what a rollout watch must decide of
// each of its rollouts.
type Scenario struct {
	Name    string
	History History
	Watched []Watched
	// Want is the decision per new revision (pod-template-hash); Phase, for
	// a rollback, the phase it must be decided in.
	Want map[string]Want
}

// Want is the expected judgement of one rollout.
type Want struct {
	Decision string
	Phase    string // compare | history, for a rollback
}

// Watched is one watch system of a scenario's policy.
type Watched struct {
	Service string   // the Deployment (and app label)
	Peers   []string // peers.systems; nil: every other watch system
	// Seasons replaces the history block, e.g. "{ window: 1h, seasons: [], minSeasons: 0 }".
	History string
}

// Policy builds the scenario's policy: one system per watched service, each
// with the built-in watch policy's traffic guard, triggers and rollback.
func (s Scenario) Policy() []byte { return WatchPolicy(s.History, s.Watched) }

// WatchPolicy writes a policy with one watch system per watched service of
// h, named after the service, with the triggers of the built-in watch policy.
func WatchPolicy(h History, watched []Watched) []byte {
	def := string(policy.DefaultWatch())
	body := def[strings.Index(def, "    traffic:"):]
	var b strings.Builder
	b.WriteString("apiVersion: rewind/v1\nkind: Policy\nsystems:\n")
	for _, w := range watched {
		ns := ""
		for _, s := range h.Services {
			if s.Name == w.Service {
				ns = s.Namespace
			}
		}
		fmt.Fprintf(&b, "  - name: %s\n    interval: 30s\n    watch:\n      namespace: %s\n      deployment: %s\n", w.Service, ns, w.Service)
		fmt.Fprintf(&b, "      selector: 'namespace=%q,app=%q'\n", ns, w.Service)
		if w.History != "" {
			fmt.Fprintf(&b, "      history: %s\n", w.History)
		}
		if w.Peers != nil {
			fmt.Fprintf(&b, "      peers: { systems: [%s] }\n", strings.Join(w.Peers, ", "))
		}
		b.WriteString(body)
	}
	return []byte(b.String())
}

// T0 is the scenarios' reference instant: a Monday, 09:00 UTC.
var T0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// Reference is the reference service: 3 pods, 20 requests per second, 0.5 %
// errors, a 50 ms median latency.
func Reference(ns, name, initial string) Service {
	return Service{Namespace: ns, Name: name, Initial: initial, Replicas: 3,
		Profile: Profile{RPS: 20, ErrorRate: 0.005, LatencyP50: 0.05, LatencyCV: 0.5}}
}

// Scenarios are the rollout-watch scenarios of issue 14, each over 2 h 30 m
// from T0 with the same hours a day before (and a week, for the daily ramp).
func Scenarios() []Scenario {
	at := func(d time.Duration) time.Time { return T0.Add(d) }
	hist := func(seed uint64, svcs ...Service) History {
		return History{Start: T0, Duration: 150 * time.Minute, Seasons: []time.Duration{24 * time.Hour}, Seed: seed, Services: svcs}
	}
	one := func(name string) []Watched { return []Watched{{Service: name}} }
	var out []Scenario

	good := Reference("shop", "checkout", "5c9d7f6b8")
	good.Releases = []Release{{Hash: "7d4b9c8f6", At: at(10 * time.Minute), Step: time.Minute}}
	out = append(out, Scenario{Name: "good-release", History: hist(1, good), Watched: one("checkout"),
		Want: map[string]Want{"7d4b9c8f6": {Decision: Healthy}}})

	slow := Reference("shop", "checkout", "5c9d7f6b8")
	slow.Replicas = 4
	slow.Releases = []Release{{Hash: "6f8c7d5b4", At: at(10 * time.Minute), Step: 10 * time.Minute, ErrorRate: 0.10}}
	out = append(out, Scenario{Name: "bad-release-slow-rolling-update", History: hist(2, slow), Watched: one("checkout"),
		Want: map[string]Want{"6f8c7d5b4": {Decision: Rollback, Phase: "compare"}}})

	later := Reference("shop", "checkout", "5c9d7f6b8")
	later.Releases = []Release{{Hash: "8b6d5c7f9", At: at(10 * time.Minute), Step: time.Minute, LatencyFactor: 3, EffectAfter: 30 * time.Minute}}
	out = append(out, Scenario{Name: "bad-release-slower-after-rollout", History: hist(3, later), Watched: one("checkout"),
		Want: map[string]Want{"8b6d5c7f9": {Decision: Rollback, Phase: "history"}}})

	// The daily peak: from 09:00 the rate climbs from 10 to 60 req/s, the
	// error rate from 0.5 % to 2 % and the latency 2.5-fold by 10:00, every
	// day. A good release at 09:20 is judged against the same hours of the
	// day and the week before, not against the quiet hour before it.
	ramp := Reference("shop", "search", "4b7c6d9f5")
	ramp.Profile.RPS = 10
	ramp.Profile.Daily = &Daily{RampStart: 9 * time.Hour, PeakStart: 10 * time.Hour, PeakEnd: 12 * time.Hour, RampEnd: 13 * time.Hour, RPS: 60, ErrorRate: 0.02, LatencyFactor: 2.5}
	ramp.Releases = []Release{{Hash: "9c5f8b7d6", At: at(20 * time.Minute), Step: time.Minute}}
	rampHist := hist(4, ramp)
	rampHist.Seasons = []time.Duration{24 * time.Hour, 7 * 24 * time.Hour}
	out = append(out, Scenario{Name: "good-release-daily-ramp", History: rampHist, Watched: one("search"),
		Want: map[string]Want{"9c5f8b7d6": {Decision: Healthy}}})

	// 0.5 requests per second: a good release is never rolled back, a bad
	// one is, as soon as the counts show it.
	lowGood := Reference("low", "ledger", "3f6b5c8d7")
	lowGood.Profile.RPS = 0.5
	lowGood.Releases = []Release{{Hash: "5d8c7b6f4", At: at(10 * time.Minute), Step: time.Minute}}
	lowBad := Reference("low", "billing", "6c9b8d7f5")
	lowBad.Profile.RPS = 0.5
	lowBad.Releases = []Release{{Hash: "7f5d9c6b8", At: at(10 * time.Minute), Step: time.Minute, ErrorRate: 0.10}}
	out = append(out, Scenario{Name: "release-at-half-a-request-per-second", History: hist(5, lowGood, lowBad),
		Watched: []Watched{{Service: "ledger", Peers: []string{}}, {Service: "billing", Peers: []string{}}},
		Want:    map[string]Want{"5d8c7b6f4": {Decision: Healthy}, "7f5d9c6b8": {Decision: Rollback}}})

	// A dependency fails 20 minutes after a good release of checkout: cart,
	// not deployed, degrades the same way at the same time.
	inc := Incident{From: at(40 * time.Minute), To: at(60 * time.Minute), ErrorRate: 0.08}
	checkout := Reference("shop", "checkout", "5c9d7f6b8")
	checkout.Releases = []Release{{Hash: "9f7c6b5d8", At: at(20 * time.Minute), Step: time.Minute}}
	checkout.Incidents = []Incident{inc}
	cart := Reference("shop", "cart", "8d6f9b7c5")
	cart.Incidents = []Incident{inc}
	out = append(out, Scenario{Name: "shared-incident-after-good-release", History: hist(6, checkout, cart),
		Watched: []Watched{{Service: "checkout"}, {Service: "cart"}},
		Want:    map[string]Want{"9f7c6b5d8": {Decision: SharedIncident}}})

	// kube-state-metrics missed a bad release's ReplicaSet, and exports
	// nothing at all of another service: never judged, never rolled back.
	blind := Reference("shop", "checkout", "5c9d7f6b8")
	blind.Releases = []Release{{Hash: "4d7f6c9b8", At: at(10 * time.Minute), Step: time.Minute, ErrorRate: 0.10, NoKSM: true}}
	dark := Reference("shop", "payments", "7b9d8f6c4")
	dark.NoKSM = true
	dark.Releases = []Release{{Hash: "6b8f7c5d9", At: at(30 * time.Minute), Step: time.Minute, ErrorRate: 0.10}}
	out = append(out, Scenario{Name: "missing-kube-state-metrics", History: hist(7, blind, dark),
		Watched: []Watched{{Service: "checkout", Peers: []string{}}, {Service: "payments", Peers: []string{}}},
		Want:    map[string]Want{"4d7f6c9b8": {Decision: Inconclusive}, "6b8f7c5d9": {Decision: Inconclusive}}})
	return out
}

// Release returns the scenario's release of revision hash and its service.
func (s Scenario) Release(hash string) (Service, Release, bool) {
	for _, svc := range s.History.Services {
		for _, r := range svc.Releases {
			if r.Hash == hash {
				return svc, r, true
			}
		}
	}
	return Service{}, Release{}, false
}
