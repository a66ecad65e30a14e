package channels_test

import (
	"testing"

	"github.com/rewind-sre/rewind/notify/channels"
	"github.com/rewind-sre/rewind/notify/email"
	"github.com/rewind-sre/rewind/notify/pagerduty"
	"github.com/rewind-sre/rewind/notify/slack"
	"github.com/rewind-sre/rewind/notify/webhook"
	"github.com/rewind-sre/rewind/policy"
)

func TestFromPolicy(t *testing.T) {
	p, err := policy.Parse("p.yaml", []byte(`apiVersion: rewind/v1
kind: Policy
systems:
  - name: checkout
    prometheus: { url: "http://127.0.0.1:9" }
    canary:   { selector: 'version="canary"' }
    baseline: { selector: 'version="baseline"' }
    triggers:
      - { name: t, expr: 'up{ {{selector}} } > 0', for: 0s }
    notify: [chat, pager, mail, review]
notifiers:
  chat:   { slack: { webhookURLFile: /run/secrets/slack-url } }
  pager:  { pagerduty: { routingKeyEnv: PD_KEY } }
  mail:   { email: { smtp: "smtp.example.com:587", from: rewind@example.com, to: [sre@example.com], username: rewind, passwordEnv: SMTP_PW } }
  review: { webhook: { url: "https://tickets.example.com/hooks/rewind", secretFile: /run/secrets/hmac } }
`))
	if err != nil {
		t.Fatal(err)
	}
	// Secrets are not read here: the files and variables need not exist yet.
	ns, err := channels.FromPolicy(p, channels.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ns["chat"].(*slack.Notifier); !ok {
		t.Errorf("chat: %T", ns["chat"])
	}
	if _, ok := ns["pager"].(*pagerduty.Notifier); !ok {
		t.Errorf("pager: %T", ns["pager"])
	}
	if _, ok := ns["mail"].(*email.Notifier); !ok {
		t.Errorf("mail: %T", ns["mail"])
	}
	if _, ok := ns["review"].(*webhook.Notifier); !ok {
		t.Errorf("review: %T", ns["review"])
	}
}

func TestFromPolicyReportsBadNotifiers(t *testing.T) {
	p := &policy.Policy{Notifiers: map[string]policy.Notifier{
		"bad-mail": {Email: &policy.Email{SMTP: "no-port", From: "a@b", To: []string{"c@d"}}},
		"ok":       {Webhook: &policy.Webhook{URL: "https://x.example.com"}},
		"empty":    {},
	}}
	ns, err := channels.FromPolicy(p, channels.Options{})
	if err == nil || len(ns) != 1 || ns["ok"] == nil {
		t.Errorf("%v, %v", ns, err)
	}
}
