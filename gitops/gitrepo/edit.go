package gitrepo

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Image is one container image to put back: every place in the manifests
// that sets From is changed to To.
type Image struct {
	From string // the bad image, e.g. registry/checkout:v2
	To   string // the previous one, e.g. registry/checkout:v1
}

// Weights is a VirtualService whose canary route gets weight 0 in Git, as
// the drain step did in the cluster: in each HTTP route with both hosts the
// baseline gets the canary's weight.
type Weights struct {
	Name         string // VirtualService metadata.name
	BaselineHost string
	CanaryHost   string
}

// Edit is what the revert changes.
type Edit struct {
	Images  []Image
	Weights *Weights
}

// change is one scalar to rewrite in a file: the node's position and text.
type change struct {
	line, col int // 1-based, of the scalar's first character
	old, new  string
	what      string
}

// editFile applies e to one YAML file (several documents allowed),
// rewriting only the changed scalars so that comments and layout stay. It
// returns the new content and what was changed (nil: nothing).
func editFile(data []byte, e Edit) ([]byte, []string, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var changes []change
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			if err.Error() == "EOF" {
				break
			}
			return nil, nil, err
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		changes = append(changes, imageChanges(root, e.Images)...)
		changes = append(changes, kustomizeImageChanges(root, e.Images)...)
		if e.Weights != nil {
			changes = append(changes, weightChanges(root, *e.Weights)...)
		}
	}
	if len(changes) == 0 {
		return nil, nil, nil
	}
	out, err := rewrite(data, changes)
	if err != nil {
		return nil, nil, err
	}
	what := make([]string, len(changes))
	for i, c := range changes {
		what[i] = c.what
	}
	return out, what, nil
}

// walk calls f on every mapping under n.
func walk(n *yaml.Node, f func(m *yaml.Node)) {
	if n == nil {
		return
	}
	if n.Kind == yaml.MappingNode {
		f(n)
	}
	for _, c := range n.Content {
		walk(c, f)
	}
}

// get returns the value of key in mapping m.
func get(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func scalar(n *yaml.Node) bool { return n != nil && n.Kind == yaml.ScalarNode }

// imageChanges: `image: FROM` anywhere (plain manifests, Helm values with
// a one-string image), and Helm's `repository: R` + `tag: T` where R:T is FROM.
func imageChanges(root *yaml.Node, images []Image) []change {
	var out []change
	walk(root, func(m *yaml.Node) {
		for _, im := range images {
			if v := get(m, "image"); scalar(v) && v.Value == im.From {
				out = append(out, change{v.Line, v.Column, v.Value, im.To, fmt.Sprintf("image %s → %s (line %d)", im.From, im.To, v.Line)})
			}
			repo, tag := get(m, "repository"), get(m, "tag")
			if !scalar(repo) || !scalar(tag) {
				continue
			}
			fromRepo, fromTag := splitImage(im.From)
			toRepo, toTag := splitImage(im.To)
			if repo.Value != fromRepo || tag.Value != fromTag {
				continue
			}
			if toRepo != fromRepo {
				out = append(out, change{repo.Line, repo.Column, repo.Value, toRepo, fmt.Sprintf("repository %s → %s (line %d)", fromRepo, toRepo, repo.Line)})
			}
			out = append(out, change{tag.Line, tag.Column, tag.Value, toTag, fmt.Sprintf("tag %s → %s (line %d)", fromTag, toTag, tag.Line)})
		}
	})
	return out
}

// kustomizeImageChanges: a kustomization's `images:` entry {name, newName,
// newTag} whose result is FROM gets the previous tag (and name).
func kustomizeImageChanges(root *yaml.Node, images []Image) []change {
	if root.Kind != yaml.MappingNode {
		return nil
	}
	if k := get(root, "kind"); !scalar(k) || k.Value != "Kustomization" {
		return nil
	}
	list := get(root, "images")
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil
	}
	var out []change
	for _, entry := range list.Content {
		name, newName, newTag := get(entry, "name"), get(entry, "newName"), get(entry, "newTag")
		if !scalar(name) || !scalar(newTag) {
			continue
		}
		repo := name.Value
		if scalar(newName) {
			repo = newName.Value
		}
		for _, im := range images {
			fromRepo, fromTag := splitImage(im.From)
			toRepo, toTag := splitImage(im.To)
			if repo != fromRepo || newTag.Value != fromTag {
				continue
			}
			if toRepo != fromRepo {
				if scalar(newName) {
					out = append(out, change{newName.Line, newName.Column, newName.Value, toRepo, fmt.Sprintf("images newName %s → %s (line %d)", fromRepo, toRepo, newName.Line)})
				} else {
					continue // would need a new key; not a one-scalar edit
				}
			}
			out = append(out, change{newTag.Line, newTag.Column, newTag.Value, toTag, fmt.Sprintf("images newTag %s → %s (line %d)", fromTag, toTag, newTag.Line)})
		}
	}
	return out
}

// weightChanges drains the canary in a VirtualService manifest.
func weightChanges(root *yaml.Node, w Weights) []change {
	if root.Kind != yaml.MappingNode {
		return nil
	}
	if k := get(root, "kind"); !scalar(k) || k.Value != "VirtualService" {
		return nil
	}
	if md := get(root, "metadata"); md == nil || !scalar(get(md, "name")) || get(md, "name").Value != w.Name {
		return nil
	}
	spec := get(root, "spec")
	if spec == nil {
		return nil
	}
	http := get(spec, "http")
	if http == nil || http.Kind != yaml.SequenceNode {
		return nil
	}
	var out []change
	for _, rt := range http.Content {
		routes := get(rt, "route")
		if routes == nil || routes.Kind != yaml.SequenceNode {
			continue
		}
		var base, canary *yaml.Node
		for _, d := range routes.Content {
			dest := get(d, "destination")
			if dest == nil || !scalar(get(dest, "host")) || !scalar(get(d, "weight")) {
				continue
			}
			switch get(dest, "host").Value {
			case w.BaselineHost:
				base = get(d, "weight")
			case w.CanaryHost:
				canary = get(d, "weight")
			}
		}
		if base == nil || canary == nil || canary.Value == "0" {
			continue
		}
		b, err1 := strconv.Atoi(base.Value)
		c, err2 := strconv.Atoi(canary.Value)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out,
			change{base.Line, base.Column, base.Value, strconv.Itoa(b + c), fmt.Sprintf("VirtualService %s weight of %s %d → %d (line %d)", w.Name, w.BaselineHost, b, b+c, base.Line)},
			change{canary.Line, canary.Column, canary.Value, "0", fmt.Sprintf("VirtualService %s weight of %s %d → 0 (line %d)", w.Name, w.CanaryHost, c, canary.Line)})
	}
	return out
}

// splitImage splits "repo:tag" (a registry port is part of the repo).
func splitImage(ref string) (repo, tag string) {
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ref, ""
	}
	return ref[:i], ref[i+1:]
}

// rewrite replaces each change's old text, at or after its position on its
// line, with the new text (quotes kept: a quoted scalar's position is its
// opening quote). Columns count bytes of UTF-8 text per yaml.v3 (runes);
// the search from the position makes that exact enough for one line.
func rewrite(data []byte, changes []change) ([]byte, error) {
	lines := strings.SplitAfter(string(data), "\n")
	for _, c := range changes {
		if c.line < 1 || c.line > len(lines) {
			return nil, fmt.Errorf("line %d out of range", c.line)
		}
		l := lines[c.line-1]
		start := min(max(c.col-1, 0), len(l))
		for start > 0 && start >= len(l) {
			start--
		}
		i := strings.Index(l[start:], c.old)
		if i < 0 {
			i = strings.Index(l, c.old) // a column counted in runes
			if i < 0 {
				return nil, fmt.Errorf("line %d: %q not found", c.line, c.old)
			}
			start = 0
		}
		at := start + i
		lines[c.line-1] = l[:at] + c.new + l[at+len(c.old):]
	}
	return []byte(strings.Join(lines, "")), nil
}
