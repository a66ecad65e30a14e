package notify_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/notify"
	"github.com/rewind-sre/rewind/notify/channels"
	"github.com/rewind-sre/rewind/notify/internal/mailpit"
	"github.com/rewind-sre/rewind/notify/notifytest"
	"github.com/rewind-sre/rewind/notify/pagerduty/pagerdutytest"
	"github.com/rewind-sre/rewind/notify/slack/slacktest"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/policy"
)

// instant is an executor that does its step at once.
type instant struct {
	result rewind.StepResult
}

func (x instant) Plan(context.Context, *rewind.Rollback) ([]rewind.Change, error) { return nil, nil }
func (x instant) Do(context.Context, *rewind.Rollback) (rewind.StepResult, error) {
	return x.result, nil
}

func executors(escalateBaseline bool) map[rewind.StepName]rewind.Executor {
	out := map[rewind.StepName]rewind.Executor{}
	for _, n := range rewind.PlanSteps {
		out[n] = instant{rewind.StepResult{Detail: string(n) + " done"}}
	}
	if escalateBaseline {
		out[rewind.StepCheckBaseline] = instant{rewind.StepResult{Escalate: true, Detail: "baseline error rate 4.2% (unhealthy)"}}
	}
	return out
}

const e2ePolicy = `apiVersion: rewind/v1
kind: Policy
systems:
  - name: checkout
    prometheus: { url: "http://127.0.0.1:9" }
    canary:   { selector: 'version="canary"' }
    baseline: { selector: 'version="baseline"' }
    triggers:
      - name: error-rate-high
        query: 'sum(rate(http_requests_total{status=~"5..", {{selector}} }[5m])) / sum(rate(http_requests_total{ {{selector}} }[5m]))'
        condition: canary > baseline * 1.5
        for: 1m
    notify: [chat, pager, mail, review]
  - name: search
    prometheus: { url: "http://127.0.0.1:9" }
    canary:   { selector: 'version="canary"' }
    baseline: { selector: 'version="baseline"' }
    triggers:
      - name: error-rate-high
        query: 'sum(rate(http_requests_total{status=~"5..", {{selector}} }[5m]))'
        condition: canary > 1
        for: 1m
    notify: [chat]
notifiers:
  chat:   { slack: { webhookURLFile: %q } }
  pager:  { pagerduty: { routingKeyEnv: REWIND_E2E_PD_KEY, url: %q } }
  mail:   { email: { smtp: %q, from: rewind@example.com, to: [sre@example.com], username: rewind, passwordFile: %q } }
  review: { webhook: { url: %q, secretFile: %q } }
`

// After a rollback, Slack, PagerDuty, email (a real SMTP server) and the
// webhook each got the decision and the completion, in order, with retries
// where the receivers failed first; the policy routes per system.
func TestRollbackNotifiesEveryChannel(t *testing.T) {
	dir := t.TempDir()
	chat := slacktest.New(t)
	chat.Script(slacktest.Unavailable)
	pager := pagerdutytest.New(t)
	pager.Script(pagerdutytest.Answer{Status: 500}, pagerdutytest.Answer{Status: 429, RetryAfter: 20 * time.Second})
	mail := mailpit.Start(t, mailpit.Options{TLS: true, Auth: true})
	review := &hookReceiver{now: time.Now}
	reviewAddr := serve(t, review)

	file := func(name, v string) string {
		p := filepath.Join(dir, name)
		writeFile(t, p, v)
		return p
	}
	t.Setenv("REWIND_E2E_PD_KEY", pager.RoutingKey)
	yaml := fmt.Sprintf(e2ePolicy, file("slack-url", chat.URL), pager.URL, mail.SMTP, file("smtp-password", mail.Password),
		"http://"+reviewAddr+"/hooks/review", file("hmac", "hmac-e2e-key"))
	p, err := policy.Parse("e2e.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	logs, log := notifytest.NewLogs()
	notifiers, err := channels.FromPolicy(p, channels.Options{Log: log, EmailTLS: mail.TLS})
	if err != nil {
		t.Fatal(err)
	}

	storeDir := t.TempDir()
	st := openStore(t, filepath.Join(storeDir, "rewind.db"))
	h := newOutbox(t, st, notifiers, time.Now(), func(o *notify.Outbox) {
		o.Router, o.Log = notify.PolicyRouter(p), log
	})
	r := &plan.Runner{Store: st, Executors: executors(true), Progress: steps(h.outbox, p)}
	rb, err := r.Start(t.Context(), "checkout", "error-rate-high", notify.AutomaticRequester, decision())
	if err != nil || rb.State != rewind.RollbackSucceeded {
		t.Fatalf("rollback: %v %+v", err, rb)
	}
	h.publish(t, rewind.Event{Kind: rewind.EventAnalyzerBlind, Severity: notify.SeverityOf(rewind.EventAnalyzerBlind, nil),
		System: "search", Reason: "3 cycles of failed queries", At: time.Now()})
	h.run(t)
	h.drive(t, func() bool {
		ms, _ := mail.Messages(t.Context())
		return chat.Accepted().Value() == 4 && pager.Accepted().Value() == 3 && len(ms) == 3 && review.accepted.Value() == 3
	})

	wantKinds := []rewind.EventKind{rewind.EventRollbackDecided, rewind.EventBaselineUnhealthy, rewind.EventRollbackCompleted}
	var wantKeys []string
	for _, k := range wantKinds {
		wantKeys = append(wantKeys, string(k)+"/"+rb.ID)
	}
	if got := review.Keys(); strings.Join(got, " ") != strings.Join(wantKeys, " ") {
		t.Errorf("webhook got %v, want %v", got, wantKeys)
	}
	var chatKeys []string
	for _, m := range chat.Messages() {
		chatKeys = append(chatKeys, contextKey(t, m))
	}
	if len(chatKeys) != 4 || strings.Join(chatKeys[:3], " ") != strings.Join(wantKeys, " ") || !strings.HasPrefix(chatKeys[3], "analyzer-blind/search/") {
		t.Errorf("slack got %v", chatKeys)
	}
	evs := pager.Events()
	if evs[0].EventAction != "trigger" || evs[0].Payload.Severity != "critical" || evs[1].EventAction != "trigger" ||
		evs[2].EventAction != "resolve" || evs[0].DedupKey != rb.ID || evs[2].DedupKey != rb.ID {
		t.Errorf("pagerduty got %+v", evs)
	}
	ms, _ := mail.Messages(t.Context())
	var subjects []string
	for _, m := range ms {
		subjects = append(subjects, m.Subject)
	}
	if !strings.Contains(strings.Join(subjects, "\n"), "[CRITICAL] Baseline unhealthy during rollback: checkout — baseline error rate 4.2% (unhealthy)") {
		t.Errorf("mail subjects: %q", subjects)
	}
	if h.counts.Get("chat", notify.ResultRetried) != 1 || h.counts.Get("pager", notify.ResultRetried) != 2 {
		t.Errorf("retries: %+v", h.counts.Snapshot())
	}
	secrets := []string{chat.URL, chat.Token, pager.RoutingKey, mail.Password, "hmac-e2e-key"}
	notifytest.NoSecret(t, "the log", logs.String(), secrets)
	h.stop()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	notifytest.NoSecretInFiles(t, storeDir, secrets)
}

func decision() *rewind.Decision {
	d := notifytest.Rollback().Decision
	d.System = "checkout"
	return d
}

// A receiver that never answers changes nothing about the rollback: it
// runs to its end while the notice is still being attempted.
func TestHangingReceiverDoesNotDelayRollback(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 4)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c // held open, never answered
		}
	})
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		close(accepted)
		for c := range accepted {
			c.Close()
		}
	})
	sf := filepath.Join(t.TempDir(), "hmac")
	writeFile(t, sf, "k")
	p, err := policy.Parse("p.yaml", []byte(`apiVersion: rewind/v1
kind: Policy
systems:
  - name: checkout
    prometheus: { url: "http://127.0.0.1:9" }
    canary:   { selector: 'version="canary"' }
    baseline: { selector: 'version="baseline"' }
    triggers:
      - { name: t, expr: 'up{ {{selector}} } > 0', for: 0s }
    notify: [review]
notifiers:
  review: { webhook: { url: "http://`+l.Addr().String()+`/", secretFile: "`+sf+`" } }
`))
	if err != nil {
		t.Fatal(err)
	}
	notifiers, err := channels.FromPolicy(p, channels.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t, filepath.Join(t.TempDir(), "rewind.db"))
	o := &notify.Outbox{Store: st, Notifiers: notifiers, Router: notify.PolicyRouter(p), AttemptTimeout: time.Hour}
	ctx, cancel := context.WithCancel(t.Context())
	var run sync.WaitGroup
	run.Go(func() { _ = o.Run(ctx) })
	defer func() { cancel(); run.Wait() }()

	r := &plan.Runner{Store: st, Executors: executors(false), Progress: steps(o, p)}
	rb, err := r.Start(t.Context(), "checkout", "t", notify.AutomaticRequester, decision())
	if err != nil || rb.State != rewind.RollbackSucceeded {
		t.Fatalf("rollback: %v %+v", err, rb)
	}
	wctx, wcancel := context.WithTimeout(t.Context(), driveTimeout)
	defer wcancel()
	select { // the dispatcher is stuck on the receiver...
	case <-accepted:
	case <-wctx.Done():
		t.Fatal("no delivery attempt reached the receiver")
	}
	ns, err := st.Notices(t.Context(), notify.Filter{})
	if err != nil || len(ns) != 2 {
		t.Fatalf("notices %+v, %v; want the decision and the completion", ns, err)
	}
	for _, n := range ns { // ...and the rollback is over, its notices still pending.
		if n.State != notify.Pending {
			t.Errorf("notice %s is %s", n.Key, n.State)
		}
	}
}

// steps is a runner's Progress that hands each step change to the
// outbox's subscription (notify.Notices), as the daemon does.
func steps(o *notify.Outbox, p *policy.Policy) func(*rewind.Rollback, rewind.StepRecord) {
	n := &notify.Notices{Outbox: o, Policy: func() *policy.Policy { return p }}
	return func(rb *rewind.Rollback, step rewind.StepRecord) {
		_ = n.Publish(context.Background(), rewind.Event{Kind: rewind.EventStep, System: rb.System, Rollback: rb, Step: &step})
	}
}
