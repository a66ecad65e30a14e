package policy

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultWatchPolicy(t *testing.T) {
	p, err := Parse("default-watch.yaml", DefaultWatch())
	if err != nil {
		t.Fatal(err)
	}
	s := p.Systems[0]
	w := s.Watch
	if !s.IsWatch() || w.Namespace != "dwcp" || w.Deployment != "dwcp-manager" || w.Selector != `namespace="dwcp",app="dwcp-manager"` ||
		w.RevisionLabel != "pod_template_hash" || w.Duration != time.Hour || w.Discovery != DiscoveryKubeStateMetrics {
		t.Fatalf("watch: %+v", w)
	}
	if w.History.Window != time.Hour || len(w.History.Seasons) != 2 || w.History.Seasons[1] != 7*24*time.Hour || w.History.MinSeasons != 1 || !w.Peers.AllWatched {
		t.Fatalf("history/peers: %+v %+v", w.History, w.Peers)
	}
	// The seed's holds and thresholds, as in the canary default policy.
	def, err := Parse("default.yaml", Default())
	if err != nil {
		t.Fatal(err)
	}
	for _, wt := range s.Triggers {
		var ct *Trigger
		for _, x := range def.Systems[0].Triggers {
			if x.Name == wt.Name {
				ct = x
			}
		}
		if ct == nil || ct.For != wt.For || ct.Form != FormJudge || *ct.Judge != *wt.Judge && (ct.Judge.MinEffect != wt.Judge.MinEffect || ct.Judge.Alpha != wt.Judge.Alpha || ct.Judge.Test != wt.Judge.Test) {
			t.Errorf("trigger %s differs from the default policy's", wt.Name)
		}
	}
	k := s.Rollback.Kubernetes
	if k == nil || k.Namespace != "dwcp" || k.Deployment != "dwcp-manager" || k.ScaleToZero || s.Rollback.Istio != nil {
		t.Fatalf("rollback: %+v", s.Rollback)
	}
	// The verification reads the service: after the undo, it is the restored revision.
	if !strings.Contains(s.Rollback.Verify.Query, `{status!~"5..", namespace="dwcp",app="dwcp-manager" }`) {
		t.Fatalf("verify: %s", s.Rollback.Verify.Query)
	}
	// A template never matches a real revision.
	if !strings.Contains(s.Triggers[0].Judge.Canary.Bad, `pod_template_hash="<new revision>"`) {
		t.Fatalf("template query: %s", s.Triggers[0].Judge.Canary.Bad)
	}
}

func TestInstantiate(t *testing.T) {
	p, err := Parse("default-watch.yaml", DefaultWatch())
	if err != nil {
		t.Fatal(err)
	}
	s := p.Systems[0]
	w := s.Watch
	canary, baseline := w.RevisionSelector("dwcp-manager", "7d9f8c6b5"), w.RevisionSelector("dwcp-manager", "5f6d7c8b9")
	r, err := s.Instantiate("dwcp-manager", "dwcp-manager", canary, baseline)
	if err != nil {
		t.Fatal(err)
	}
	want := `sum(increase(http_requests_total{status=~"5..", namespace="dwcp",app="dwcp-manager",pod_template_hash="7d9f8c6b5" }[5m]))`
	if got := r.Triggers[0].Judge.Canary.Bad; got != want {
		t.Fatalf("canary bad:\n got %s\nwant %s", got, want)
	}
	if got := r.Triggers[0].Judge.Baseline.Total; !strings.Contains(got, `pod_template_hash="5f6d7c8b9"`) {
		t.Fatalf("baseline total: %s", got)
	}
	if !strings.Contains(r.Rollback.Verify.Query, `{status!~"5..", namespace="dwcp",app="dwcp-manager" }`) || !strings.Contains(r.Traffic.Query, `pod_template_hash="7d9f8c6b5"`) {
		t.Fatalf("verify %s / traffic %s", r.Rollback.Verify.Query, r.Traffic.Query)
	}
	if r.Watch != w || r.Name != "dwcp-manager" || len(r.Triggers) != len(s.Triggers) {
		t.Fatalf("instance: %+v", r)
	}
	if got := w.ServingQuery(baseline); got != `sum(rate(http_requests_total{ `+baseline+` }[5m]))` {
		t.Fatalf("serving: %s", got)
	}
}

func TestWatchMatchLabels(t *testing.T) {
	src := `apiVersion: rewind/v1
kind: Policy
systems:
  - name: web
    watch:
      namespace: shop
      deployments: { matchLabels: { tier: web } }
      selector: 'namespace="shop",app="{{deployment}}"'
      duration: 30m
      history: { window: 30m, seasons: [1d], minSeasons: 0 }
      peers: { systems: [], selectors: ['namespace="shop",app="db"'] }
    triggers:
      - name: errors
        judge:
          test: proportion
          bad: 'sum(increase(http_requests_total{status=~"5..", {{selector}} }[5m]))'
          total: 'sum(increase(http_requests_total{ {{selector}} }[5m]))'
          minEffect: 1.5
`
	p, err := Parse("web.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	s := p.Systems[0]
	w := s.Watch
	if w.Deployment != "" || w.MatchLabels["tier"] != "web" || w.Peers.AllWatched || len(w.Peers.Selectors) != 1 || w.History.MinSeasons != 0 {
		t.Fatalf("watch: %+v", w)
	}
	if got := w.SystemName("web", "cart"); got != "web.cart" {
		t.Fatal(got)
	}
	r, err := s.Instantiate("web.cart", "cart", w.RevisionSelector("cart", "abc"), w.ServiceSelector("cart"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Rollback.Kubernetes.Deployment != "cart" || !strings.Contains(r.Triggers[0].Judge.Baseline.Bad, `app="cart" }`) {
		t.Fatalf("instance: %+v %s", r.Rollback.Kubernetes, r.Triggers[0].Judge.Baseline.Bad)
	}
}
