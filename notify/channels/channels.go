// Package channels builds the notifiers a policy configures, one per name
// under notifiers:, each with the channel its kind names.
package channels

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/notify/email"
	"github.com/rewind-sre/rewind/notify/pagerduty"
	"github.com/rewind-sre/rewind/notify/slack"
	"github.com/rewind-sre/rewind/notify/webhook"
	"github.com/rewind-sre/rewind/policy"
)

// Options are what a policy does not say.
type Options struct {
	Log    *slog.Logger
	Client *http.Client // for Slack, PagerDuty and webhooks; nil: no redirects, 30s
	// EmailTLS verifies SMTP servers (nil: the system roots). The policy has
	// no TLS setting for email yet: each server gets email.DefaultTLS.
	EmailTLS *tls.Config
}

// FromPolicy returns the notifiers of p by name. Secrets are not read here
// but at each delivery: a missing secret file fails (and is retried) at
// delivery time, it does not stop the controller from starting.
func FromPolicy(p *policy.Policy, o Options) (map[string]rewind.Notifier, error) {
	out := map[string]rewind.Notifier{}
	var errs []error
	names := make([]string, 0, len(p.Notifiers))
	for name := range p.Notifiers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		n, err := build(name, p.Notifiers[name], o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[name] = n
	}
	return out, errors.Join(errs...)
}

func build(name string, c policy.Notifier, o Options) (rewind.Notifier, error) {
	switch {
	case c.Slack != nil:
		return slack.New(slack.Config{Name: name, WebhookURL: *c.Slack, Client: o.Client, Log: o.Log})
	case c.PagerDuty != nil:
		return pagerduty.New(pagerduty.Config{Name: name, RoutingKey: c.PagerDuty.RoutingKey, URL: c.PagerDuty.URL, Client: o.Client, Log: o.Log})
	case c.Email != nil:
		e := c.Email
		return email.New(email.Config{Name: name, Addr: e.SMTP, From: e.From, To: e.To, Username: e.Username, Password: e.Password, TLSConfig: o.EmailTLS, Log: o.Log})
	case c.Webhook != nil:
		client := o.Client
		if c.Webhook.Timeout > 0 {
			client = &http.Client{Timeout: c.Webhook.Timeout, CheckRedirect: noRedirects}
			if o.Client != nil {
				client.Transport = o.Client.Transport
			}
		}
		return webhook.New(webhook.Config{Name: name, URL: c.Webhook.URL, Secret: c.Webhook.Secret, Client: client, Log: o.Log})
	}
	return nil, fmt.Errorf("notifier %s: no channel configured", name)
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
