package policy

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// FieldError is one policy error: FILE:LINE: path: message.
type FieldError struct {
	File string
	Line int
	Path string
	Msg  string
}

func (e FieldError) Error() string {
	switch {
	case e.Path == "":
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	default:
		return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Path, e.Msg)
	}
}

// Errors is every error found in a policy, in file order.
type Errors []FieldError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Sorted orders the errors by line (stable).
func (es Errors) Sorted() Errors { return es.sorted() }

func (es Errors) sorted() Errors {
	sort.SliceStable(es, func(i, j int) bool { return es[i].Line < es[j].Line })
	return es
}

// scalarDecoder is implemented by field types decoded from one scalar.
type scalarDecoder interface {
	decodeScalar(s string) error
}

// keywordDecoder is implemented by mapping types that also take one
// scalar keyword in place of the mapping (e.g. `gitops: none`).
type keywordDecoder interface {
	decodeKeyword(s string) error
}

// decoder maps a YAML node tree onto Go values strictly: unknown fields,
// duplicate keys and wrong kinds are errors with their line and field path.
// It keeps going after an error so that every error is reported at once.
type decoder struct {
	file  string
	errs  Errors
	lines map[string]int // field path → line of its value
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, FieldError{File: d.file, Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	d.lines[path] = n.Line
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if kd, ok := v.Addr().Interface().(keywordDecoder); ok && n.Kind == yaml.ScalarNode {
		if err := kd.decodeKeyword(n.Value); err != nil {
			d.fail(n, path, "%v", err)
		}
		return
	}
	if sd, ok := v.Addr().Interface().(scalarDecoder); ok {
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a scalar value")
			return
		}
		if err := sd.decodeScalar(n.Value); err != nil {
			d.fail(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		// A value that failed to decode stays unset, so that no default
		// checks pile up on the zero value.
		nv := reflect.New(v.Type().Elem())
		before := len(d.errs)
		d.decode(n, nv.Elem(), path)
		if len(d.errs) == before {
			v.Set(nv)
		}
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "expected a list")
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a string")
			return
		}
		v.SetString(n.Value)
	case reflect.Float64:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a number")
			return
		}
		f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		if err != nil {
			d.fail(n, path, "cannot parse %q as a number", n.Value)
			return
		}
		v.SetFloat(f)
	case reflect.Int:
		i, err := strconv.Atoi(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.fail(n, path, "cannot parse %q as an integer", n.Value)
			return
		}
		v.SetInt(int64(i))
	case reflect.Bool:
		b, ok := map[string]bool{"true": true, "false": false}[n.Value]
		if n.Kind != yaml.ScalarNode || !ok {
			d.fail(n, path, "cannot parse %q as a boolean (true or false)", n.Value)
			return
		}
		v.SetBool(b)
	default:
		panic(fmt.Sprintf("policy: unsupported field type %s", v.Type()))
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping")
		return
	}
	fields := map[string]int{}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			fields[name] = i
		}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		sub := join(path, k.Value)
		idx, ok := fields[k.Value]
		switch {
		case !ok:
			d.fail(k, sub, "unknown field %q%s", k.Value, suggest(k.Value, fields))
			continue
		case seen[k.Value]:
			d.fail(k, sub, "duplicate field %q", k.Value)
			continue
		}
		seen[k.Value] = true
		d.decode(val, v.Field(idx), sub)
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping")
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		sub := join(path, k.Value)
		key := reflect.ValueOf(k.Value)
		if m.MapIndex(key).IsValid() {
			d.fail(k, sub, "duplicate key %q", k.Value)
			continue
		}
		e := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, e, sub)
		m.SetMapIndex(key, e)
	}
	v.Set(m)
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// suggest names the known field closest to an unknown one, if any is close.
func suggest(name string, fields map[string]int) string {
	best, bestDist := "", 3
	for f := range fields {
		if dist := levenshtein(strings.ToLower(name), strings.ToLower(f)); dist < bestDist || (dist == bestDist && f < best) {
			best, bestDist = f, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
