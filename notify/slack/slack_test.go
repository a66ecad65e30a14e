package slack_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/notify/notifytest"
	"github.com/rewind-sre/rewind/notify/slack"
	"github.com/rewind-sre/rewind/notify/slack/slacktest"
	"github.com/rewind-sre/rewind/policy"
)

// urlFile writes a webhook URL where the policy would point: a secret file.
func urlFile(t *testing.T, url string) policy.Secret {
	p := filepath.Join(t.TempDir(), "slack-url")
	if err := os.WriteFile(p, []byte(url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return policy.Secret{File: p}
}

func newNotifier(t *testing.T, url string, log *slog.Logger) *slack.Notifier {
	n, err := slack.New(slack.Config{Name: "oncall", WebhookURL: urlFile(t, url), Interval: time.Millisecond, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var answers = map[notifytest.Outcome]slacktest.Answer{
	notifytest.Accept:          slacktest.OK,
	notifytest.BadRequest:      slacktest.InvalidPayload,
	notifytest.NotFound:        slacktest.NoService,
	notifytest.TooManyRequests: slacktest.RateLimited(notifytest.RetryAfter),
	notifytest.InternalError:   slacktest.ServerError,
	notifytest.Unavailable:     slacktest.Unavailable,
}

func TestSuite(t *testing.T) {
	urls := map[string]string{} // receiver address → its webhook URL
	notifytest.Run(t, notifytest.Harness{
		Receiver: func(t *testing.T, o notifytest.Outcome) notifytest.Receiver {
			r := slacktest.New(t)
			r.Always(answers[o])
			urls[r.Addr] = r.URL
			return notifytest.Receiver{Addr: r.Addr, Accepted: r.Accepted().Value}
		},
		New: func(t *testing.T, addr string, log *slog.Logger) (rewind.Notifier, []string) {
			url, ok := urls[addr]
			if !ok {
				url = "http://" + addr + "/services/T0REWIND/B0REWIND/0123456789abcdef01234567"
			}
			token := url[strings.LastIndexByte(url, '/')+1:]
			return newNotifier(t, url, log), []string{url, token}
		},
		RetryAfter: true,
	})
}

func TestMessageContent(t *testing.T) {
	r := slacktest.New(t)
	n := newNotifier(t, r.URL, slog.New(slog.DiscardHandler))
	if _, err := n.Notify(t.Context(), notifytest.Event(rewind.EventRollbackDecided)); err != nil {
		t.Fatal(err)
	}
	ms := r.Messages()
	if len(ms) != 1 {
		t.Fatalf("%d messages", len(ms))
	}
	raw := string(ms[0].Raw)
	for _, want := range []string{
		`"text":"[CRITICAL] Rollback decided: checkout — error-rate-high, latency-p99-high"`,
		`"type":"header"`, `Rollback decided: checkout`,
		`*System*\ncheckout`, `*Rollback*\nrb-20260101T142000Z-3f2a91c0`,
		"*error-rate-high* (critical)\\ncanary `0.025` vs baseline `0.008`\\nthreshold: `error ratio ≥ 1.5× baseline, α = 0.01`",
		"*latency-p99-high* (warning)\\ncanary `1.92` vs baseline `0.41`",
		`violating since 2026-01-01 14:15:00Z`,
		`• drain: done in 4s — 100% of traffic to checkout-baseline`, `• undo: done in 26s`, `• verify: done in 1m0s`,
		`<https://grafana.example.com/d/rewind?var-system=checkout&from=1767276900000|Dashboard>`,
		"Evidence: `/var/lib/rewind/evidence/rb-20260101T142000Z-3f2a91c0`",
	} {
		if !strings.Contains(raw, want) {
			t.Errorf("message lacks %s\n%s", want, raw)
		}
	}
	if strings.Contains(raw, "throughput-low") {
		t.Errorf("a trigger that did not fire is in the message")
	}
}

// A decision with 80 firing triggers and texts far over the limits is cut
// to what Slack accepts, with ellipses, and still names what was left out.
func TestLimits(t *testing.T) {
	e := notifytest.Event(rewind.EventRollbackFailed)
	e.Reason = strings.Repeat("step undo failed: <timeout> & more; ", 300)
	e.Findings = nil
	for i := range 80 {
		e.Findings = append(e.Findings, rewind.Finding{
			Trigger: fmt.Sprintf("trigger-%02d", i), Canary: rewind.Float(float64(i)), Threshold: "canary > 1",
			Detail: strings.Repeat("d", 5000),
		})
	}
	e.Rollback.Steps[2].Error = strings.Repeat("x<y ", 2000)
	m := slack.Build(e)
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := slacktest.Validate(body); err != nil {
		t.Fatalf("Slack would reject the message: %v", err)
	}
	if len(m.Blocks) != slack.MaxBlocks {
		t.Errorf("%d blocks, want exactly %d (full)", len(m.Blocks), slack.MaxBlocks)
	}
	var cut, more int
	for _, b := range m.Blocks {
		if b.Text == nil {
			continue
		}
		if strings.HasSuffix(b.Text.Text, "…") {
			cut++
			if utf8.RuneCountInString(b.Text.Text) != slack.MaxSectionText && !strings.Contains(b.Text.Text, "&") {
				t.Errorf("a cut text has %d characters", utf8.RuneCountInString(b.Text.Text))
			}
		}
		if strings.Contains(b.Text.Text, "more triggers") {
			more++
		}
	}
	if cut == 0 || more != 1 {
		t.Errorf("%d texts cut, %d 'more triggers' notes; want some and one", cut, more)
	}
	for _, f := range m.Blocks[1].Fields {
		if utf8.RuneCountInString(f.Text) > slack.MaxFieldText {
			t.Errorf("field of %d characters", utf8.RuneCountInString(f.Text))
		}
	}

	r := slacktest.New(t)
	n := newNotifier(t, r.URL, slog.New(slog.DiscardHandler))
	if _, err := n.Notify(t.Context(), e); err != nil {
		t.Fatalf("the receiver refused the cut message: %v", err)
	}
}

// The receiver rejects what Slack rejects, so the tests above mean something.
func TestReceiverEnforcesLimits(t *testing.T) {
	ok := slack.Build(notifytest.Event(rewind.EventRollbackDecided))
	for name, mutate := range map[string]func(*slack.Message){
		"no fallback text": func(m *slack.Message) { m.Text = "" },
		"51 blocks": func(m *slack.Message) {
			for len(m.Blocks) <= slack.MaxBlocks {
				m.Blocks = append(m.Blocks, slack.Block{Type: "divider"})
			}
		},
		"section of 3001": func(m *slack.Message) {
			m.Blocks[2].Text.Text = strings.Repeat("a", slack.MaxSectionText+1)
		},
		"header of 151": func(m *slack.Message) { m.Blocks[0].Text.Text = strings.Repeat("h", 151) },
	} {
		m := ok
		m.Blocks = append([]slack.Block(nil), ok.Blocks...)
		for i := range m.Blocks {
			if m.Blocks[i].Text != nil {
				tx := *m.Blocks[i].Text
				m.Blocks[i].Text = &tx
			}
		}
		mutate(&m)
		body, _ := json.Marshal(m)
		if _, err := slacktest.Validate(body); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// About one message per second per webhook: calls wait for the interval.
func TestRateLimit(t *testing.T) {
	r := slacktest.New(t)
	const interval = 100 * time.Millisecond
	n, err := slack.New(slack.Config{Name: "oncall", WebhookURL: urlFile(t, r.URL), Interval: interval})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 3 {
		if _, err := n.Notify(t.Context(), notifytest.Event(rewind.EventRollbackDecided)); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took < 2*interval {
		t.Errorf("3 messages in %s, want at least %s", took, 2*interval)
	}
	times := r.Times()
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < interval-5*time.Millisecond {
			t.Errorf("messages %d and %d %s apart, want %s", i-1, i, gap, interval)
		}
	}
}

// After a 429, the next message waits for Retry-After, not only for the interval.
func TestRetryAfterDelaysNextMessage(t *testing.T) {
	r := slacktest.New(t)
	r.Script(slacktest.RateLimited(time.Second))
	n, err := slack.New(slack.Config{Name: "oncall", WebhookURL: urlFile(t, r.URL), Interval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	retry, err := n.Notify(t.Context(), notifytest.Event(rewind.EventRollbackDecided))
	var ra *rewind.RetryAfterError
	if !retry || !errors.As(err, &ra) || ra.After != time.Second {
		t.Fatalf("Notify = %v, %v; want retry after 1s", retry, err)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := n.Notify(ctx, notifytest.Event(rewind.EventRollbackDecided)); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Errorf("the next message went after %s, before Retry-After", waited)
	}
}

func TestNewNeedsURL(t *testing.T) {
	if _, err := slack.New(slack.Config{Name: "x"}); err == nil {
		t.Error("New without a webhook URL secret succeeded")
	}
}

// A missing secret file is retried (it may be mounted later) and named.
func TestMissingSecretFile(t *testing.T) {
	n, err := slack.New(slack.Config{Name: "oncall", WebhookURL: policy.Secret{File: filepath.Join(t.TempDir(), "absent")}})
	if err != nil {
		t.Fatal(err)
	}
	retry, err := n.Notify(t.Context(), notifytest.Event(rewind.EventRollbackDecided))
	if !retry || err == nil || !strings.Contains(err.Error(), "absent") {
		t.Errorf("Notify = %v, %v; want a retried error naming the file", retry, err)
	}
}
