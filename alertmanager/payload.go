package alertmanager

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/common/model"
)

// Alert statuses.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Version is the webhook payload version this package reads.
const Version = "4"

// Message is Alertmanager's webhook payload, version 4
// (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config).
type Message struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   uint64            `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of a Message.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Name is the alert's alertname label.
func (a Alert) Name() string { return a.Labels[model.AlertNameLabel] }

// ErrMalformed marks a payload that Decode refuses; the message says why.
var ErrMalformed = errors.New("malformed Alertmanager payload")

// Decode reads a webhook payload leniently: unknown fields are ignored and
// optional ones may be missing. An alert without a status takes the
// message's; one without a fingerprint gets Alertmanager's (the hash of its
// label set). It refuses, with an error wrapping ErrMalformed that says
// why, anything that is not one JSON object, a missing version or one
// other than 4, a missing alerts array, and an alert without labels, with an empty label
// name, without startsAt or with an unknown status. A decoded Message
// passes Valid.
func Decode(data []byte) (*Message, error) {
	var w struct {
		Message
		Alerts []json.RawMessage `json:"alerts"` // decoded one by one, to say which is wrong
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	m := w.Message
	if err := checkVersion(m.Version); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if w.Alerts == nil {
		return nil, fmt.Errorf("%w: no alerts array", ErrMalformed)
	}
	m.Alerts = make([]Alert, len(w.Alerts))
	for i, raw := range w.Alerts {
		if err := decodeAlert(raw, m.Status, &m.Alerts[i]); err != nil {
			return nil, fmt.Errorf("%w: alerts[%d]: %v", ErrMalformed, i, err)
		}
	}
	return &m, nil
}

// decodeAlert decodes one alert, its times as RFC 3339 strings (null or
// absent: zero), with the message's status as its default.
func decodeAlert(raw json.RawMessage, status string, a *Alert) error {
	var w struct {
		Alert
		StartsAt *string `json:"startsAt"`
		EndsAt   *string `json:"endsAt"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return err
	}
	*a = w.Alert
	for _, f := range []struct {
		name string
		in   *string
		out  *time.Time
	}{{"startsAt", w.StartsAt, &a.StartsAt}, {"endsAt", w.EndsAt, &a.EndsAt}} {
		if f.in == nil || *f.in == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, *f.in)
		if err != nil {
			return fmt.Errorf("%s: %v", f.name, err)
		}
		*f.out = t
	}
	if a.Status == "" {
		a.Status = status
	}
	if a.Fingerprint == "" {
		a.Fingerprint = Fingerprint(a.Labels)
	}
	return a.valid()
}

// Valid reports why m is not a payload Decode returns, or nil.
func (m *Message) Valid() error {
	if err := checkVersion(m.Version); err != nil {
		return err
	}
	if m.Alerts == nil {
		return errors.New("no alerts array")
	}
	for i, a := range m.Alerts {
		if err := a.valid(); err != nil {
			return fmt.Errorf("alerts[%d]: %v", i, err)
		}
		if a.Fingerprint == "" {
			return fmt.Errorf("alerts[%d]: no fingerprint", i)
		}
	}
	return nil
}

// checkVersion accepts payload version 4 only: a payload without a
// version is not Alertmanager's.
func checkVersion(v string) error {
	switch v {
	case Version:
		return nil
	case "":
		return fmt.Errorf("no version (Alertmanager sends %q)", Version)
	}
	return fmt.Errorf("version %q, want %q", v, Version)
}

func (a *Alert) valid() error {
	if len(a.Labels) == 0 {
		return errors.New("no labels")
	}
	if _, ok := a.Labels[""]; ok {
		return errors.New("a label with an empty name")
	}
	if a.Status != StatusFiring && a.Status != StatusResolved {
		return fmt.Errorf("status %q, want %q or %q", a.Status, StatusFiring, StatusResolved)
	}
	if a.StartsAt.IsZero() {
		return errors.New("no startsAt")
	}
	return nil
}

// Fingerprint is Alertmanager's fingerprint of a label set.
func Fingerprint(labels map[string]string) string {
	ls := make(model.LabelSet, len(labels))
	for k, v := range labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls.Fingerprint().String()
}
