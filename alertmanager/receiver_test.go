package alertmanager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/controller"
)

const token = "test-token-0123456789"

// fakeController knows system "dwcp-manager" with a rollback trigger and a
// notify trigger, and starts a rollback per call unless told to fail.
type fakeController struct {
	mu    sync.Mutex
	err   error // RollbackOnAlert's next answers
	calls []controller.Alert
}

func (f *fakeController) TriggerAction(system, trigger string) (rewind.Action, error) {
	if system != "dwcp-manager" {
		return "", fmt.Errorf("%w: %q", controller.ErrUnknownSystem, system)
	}
	switch trigger {
	case "byzantine-attack-detected":
		return rewind.ActionRollback, nil
	case "throughput-low":
		return rewind.ActionNotify, nil
	}
	return "", fmt.Errorf("%w: %q", controller.ErrUnknownTrigger, trigger)
}

func (f *fakeController) RollbackOnAlert(_ context.Context, a controller.Alert) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, a)
	if f.err != nil {
		return "", f.err
	}
	return fmt.Sprintf("rb-%d", len(f.calls)), nil
}

func (f *fakeController) set(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

func (f *fakeController) started() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// alert is a firing alert at t0 with the labels given as pairs.
func alert(labels ...string) Alert {
	a := Alert{Status: StatusFiring, Labels: map[string]string{}, StartsAt: t0,
		Annotations: map[string]string{"summary": "a byzantine event"}, GeneratorURL: "http://prometheus.example/graph?g0.expr=x"}
	for i := 0; i+1 < len(labels); i += 2 {
		a.Labels[labels[i]] = labels[i+1]
	}
	return a
}

func payload(alerts ...Alert) string {
	if alerts == nil {
		alerts = []Alert{}
	}
	b, err := json.Marshal(Message{Version: "4", Status: StatusFiring, Receiver: "rewind", Alerts: alerts})
	if err != nil {
		panic(err)
	}
	return string(b)
}

func newReceiver(t *testing.T, ctl Controller) (*Receiver, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	return New(Options{Controller: ctl, Token: []byte(token), Registerer: reg}), reg
}

func post(t *testing.T, h http.Handler, auth, body string) (int, Response, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/api/v1/alertmanager", strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var resp Response
	_ = json.Unmarshal(rec.Body.Bytes(), &resp)
	return rec.Code, resp, rec.Body.String()
}

func received(reg *prometheus.Registry, status string, result Result) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "rewind_alerts_received_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["status"] == status && labels["result"] == string(result) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestAuthentication(t *testing.T) {
	ctl := &fakeController{}
	rc, _ := newReceiver(t, ctl)
	body := payload(alert("alertname", "X", LabelSystem, "dwcp-manager", LabelAction, "rollback"))
	for _, auth := range []string{"", "Bearer", "Bearer wrong", "Basic " + token, token, "Bearer " + token + "x"} {
		if code, _, out := post(t, rc, auth, body); code != http.StatusUnauthorized {
			t.Errorf("Authorization %q: %d %s", auth, code, out)
		}
	}
	noToken := New(Options{Controller: ctl})
	if code, _, _ := post(t, noToken, "Bearer ", body); code != http.StatusUnauthorized {
		t.Errorf("a receiver without a token must refuse everything: %d", code)
	}
	if ctl.started() != 0 {
		t.Fatalf("refused requests started %d rollbacks", ctl.started())
	}
	for _, auth := range []string{"Bearer " + token, "bearer " + token} {
		if code, _, out := post(t, rc, auth, payload()); code != http.StatusOK {
			t.Errorf("Authorization %q: %d %s", auth, code, out)
		}
	}
}

func TestRefusedRequests(t *testing.T) {
	ctl := &fakeController{}
	rc, _ := newReceiver(t, ctl)
	huge := `{"alerts":[],"pad":"` + strings.Repeat("x", MaxBodySize) + `"}`
	for _, c := range []struct {
		body string
		want int
		why  string
	}{
		{huge, http.StatusRequestEntityTooLarge, "1 MiB"},
		{`{"alerts":`, http.StatusBadRequest, "unexpected end of JSON input"},
		{`{"version":"4","status":"firing"}`, http.StatusBadRequest, "no alerts array"},
		{`{"status":"firing","alerts":[]}`, http.StatusBadRequest, "no version"},
		{`{"version":"4","alerts":[{"status":"firing","startsAt":"2026-01-02T03:04:05Z"}]}`, http.StatusBadRequest, "alerts[0]: no labels"},
		{`{"version":"4","alerts":[{"status":"firing","labels":{"a":"b"},"startsAt":"noon"}]}`, http.StatusBadRequest, "alerts[0]: startsAt"},
	} {
		code, _, out := post(t, rc, "Bearer "+token, c.body)
		if code != c.want || !strings.Contains(out, c.why) {
			t.Errorf("%.60s: %d %s, want %d saying %q", c.body, code, out, c.want, c.why)
		}
	}
	// Without a Content-Length, the limit holds while reading.
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(huge))
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	rc.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked body over 1 MiB: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	rc.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", rec.Code)
	}
	if ctl.started() != 0 {
		t.Fatalf("refused requests started %d rollbacks", ctl.started())
	}
}

// TestMapping: which firing alerts roll back, and why the others do not.
func TestMapping(t *testing.T) {
	for _, c := range []struct {
		name    string
		alert   Alert
		result  Result
		trigger string
		why     string
	}{
		{"rewind_action", alert("alertname", "ProBFTByzantineAttack", LabelSystem, "dwcp-manager", LabelAction, "rollback"), ResultRollback, "ProBFTByzantineAttack", ""},
		{"rewind_trigger", alert("alertname", "ProBFTByzantineAttack", LabelSystem, "dwcp-manager", LabelTrigger, "byzantine-attack-detected"), ResultRollback, "byzantine-attack-detected", ""},
		{"alertname is a trigger", alert("alertname", "byzantine-attack-detected", LabelSystem, "dwcp-manager"), ResultRollback, "byzantine-attack-detected", ""},
		{"explicit action wins", alert("alertname", "throughput-low", LabelSystem, "dwcp-manager", LabelAction, "rollback"), ResultRollback, "throughput-low", ""},
		{"notify trigger", alert("alertname", "throughput-low", LabelSystem, "dwcp-manager"), ResultIgnored, "throughput-low", `action "notify"`},
		{"unknown trigger", alert("alertname", "DiskFull", LabelSystem, "dwcp-manager"), ResultIgnored, "DiskFull", "no such trigger"},
		{"notify action", alert("alertname", "byzantine-attack-detected", LabelSystem, "dwcp-manager", LabelAction, "notify"), ResultIgnored, "byzantine-attack-detected", `rewind_action="notify"`},
		{"unknown system", alert("alertname", "X", LabelSystem, "payments", LabelAction, "rollback"), ResultIgnored, "X", "no such system"},
		{"no system", alert("alertname", "byzantine-attack-detected", LabelAction, "rollback"), ResultIgnored, "byzantine-attack-detected", "no rewind_system label"},
		{"no name", alert("job", "x", LabelSystem, "dwcp-manager", LabelAction, "rollback"), ResultIgnored, "", "no trigger to name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctl := &fakeController{}
			rc, reg := newReceiver(t, ctl)
			code, resp, out := post(t, rc, "Bearer "+token, payload(c.alert))
			if code != http.StatusOK || len(resp.Alerts) != 1 {
				t.Fatalf("%d %s", code, out)
			}
			o := resp.Alerts[0]
			if o.Result != c.result || o.Trigger != c.trigger || !strings.Contains(o.Reason, c.why) {
				t.Fatalf("outcome %+v, want %s of %q saying %q", o, c.result, c.trigger, c.why)
			}
			if got := received(reg, StatusFiring, c.result); got != 1 {
				t.Errorf("rewind_alerts_received_total{status=firing,result=%s} = %v", c.result, got)
			}
			if c.result != ResultRollback {
				if ctl.started() != 0 {
					t.Fatalf("an ignored alert started a rollback")
				}
				return
			}
			a := ctl.calls[0]
			if o.Rollback != "rb-1" || a.System != "dwcp-manager" || a.Trigger != c.trigger || a.Name != c.alert.Name() ||
				!a.StartsAt.Equal(t0) || a.Fingerprint != Fingerprint(c.alert.Labels) || a.GeneratorURL == "" ||
				a.Annotations["summary"] == "" || !strings.Contains(a.Via, "Alertmanager receiver rewind") {
				t.Fatalf("outcome %+v, controller got %+v", o, a)
			}
		})
	}
}

// TestResolvedAlertsDoNothing: a resolved alert is answered 200, counted,
// and undoes nothing.
func TestResolvedAlertsDoNothing(t *testing.T) {
	ctl := &fakeController{}
	rc, reg := newReceiver(t, ctl)
	a := alert("alertname", "byzantine-attack-detected", LabelSystem, "dwcp-manager")
	a.Status, a.EndsAt = StatusResolved, t0.Add(time.Minute)
	code, resp, out := post(t, rc, "Bearer "+token, payload(a))
	if code != http.StatusOK || resp.Alerts[0].Result != ResultNoted || ctl.started() != 0 {
		t.Fatalf("%d %s", code, out)
	}
	if received(reg, StatusResolved, ResultNoted) != 1 {
		t.Error("resolved alert not counted")
	}
}

// TestDuplicates: the same alert (fingerprint, startsAt) delivered again —
// a retry, a repeat, or twice in one payload — starts one rollback; the
// same labels with a new start are a new alert.
func TestDuplicates(t *testing.T) {
	ctl := &fakeController{}
	rc, reg := newReceiver(t, ctl)
	a := alert("alertname", "byzantine-attack-detected", LabelSystem, "dwcp-manager", "instance", "canary-1")
	code, resp, out := post(t, rc, "Bearer "+token, payload(a, a))
	if code != http.StatusOK || resp.Alerts[0].Result != ResultRollback || resp.Alerts[1].Result != ResultDuplicate {
		t.Fatalf("%d %s", code, out)
	}
	code, resp, out = post(t, rc, "Bearer "+token, payload(a))
	if code != http.StatusOK || resp.Alerts[0].Result != ResultDuplicate || resp.Alerts[0].Rollback != "rb-1" {
		t.Fatalf("repeat: %d %s", code, out)
	}
	if ctl.started() != 1 || received(reg, StatusFiring, ResultDuplicate) != 2 {
		t.Fatalf("%d rollbacks started", ctl.started())
	}
	a.StartsAt = t0.Add(time.Hour)
	if _, resp, _ := post(t, rc, "Bearer "+token, payload(a)); resp.Alerts[0].Result != ResultRollback {
		t.Fatalf("a new start is a new alert: %+v", resp.Alerts[0])
	}
}

// TestConcurrentDeliveries: the same alert delivered by several requests
// at once starts one rollback.
func TestConcurrentDeliveries(t *testing.T) {
	ctl := &fakeController{}
	rc, _ := newReceiver(t, ctl)
	body := payload(alert("alertname", "byzantine-attack-detected", LabelSystem, "dwcp-manager"))
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if code, _, out := post(t, rc, "Bearer "+token, body); code != http.StatusOK {
				t.Errorf("%d %s", code, out)
			}
		})
	}
	wg.Wait()
	if ctl.started() != 1 {
		t.Fatalf("%d rollbacks started", ctl.started())
	}
}

// TestControllerAnswers: how the controller's refusals are answered; those
// that started nothing leave the alert to a later delivery.
func TestControllerAnswers(t *testing.T) {
	for _, c := range []struct {
		err      error
		code     int
		result   Result
		remember bool // a later delivery is a duplicate
	}{
		{fmt.Errorf("%w: rb-9", controller.ErrBusy), http.StatusOK, ResultBusy, true},
		{fmt.Errorf("%w: rollback rb-7", controller.ErrAlreadyRolledBack), http.StatusOK, ResultDuplicate, true},
		{fmt.Errorf("%w: dwcp-manager", controller.ErrPaused), http.StatusOK, ResultIgnored, false},
		{fmt.Errorf("%w: dwcp-manager", controller.ErrNotifyOnly), http.StatusOK, ResultIgnored, false},
		{fmt.Errorf("%w: %q", controller.ErrUnknownSystem, "dwcp-manager"), http.StatusOK, ResultIgnored, false},
		{controller.ErrNotActing, http.StatusServiceUnavailable, ResultNotLeader, false},
		{errors.New("reading the rollbacks of dwcp-manager: database is locked"), http.StatusInternalServerError, ResultFailed, false},
	} {
		t.Run(string(c.result)+"/"+c.err.Error(), func(t *testing.T) {
			ctl := &fakeController{err: c.err}
			rc, reg := newReceiver(t, ctl)
			body := payload(alert("alertname", "byzantine-attack-detected", LabelSystem, "dwcp-manager"))
			code, resp, out := post(t, rc, "Bearer "+token, body)
			if code != c.code || resp.Alerts[0].Result != c.result || !strings.Contains(resp.Alerts[0].Reason, c.err.Error()) {
				t.Fatalf("%d %s", code, out)
			}
			if received(reg, StatusFiring, c.result) != 1 {
				t.Errorf("not counted as %s", c.result)
			}
			ctl.set(nil)
			_, resp, _ = post(t, rc, "Bearer "+token, body)
			if got := resp.Alerts[0].Result == ResultDuplicate; got != c.remember {
				t.Fatalf("next delivery: %+v", resp.Alerts[0])
			}
		})
	}
}

// TestOneFailureFailsThePayload: Alertmanager retries the whole payload
// when one alert could not be handled; the others are then duplicates.
func TestOneFailureFailsThePayload(t *testing.T) {
	ctl := &failOn{fakeController: &fakeController{}, system: "dwcp-manager", trigger: "broken"}
	rc, _ := newReceiver(t, ctl)
	good := alert("alertname", "byzantine-attack-detected", LabelSystem, "dwcp-manager")
	bad := alert("alertname", "broken", LabelSystem, "dwcp-manager", LabelAction, "rollback")
	body := payload(good, bad)
	if code, _, out := post(t, rc, "Bearer "+token, body); code != http.StatusInternalServerError {
		t.Fatalf("%d %s", code, out)
	}
	ctl.trigger = ""
	code, resp, out := post(t, rc, "Bearer "+token, body)
	if code != http.StatusOK || resp.Alerts[0].Result != ResultDuplicate || resp.Alerts[1].Result != ResultRollback {
		t.Fatalf("retry: %d %s", code, out)
	}
	if ctl.started() != 3 { // good, bad (failed), bad
		t.Fatalf("%d calls", ctl.started())
	}
}

// failOn fails RollbackOnAlert for one trigger.
type failOn struct {
	*fakeController
	system, trigger string
}

func (f *failOn) RollbackOnAlert(ctx context.Context, a controller.Alert) (string, error) {
	id, err := f.fakeController.RollbackOnAlert(ctx, a)
	if a.Trigger == f.trigger {
		return "", errors.New("the store is down")
	}
	return id, err
}

func TestMetricIsRegistered(t *testing.T) {
	_, reg := newReceiver(t, &fakeController{})
	if n, err := testutil.GatherAndCount(reg, "rewind_alerts_received_total"); err != nil || n != 0 {
		t.Fatalf("%d series, %v", n, err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}
