package prometheus

import (
	"compress/gzip"
	"context"
	"encoding/pem"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const threeSeries = `{"status":"success","data":{"resultType":"vector","result":[
 {"metric":{"version":"canary","pod":"a"},"value":[1700000000.5,"0.25"]},
 {"metric":{"version":"canary","pod":"b"},"value":[1700000000.5,"NaN"]},
 {"metric":{"version":"baseline"},"value":[1700000000.5,"+Inf"]}]}}`

func TestQueryReturnsEverySeries(t *testing.T) {
	api := newFakeAPI(t, answer(200, threeSeries))
	c := mustNew(t, Config{URL: api.URL, Timeout: 3 * time.Second})
	at := time.Unix(1700000000, 500e6)

	v, err := c.Query(context.Background(), "sum by (pod) (x)", at)
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	if len(v) != 3 {
		t.Fatalf("got %d samples, want all 3: %+v", len(v), v)
	}
	if v[0].Labels["pod"] != "a" || v[0].V != 0.25 || !v[0].T.Equal(at) {
		t.Errorf("sample 0 = %+v", v[0])
	}
	if v[1].Labels["pod"] != "b" || !math.IsNaN(v[1].V) {
		t.Errorf("sample 1 = %+v, want NaN passed through", v[1])
	}
	if v[2].Labels["version"] != "baseline" || !math.IsInf(v[2].V, +1) {
		t.Errorf("sample 2 = %+v, want +Inf passed through", v[2])
	}

	reqs := api.seen()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.Path != "/api/v1/query" {
		t.Errorf("request %s %s, want POST /api/v1/query", r.Method, r.Path)
	}
	for param, want := range map[string]string{
		"query": "sum by (pod) (x)", "time": "1700000000.5", "timeout": "3s", "partial_response": "false",
	} {
		if got := r.Form.Get(param); got != want {
			t.Errorf("param %s = %q, want %q", param, got, want)
		}
	}
}

func TestQueryEmptyVectorIsNoData(t *testing.T) {
	api := newFakeAPI(t, answer(200, `{"status":"success","data":{"resultType":"vector","result":[]}}`))
	v, err := mustNew(t, Config{URL: api.URL}).Query(context.Background(), "absent_metric", time.Unix(1700000000, 0))
	if err != nil || v == nil || len(v) != 0 {
		t.Errorf("Query = %v, %v; want an empty, non-nil vector and no error", v, err)
	}
}

func TestQueryScalarIsOneUnlabelledSample(t *testing.T) {
	api := newFakeAPI(t, answer(200, `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"42"]}}`))
	v, err := mustNew(t, Config{URL: api.URL}).Query(context.Background(), "scalar(x)", time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != 1 || len(v[0].Labels) != 0 || v[0].Labels == nil || v[0].V != 42 || v[0].T.Unix() != 1700000000 {
		t.Errorf("scalar = %+v, want one sample 42 with empty labels", v)
	}
}

func TestQueryZeroTimeLetsServerChoose(t *testing.T) {
	api := newFakeAPI(t, answer(200, threeSeries))
	if _, err := mustNew(t, Config{URL: api.URL}).Query(context.Background(), "x", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if form := api.seen()[0].Form; form.Has("time") || form.Get("timeout") != "10s" {
		t.Errorf("form %v: want no time and the default timeout 10s", form)
	}
}

func TestQueryPathPrefix(t *testing.T) {
	api := newFakeAPI(t, answer(200, threeSeries))
	if _, err := mustNew(t, Config{URL: api.URL + "/prometheus/"}).Query(context.Background(), "x", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if p := api.seen()[0].Path; p != "/prometheus/api/v1/query" {
		t.Errorf("path %q, want /prometheus/api/v1/query (Mimir style prefix)", p)
	}
}

func TestQueryFallsBackToGet(t *testing.T) {
	api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		answer(200, threeSeries)(w, r)
	})
	v, err := mustNew(t, Config{URL: api.URL}).Query(context.Background(), "x", time.Time{})
	if err != nil || len(v) != 3 {
		t.Fatalf("Query = %d samples, %v", len(v), err)
	}
	reqs := api.seen()
	if len(reqs) != 2 || reqs[1].Form.Get("partial_response") != "false" || reqs[1].Form.Get("query") != "x" {
		t.Errorf("GET retry lacks the parameters: %+v", reqs)
	}
}

func TestQueryGzipBody(t *testing.T) {
	api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			t.Error("request does not accept gzip")
		}
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		_, _ = zw.Write([]byte(threeSeries))
		_ = zw.Close()
	})
	v, err := mustNew(t, Config{URL: api.URL}).Query(context.Background(), "x", time.Time{})
	if err != nil || len(v) != 3 {
		t.Fatalf("Query = %d samples, %v", len(v), err)
	}
}

func TestBearerTokenFromFile(t *testing.T) {
	const token = "s3cr3t-token"
	api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte("unauthorized\n"))
			return
		}
		answer(200, threeSeries)(w, r)
	})
	c := mustNew(t, Config{URL: api.URL, BearerTokenFile: writeSecret(t, "token", token+"\n")})
	if _, err := c.Query(context.Background(), "x", time.Time{}); err != nil {
		t.Fatalf("with token: %v", err)
	}

	wrong := mustNew(t, Config{URL: api.URL, BearerTokenFile: writeSecret(t, "token", "wrong-token")})
	_, err := wrong.Query(context.Background(), "x", time.Time{})
	qe := wantQueryError(t, err, "x", KindHTTP, "401")
	if qe.Status != http.StatusUnauthorized || strings.Contains(err.Error(), "wrong-token") {
		t.Errorf("error %q: want status 401 and no token", err)
	}
}

func TestBasicAuthFromFile(t *testing.T) {
	const password = "pa55word"
	api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "rewind" || p != password {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		answer(200, threeSeries)(w, r)
	})
	c := mustNew(t, Config{URL: api.URL, BasicAuthUsername: "rewind", BasicAuthPasswordFile: writeSecret(t, "pw", password)})
	if _, err := c.Query(context.Background(), "x", time.Time{}); err != nil {
		t.Fatalf("with basic auth: %v", err)
	}
}

func TestTLSWithCAFile(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(answer(200, threeSeries)))
	defer srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	trusted := mustNew(t, Config{URL: srv.URL, CAFile: writeSecret(t, "ca.pem", string(ca))})
	if _, err := trusted.Query(context.Background(), "x", time.Time{}); err != nil {
		t.Errorf("with CA file: %v", err)
	}
	_, err := mustNew(t, Config{URL: srv.URL}).Query(context.Background(), "x", time.Time{})
	wantQueryError(t, err, "x", KindUnreachable, "certificate")

	insecure := mustNew(t, Config{URL: srv.URL, InsecureSkipVerify: true})
	if _, err := insecure.Query(context.Background(), "x", time.Time{}); err != nil {
		t.Errorf("with InsecureSkipVerify: %v", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	token := writeSecret(t, "token", "t")
	for name, tc := range map[string]struct {
		cfg     Config
		mention string
	}{
		"empty URL":          {Config{}, "empty"},
		"relative URL":       {Config{URL: "prometheus:9090"}, "scheme"},
		"ftp":                {Config{URL: "ftp://prometheus"}, "scheme"},
		"no host":            {Config{URL: "http://"}, "no host"},
		"query in URL":       {Config{URL: "http://p:9090/?x=1"}, "query"},
		"credentials in URL": {Config{URL: "http://admin:hunter2@p:9090"}, "credentials"},
		"negative timeout":   {Config{URL: "http://p", Timeout: -time.Second}, "timeout"},
		"both auths":         {Config{URL: "http://p", BearerTokenFile: token, BasicAuthUsername: "u"}, "not both"},
		"password no user":   {Config{URL: "http://p", BasicAuthPasswordFile: token}, "username"},
		"missing token file": {Config{URL: "http://p", BearerTokenFile: "/nonexistent/token"}, "/nonexistent/token"},
		"missing CA file":    {Config{URL: "http://p", CAFile: "/nonexistent/ca.pem"}, "CA file"},
		"invalid CA file":    {Config{URL: "https://p", CAFile: token}, "CA"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil {
				t.Fatal("New accepted the config")
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %q", err, tc.mention)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q leaks the password", err)
			}
		})
	}
}
