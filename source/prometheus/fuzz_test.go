package prometheus

import (
	"errors"
	"testing"

	"github.com/rewind-sre/rewind"
)

// FuzzDecode feeds arbitrary statuses and bodies to both decoders: they must
// not panic, and must return either an error wrapping rewind.ErrQuery or a
// well-formed result (non-nil labels, no series twice, points in time order).
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		threeSeries,
		`{"status":"success","data":{"resultType":"vector","result":[]}}`,
		`{"status":"success","data":{"resultType":"scalar","result":[1700000000.123,"-Inf"]}}`,
		`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"b"},"values":[[1,"1"],[2,"NaN"]]}]}}`,
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":null,"value":[1e3,"1e308"]}]}}`,
		`{"status":"success","warnings":["w"],"data":{"resultType":"vector","result":[]}}`,
		`{"status":"error","errorType":"bad_data","error":"parse error"}`,
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"histogram":[1,{}]}]}}`,
		`{"status":"success","data":{"resultType":"string","result":[1,"x"]}}`,
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":["1.5","2"]}]}}`,
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[-99999999999.9999,"0x1p-2"]}]}}`,
		`<html>`, ``, `null`, `{}`, `[]`,
	} {
		f.Add(200, []byte(seed))
	}
	f.Add(400, []byte(`{"status":"error","errorType":"bad_data","error":"x"}`))
	f.Add(503, []byte("upstream down"))

	f.Fuzz(func(t *testing.T, status int, body []byte) {
		v, err := decodeInstant("q", status, body)
		if err != nil {
			checkFailure(t, err, v == nil)
		} else {
			checkVector(t, v)
		}
		m, err := decodeRange("q", status, body)
		if err != nil {
			checkFailure(t, err, m == nil)
		} else {
			checkMatrix(t, m)
		}
	})
}

func checkFailure(t *testing.T, err error, noResult bool) {
	t.Helper()
	if !errors.Is(err, rewind.ErrQuery) {
		t.Fatalf("error %v does not wrap rewind.ErrQuery", err)
	}
	if !noResult {
		t.Fatalf("a result came back with the error %v", err)
	}
}

func checkVector(t *testing.T, v rewind.Vector) {
	t.Helper()
	if v == nil {
		t.Fatal("nil vector without an error")
	}
	seen := map[string]bool{}
	for _, s := range v {
		if s.Labels == nil {
			t.Fatalf("sample %+v has nil labels", s)
		}
		if k := labelKey(s.Labels); seen[k] {
			t.Fatalf("series %s twice", k)
		} else {
			seen[k] = true
		}
	}
}

func checkMatrix(t *testing.T, m rewind.Matrix) {
	t.Helper()
	if m == nil {
		t.Fatal("nil matrix without an error")
	}
	seen := map[string]bool{}
	for _, s := range m {
		if s.Labels == nil {
			t.Fatalf("series with nil labels")
		}
		if k := labelKey(s.Labels); seen[k] {
			t.Fatalf("series %s twice", k)
		} else {
			seen[k] = true
		}
		for i := 1; i < len(s.Points); i++ {
			if !s.Points[i].T.After(s.Points[i-1].T) {
				t.Fatalf("points of %v out of order", s.Labels)
			}
		}
	}
}
