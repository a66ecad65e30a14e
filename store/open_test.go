package store

import "testing"

func TestParseLocation(t *testing.T) {
	for _, c := range []struct {
		in, ns string
		want   Location
		bad    bool
	}{
		{in: "rewind.db", want: Location{Kind: KindSQLite, Path: "rewind.db"}},
		{in: "/var/lib/rewind/rewind.db", want: Location{Kind: KindSQLite, Path: "/var/lib/rewind/rewind.db"}},
		{in: "sqlite:kubernetes", want: Location{Kind: KindSQLite, Path: "kubernetes"}},
		{in: "kubernetes", ns: "rewind", want: Location{Kind: KindKubernetes, Namespace: "rewind"}},
		{in: "kubernetes:ops", ns: "rewind", want: Location{Kind: KindKubernetes, Namespace: "ops"}},
		{in: "kubernetes", bad: true},
		{in: "kubernetes:", bad: true},
		{in: "kubernetes:a/b", bad: true},
		{in: "", bad: true},
	} {
		got, err := ParseLocation(c.in, c.ns)
		if c.bad != (err != nil) || (!c.bad && got != c.want) {
			t.Errorf("ParseLocation(%q, %q) = %+v, %v", c.in, c.ns, got, err)
		}
	}
}
