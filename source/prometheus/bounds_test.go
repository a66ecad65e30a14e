package prometheus

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rewind-sre/rewind/internal/testenv"
)

// endless writes a valid beginning of a vector answer, then samples until
// the client hangs up: an answer of unbounded size.
func endless(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[`))
	for i := 0; r.Context().Err() == nil; i++ {
		if _, err := fmt.Fprintf(w, `{"metric":{"i":"%d"},"value":[1,"1"]},`, i); err != nil {
			return
		}
	}
}

func TestAnswerOverTheBodyBoundIsAFailedQuery(t *testing.T) {
	huge := strings.Repeat("x", 2<<20)
	for name, h := range map[string]http.HandlerFunc{
		"endless stream of samples": endless,
		"one huge label value":      answer(200, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"`+huge+`"},"value":[1,"1"]}]}}`),
		"gzip bomb": func(w http.ResponseWriter, r *http.Request) {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			_, _ = zw.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"`))
			_, _ = zw.Write(bytes.Repeat([]byte("y"), 4<<20))
			_ = zw.Close()
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(b.Bytes())
		},
	} {
		t.Run(name, func(t *testing.T) {
			api := newFakeAPI(t, h)
			_, err := mustNew(t, Config{URL: api.URL, MaxBodyBytes: 1 << 20, MaxSeries: 1 << 20}).Query(context.Background(), "q", time.Unix(1e9, 0))
			want := "more than 1048576 bytes"
			if name != "endless stream of samples" {
				want = "longer than 262144 bytes" // cut as soon as one token is too long
			}
			wantQueryError(t, err, "q", KindTooLarge, want)
		})
	}
}

func TestAnswerOverTheSeriesBoundIsAFailedQuery(t *testing.T) {
	api := newFakeAPI(t, endless)
	_, err := mustNew(t, Config{URL: api.URL, MaxSeries: 100}).Query(context.Background(), "q", time.Unix(1e9, 0))
	wantQueryError(t, err, "q", KindTooLarge, "more than 100 series")
}

func TestResultBeforeItsTypeAndUnknownFields(t *testing.T) {
	api := newFakeAPI(t, answer(200, `{"data":{"result":[{"metric":{"a":"b"},"value":[1,"2"]}],"stats":{"timings":{"x":[1,2,{"y":null}]}},"resultType":"vector"},"infos":["i"],"status":"success"}`))
	v, err := mustNew(t, Config{URL: api.URL}).Query(context.Background(), "q", time.Unix(1e9, 0))
	if err != nil || len(v) != 1 || v[0].V != 2 || v[0].Labels["a"] != "b" {
		t.Fatalf("Query = %v, %v", v, err)
	}
	for _, body := range []string{`{"status":"success","data":null}`, `{"status":"success","data":{"resultType":"vector","result":null}}`} {
		api := newFakeAPI(t, answer(200, body))
		_, err := mustNew(t, Config{URL: api.URL}).Query(context.Background(), "q", time.Unix(1e9, 0))
		wantQueryError(t, err, "q", KindDecode, "no result")
	}
	api = newFakeAPI(t, answer(200, `{"status":"success","data":{"resultType":"vector","result":[]}} {}`))
	_, err = mustNew(t, Config{URL: api.URL}).Query(context.Background(), "q", time.Unix(1e9, 0))
	wantQueryError(t, err, "q", KindDecode, "after the end")
}

// TestPoolSharesOneBudgetPerEndpoint: clients of many systems on one
// endpoint share its bound on queries in flight and its connections.
func TestPoolSharesOneBudgetPerEndpoint(t *testing.T) {
	var inFlight, peak atomic.Int64
	var mu sync.Mutex
	conns := map[string]bool{}
	gate := make(chan struct{})
	api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		mu.Lock()
		conns[r.RemoteAddr] = true
		mu.Unlock()
		<-gate
		answer(200, `{"status":"success","data":{"resultType":"vector","result":[]}}`)(w, r)
	})
	pool := NewPool()
	const systems, maxInFlight = 60, 3
	var wg sync.WaitGroup
	errs := make(chan error, systems)
	for i := range systems {
		// Systems differ in their timeouts: still one endpoint.
		c, err := pool.Client(Config{URL: api.URL, MaxInFlight: maxInFlight, Timeout: time.Duration(10+i%3) * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Query(context.Background(), fmt.Sprintf("q%d", i), time.Unix(1e9, 0))
			errs <- err
		}()
	}
	// The first three are in; the rest wait for a slot.
	testenv.Eventually(t, 10*time.Second, "3 queries in flight", func() (bool, string) { return inFlight.Load() == maxInFlight, "" })
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if p := peak.Load(); p > maxInFlight {
		t.Errorf("%d queries in flight at once, bound %d", p, maxInFlight)
	}
	if len(conns) > maxInFlight {
		t.Errorf("%d connections for %d queries in flight at most: keep-alive does not reuse them", len(conns), maxInFlight)
	}
	a, _ := pool.Client(Config{URL: api.URL, MaxInFlight: maxInFlight, Timeout: 10 * time.Second})
	b, _ := pool.Client(Config{URL: api.URL, MaxInFlight: maxInFlight, Timeout: 10 * time.Second})
	if a != b {
		t.Error("the same config gave two clients")
	}
	if got := len(pool.endpoints); got != 1 {
		t.Errorf("%d endpoints for one URL", got)
	}
}

// TestOverloadedEndpointIsBackedOff: 429, 503 and timeouts hold queries
// back (not sent, failed at once) for a growing while, honouring
// Retry-After; any other answer ends the backoff.
func TestOverloadedEndpointIsBackedOff(t *testing.T) {
	var status atomic.Int64
	status.Store(503)
	var hits atomic.Int64
	api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if s := int(status.Load()); s != 200 {
			w.Header().Set("Retry-After", "5")
			answer(s, `{"status":"error","errorType":"unavailable","error":"too busy"}`)(w, r)
			return
		}
		answer(200, `{"status":"success","data":{"resultType":"vector","result":[]}}`)(w, r)
	})
	c := mustNew(t, Config{URL: api.URL})
	now := time.Unix(1e9, 0)
	c.ep.now = func() time.Time { return now }
	q := func() error { _, err := c.Query(context.Background(), "q", time.Time{}); return err }

	wantQueryError(t, q(), "q", KindHTTP, "503")
	wantQueryError(t, q(), "q", KindBackoff, "backs off for 5s")
	if hits.Load() != 1 {
		t.Fatalf("%d requests sent while backing off", hits.Load())
	}
	now = now.Add(5 * time.Second)
	status.Store(429)
	wantQueryError(t, q(), "q", KindHTTP, "429")
	wantQueryError(t, q(), "q", KindBackoff, "backs off for 5s") // max(2 s doubling, Retry-After 5 s)
	now = now.Add(5 * time.Second)
	status.Store(200)
	if err := q(); err != nil {
		t.Fatal(err)
	}
	if err := q(); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 4 {
		t.Fatalf("%d requests, want 4", hits.Load())
	}
	if overloaded(&Error{Kind: KindAPI, Status: 422, ErrorType: "execution"}) || !overloaded(&Error{Kind: KindHTTP, Status: 422, ErrorType: "timeout"}) {
		t.Error("a wrong query must not back off; a query timeout must")
	}
}

// TestTokenGuardFollowsStrings: structural characters and escaped quotes
// inside strings do not end a token early, and a long number is a token.
func TestTokenGuardFollowsStrings(t *testing.T) {
	value := `a \"quoted\" {x:[1,2]} value`
	api := newFakeAPI(t, answer(200, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"`+value+`"},"value":[1,"2"]}]}}`))
	v, err := mustNew(t, Config{URL: api.URL}).Query(context.Background(), "q", time.Unix(1e9, 0))
	if err != nil || len(v) != 1 || v[0].Labels["a"] != `a "quoted" {x:[1,2]} value` {
		t.Fatalf("Query = %v, %v", v, err)
	}
	g := &tokenGuard{r: strings.NewReader(`["` + strings.Repeat(`\"{`, maxToken/2+1) + `"]`)}
	if _, err := io.ReadAll(g); err == nil {
		t.Error("a long string of escapes and braces passed")
	}
	g = &tokenGuard{r: strings.NewReader(`[` + strings.Repeat("9", maxToken+1) + `]`)}
	if _, err := io.ReadAll(g); err == nil {
		t.Error("a long number passed")
	}
	g = &tokenGuard{r: strings.NewReader(strings.Repeat(`["ab",1],`, maxToken))}
	if _, err := io.ReadAll(g); err != nil {
		t.Errorf("short tokens: %v", err)
	}
}
