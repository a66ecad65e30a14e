package prometheus

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Every failure rule of the package contract, for instant queries.
func TestQueryFailures(t *testing.T) {
	for name, tc := range map[string]struct {
		status    int
		body      string
		kind      Kind
		errorType string
		mention   []string
	}{
		"bad_data 400": {400, `{"status":"error","errorType":"bad_data","error":"1:5: parse error: unclosed left parenthesis"}`,
			KindHTTP, "bad_data", []string{"HTTP 400", "bad_data", "unclosed left parenthesis"}},
		"execution 422": {422, `{"status":"error","errorType":"execution","error":"many-to-many matching not allowed"}`,
			KindHTTP, "execution", []string{"422", "many-to-many"}},
		"server timeout 503": {503, `{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}`,
			KindHTTP, "timeout", []string{"503", "timed out"}},
		"502 from a proxy": {502, "<html><body>Bad Gateway</body></html>",
			KindHTTP, "", []string{"502", "Bad Gateway"}},
		"empty 500": {500, "", KindHTTP, "", []string{"500", "empty body"}},
		"redirect":  {302, "", KindHTTP, "", []string{"302"}},
		"status error on 200": {200, `{"status":"error","errorType":"internal","error":"boom"}`,
			KindAPI, "internal", []string{"internal", "boom"}},
		"warnings": {200, `{"status":"success","warnings":["store 10.0.0.1:10901 unavailable"],"data":{"resultType":"vector","result":[]}}`,
			KindPartial, "", []string{"partial data", "store 10.0.0.1:10901 unavailable"}},
		"victoriametrics isPartial": {200, `{"status":"success","isPartial":true,"data":{"resultType":"vector","result":[]}}`,
			KindPartial, "", []string{"partial"}},
		"not json":        {200, "hello", KindDecode, "", []string{"undecodable"}},
		"truncated json":  {200, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{}`, KindDecode, "", []string{"undecodable"}},
		"unknown status":  {200, `{"status":"maybe"}`, KindDecode, "", []string{"maybe"}},
		"no result":       {200, `{"status":"success","data":{"resultType":"vector"}}`, KindDecode, "", []string{"no result"}},
		"no result type":  {200, `{"status":"success","data":{"result":[]}}`, KindDecode, "", []string{"resultType"}},
		"sample no value": {200, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"b"}}]}}`, KindDecode, "", []string{"no value"}},
		"value not string": {200, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,2]}]}}`,
			KindDecode, "", []string{"quoted string"}},
		"short pair": {200, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1]}]}}`,
			KindDecode, "", []string{"1 elements"}},
		"duplicate series": {200, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"b"},"value":[1,"1"]},{"metric":{"a":"b"},"value":[1,"2"]}]}}`,
			KindDecode, "", []string{"twice"}},
		"matrix for instant": {200, `{"status":"success","data":{"resultType":"matrix","result":[]}}`,
			KindResultType, "", []string{`"matrix"`}},
		"string result": {200, `{"status":"success","data":{"resultType":"string","result":[1,"x"]}}`,
			KindResultType, "", []string{`"string"`}},
		"native histogram": {200, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"histogram":[1,{"count":"1","sum":"1"}]}]}}`,
			KindResultType, "", []string{"native histogram"}},
	} {
		t.Run(name, func(t *testing.T) {
			api := newFakeAPI(t, answer(tc.status, tc.body))
			v, err := mustNew(t, Config{URL: api.URL}).Query(context.Background(), "rate(x[5m])", time.Unix(1700000000, 0))
			if v != nil {
				t.Errorf("got a vector %v with the error", v)
			}
			qe := wantQueryError(t, err, "rate(x[5m])", tc.kind, tc.mention...)
			if qe.ErrorType != tc.errorType {
				t.Errorf("ErrorType = %q, want %q", qe.ErrorType, tc.errorType)
			}
			if tc.kind == KindHTTP && qe.Status != tc.status {
				t.Errorf("Status = %d, want %d", qe.Status, tc.status)
			}
		})
	}
}

func TestQueryTimeout(t *testing.T) {
	api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers before the client gives up
	})
	c := mustNew(t, Config{URL: api.URL, Timeout: 100 * time.Millisecond})
	_, err := c.Query(context.Background(), "slow", time.Time{})
	wantQueryError(t, err, "slow", KindTimeout, "100ms")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
	if got := api.seen()[0].Form.Get("timeout"); got != "100ms" {
		t.Errorf("timeout parameter %q, want 100ms", got)
	}
}

func TestQueryCallerCanceled(t *testing.T) {
	api := newFakeAPI(t, answer(200, threeSeries))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := mustNew(t, Config{URL: api.URL}).Query(ctx, "x", time.Time{})
	wantQueryError(t, err, "x", KindCanceled, "canceled")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
}

func TestQueryConnectionRefused(t *testing.T) {
	api := newFakeAPI(t, answer(200, threeSeries))
	url := api.URL
	api.Close() // nothing listens there any more
	_, err := mustNew(t, Config{URL: url}).Query(context.Background(), "up", time.Time{})
	wantQueryError(t, err, "up", KindUnreachable, "connection refused")
}

func TestQueryErrorNeverContainsSecret(t *testing.T) {
	const token = "tok-9f8e7d"
	const password = "pw-1a2b3c"
	// A buggy proxy that echoes the Authorization header in its errors,
	// as a plain body and as a Prometheus error.
	echo := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte("forbidden: " + r.Header.Get("Authorization")))
	})
	echoJSON := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		answer(200, `{"status":"success","warnings":["bad auth `+auth+`"],"data":{"resultType":"matrix","result":[]}}`)(w, r)
	})
	for _, tc := range []struct {
		name   string
		cfg    Config
		kind   Kind
		leaked []string
	}{
		{"bearer body", Config{URL: echo.URL, BearerTokenFile: writeSecret(t, "token", token+"\n")}, KindHTTP, []string{token}},
		{"basic body", Config{URL: echo.URL, BasicAuthUsername: "rewind", BasicAuthPasswordFile: writeSecret(t, "pw", password)},
			KindHTTP, []string{password, "cmV3aW5kOnB3LTFhMmIzYw=="}},
		{"bearer warning", Config{URL: echoJSON.URL, BearerTokenFile: writeSecret(t, "token", token)}, KindPartial, []string{token}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustNew(t, tc.cfg)
			_, err := c.QueryRange(context.Background(), "up", time.Unix(0, 0), time.Unix(60, 0), time.Minute)
			wantQueryError(t, err, "up", tc.kind, redacted)
			for _, secret := range tc.leaked {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q leaks %q", err, secret)
				}
			}
		})
	}
}
