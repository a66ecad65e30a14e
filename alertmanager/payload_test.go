package alertmanager

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// TestDecodeAlertmanagerPayload: a payload as Alertmanager 0.25 sends it
// (captured from the real one) decodes with every field.
func TestDecodeAlertmanagerPayload(t *testing.T) {
	data, err := os.ReadFile("testdata/alertmanager-0.25.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != "4" || m.Receiver != "rewind" || m.Status != StatusFiring || m.GroupKey == "" || m.ExternalURL == "" || len(m.Alerts) != 1 {
		t.Fatalf("message: %+v", m)
	}
	a := m.Alerts[0]
	if a.Name() != "ProBFTByzantineAttack" || a.Labels[LabelSystem] != "dwcp-manager" || a.Annotations["summary"] == "" ||
		a.StartsAt.IsZero() || !a.EndsAt.IsZero() || !strings.Contains(a.GeneratorURL, "/graph?") || a.Status != StatusFiring {
		t.Fatalf("alert: %+v", a)
	}
	if got := Fingerprint(a.Labels); got != a.Fingerprint {
		t.Errorf("Fingerprint(labels) = %s, Alertmanager says %s", got, a.Fingerprint)
	}
}

func TestDecodeLenient(t *testing.T) {
	m, err := Decode([]byte(`{"version":"4","status":"resolved","extra":{"x":[1,2]},"alerts":[
		{"labels":{"alertname":"A"},"startsAt":"2026-01-02T03:04:05.123456789+01:00","unknown":true},
		{"status":"firing","labels":{"alertname":"B","x":null},"startsAt":"2026-01-02T03:04:05Z","annotations":null}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if a := m.Alerts[0]; a.Status != StatusResolved || a.Fingerprint != Fingerprint(map[string]string{"alertname": "A"}) ||
		!a.StartsAt.Equal(time.Date(2026, 1, 2, 2, 4, 5, 123456789, time.UTC)) {
		t.Fatalf("first alert: %+v", a)
	}
	if a := m.Alerts[1]; a.Status != StatusFiring || a.Labels["x"] != "" {
		t.Fatalf("second alert: %+v", a)
	}
	if err := m.Valid(); err != nil {
		t.Fatal(err)
	}
	if m, err := Decode([]byte(`{"version":"4","alerts":[]}`)); err != nil || len(m.Alerts) != 0 {
		t.Fatalf("an empty alerts array: %v %v", m, err)
	}
}

func TestDecodeRefusesMalformed(t *testing.T) {
	const ok = `"labels":{"alertname":"A"},"startsAt":"2026-01-02T03:04:05Z","status":"firing"`
	for _, c := range []struct{ body, why string }{
		{``, "unexpected end of JSON input"},
		{`not json`, "invalid character"},
		{`[]`, "cannot unmarshal array"},
		{`null`, "no version"},
		{`{"version":"4"}`, "no alerts array"},
		{`{"version":"4","alerts":null}`, "no alerts array"},
		{`{"version":"4","alerts":{}}`, "cannot unmarshal object"},
		{`{"version":"3","alerts":[]}`, `version "3"`},
		{`{"alerts":[]}`, `no version`},
		{`{"version":4,"alerts":[]}`, `cannot unmarshal number`},
		{`{"version":"4","alerts":[{` + ok + `}]} trailing`, "invalid character"},
		{`{"version":"4","alerts":[{"startsAt":"2026-01-02T03:04:05Z","status":"firing"}]}`, "alerts[0]: no labels"},
		{`{"version":"4","alerts":[{` + ok + `},{"labels":{},"startsAt":"2026-01-02T03:04:05Z","status":"firing"}]}`, "alerts[1]: no labels"},
		{`{"version":"4","alerts":[{"labels":{"":"x"},"startsAt":"2026-01-02T03:04:05Z","status":"firing"}]}`, "empty name"},
		{`{"version":"4","alerts":[{"labels":{"a":"b"},"status":"firing"}]}`, "no startsAt"},
		{`{"version":"4","alerts":[{"labels":{"a":"b"},"status":"firing","startsAt":"yesterday"}]}`, "cannot parse"},
		{`{"version":"4","alerts":[{"labels":{"a":"b"},"status":"firing","startsAt":"2026-01-02T03:04:05Z","endsAt":12}]}`, "endsAt"},
		{`{"version":"4","alerts":[{"labels":{"a":"b"},"startsAt":"2026-01-02T03:04:05Z"}]}`, `status ""`},
		{`{"version":"4","alerts":[{"labels":{"a":"b"},"startsAt":"2026-01-02T03:04:05Z","status":"pending"}]}`, `status "pending"`},
		{`{"version":"4","alerts":[{"labels":{"a":1},"startsAt":"2026-01-02T03:04:05Z","status":"firing"}]}`, "cannot unmarshal number"},
	} {
		m, err := Decode([]byte(c.body))
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.why) {
			t.Errorf("Decode(%s) = %+v, %v; want an error saying %q", c.body, m, err, c.why)
		}
	}
}

// FuzzDecode: Decode never panics, and returns either an error or a
// payload that passes Valid.
func FuzzDecode(f *testing.F) {
	if data, err := os.ReadFile("testdata/alertmanager-0.25.json"); err == nil {
		f.Add(data)
	}
	for _, s := range []string{
		`{"version":"4","alerts":[]}`, `null`, `{"version":"4","alerts":[{"labels":{"a":"b"},"startsAt":"2026-01-02T03:04:05Z"}],"status":"firing"}`,
		`{"version":"4","alerts":[{"labels":{"alertname":"x","rewind_system":"s"},"status":"resolved","startsAt":"2026-01-02T03:04:05Z","fingerprint":""}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			if m != nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode returned %+v with error %v", m, err)
			}
			return
		}
		if err := m.Valid(); err != nil {
			t.Fatalf("Decode returned an invalid payload: %v\n%+v", err, m)
		}
	})
}
