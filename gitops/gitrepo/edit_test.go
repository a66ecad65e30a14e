package gitrepo

import (
	"bytes"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var edit = Edit{
	Images:  []Image{{From: "reg.test:5000/app:v2", To: "reg.test:5000/app:v1"}, {From: "reg.test/other:2.0", To: "reg.test/other-old:1.9"}},
	Weights: &Weights{Name: "app", BaselineHost: "app-baseline", CanaryHost: "app-canary"},
}

func TestEditFile(t *testing.T) {
	cases := []struct {
		name, in, want string
		changes        int
	}{
		{"plain", "spec:\n  containers:\n    - name: a\n      image: reg.test:5000/app:v2 # bad\n", "spec:\n  containers:\n    - name: a\n      image: reg.test:5000/app:v1 # bad\n", 1},
		{"double quoted", "image: \"reg.test:5000/app:v2\"\n", "image: \"reg.test:5000/app:v1\"\n", 1},
		{"single quoted", "image: 'reg.test:5000/app:v2'\n", "image: 'reg.test:5000/app:v1'\n", 1},
		{"flow", "containers: [{name: a, image: reg.test:5000/app:v2}]\n", "containers: [{name: a, image: reg.test:5000/app:v1}]\n", 1},
		{"other image untouched", "image: reg.test:5000/app:v3\n", "", 0},
		{"helm values", "image:\n  repository: reg.test/other\n  tag: \"2.0\"\n", "image:\n  repository: reg.test/other-old\n  tag: \"1.9\"\n", 2},
		{"kustomize images", "kind: Kustomization\nimages:\n  - name: reg.test:5000/app\n    newTag: v2\n", "kind: Kustomization\nimages:\n  - name: reg.test:5000/app\n    newTag: v1\n", 1},
		{"kustomize newName", "kind: Kustomization\nimages:\n  - name: app\n    newName: reg.test/other\n    newTag: \"2.0\"\n", "kind: Kustomization\nimages:\n  - name: app\n    newName: reg.test/other-old\n    newTag: \"1.9\"\n", 2},
		{"virtual service", "kind: VirtualService\nmetadata: {name: app}\nspec:\n  http:\n    - route:\n        - destination: {host: app-baseline}\n          weight: 80\n        - destination: {host: app-canary}\n          weight: 20\n",
			"kind: VirtualService\nmetadata: {name: app}\nspec:\n  http:\n    - route:\n        - destination: {host: app-baseline}\n          weight: 100\n        - destination: {host: app-canary}\n          weight: 0\n", 2},
		{"other virtual service", "kind: VirtualService\nmetadata: {name: other}\nspec:\n  http:\n    - route:\n        - destination: {host: app-baseline}\n          weight: 80\n        - destination: {host: app-canary}\n          weight: 20\n", "", 0},
		{"two documents", "image: x\n---\nimage: reg.test:5000/app:v2\n", "image: x\n---\nimage: reg.test:5000/app:v1\n", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, what, err := editFile([]byte(c.in), edit)
			if err != nil {
				t.Fatal(err)
			}
			if len(what) != c.changes {
				t.Fatalf("changes %v, want %d", what, c.changes)
			}
			if c.changes > 0 && string(out) != c.want {
				t.Fatalf("got:\n%s\nwant:\n%s", out, c.want)
			}
		})
	}
	if _, _, err := editFile([]byte("a: [\n"), edit); err == nil {
		t.Error("broken YAML: no error")
	}
}

// FuzzEditFile: whatever a repository holds, editing never panics, and
// what it writes is still YAML with the same number of documents.
func FuzzEditFile(f *testing.F) {
	for _, s := range []string{
		"image: reg.test:5000/app:v2\n",
		"image:\n  repository: reg.test/other\n  tag: \"2.0\"\n",
		"kind: Kustomization\nimages:\n  - name: reg.test:5000/app\n    newTag: v2\n",
		"kind: VirtualService\nmetadata: {name: app}\nspec:\n  http:\n    - route:\n        - destination: {host: app-baseline}\n          weight: 80\n        - destination: {host: app-canary}\n          weight: 20\n",
		"a: &x {image: reg.test:5000/app:v2}\nb: *x\n",
		"image: |\n  reg.test:5000/app:v2\n",
		"- image: reg.test:5000/app:v2\n  image2: reg.test:5000/app:v2\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, what, err := editFile([]byte(in), edit)
		if err != nil || what == nil {
			return
		}
		if docs(t, out) != docs(t, []byte(in)) {
			t.Fatalf("the edit changed the document count:\n%q\n→\n%q", in, out)
		}
	})
}

func docs(t *testing.T, b []byte) int {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	n := 0
	for {
		var v yaml.Node
		if err := dec.Decode(&v); err != nil {
			if strings.Contains(err.Error(), "EOF") {
				return n
			}
			t.Fatalf("the edited file is not YAML: %v\n%s", err, b)
		}
		n++
	}
}
