package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Load reads, validates and compiles a policy file.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse validates and compiles a policy; file names the source in errors.
// The error, if any, is Errors: every problem found, in file order.
func Parse(file string, data []byte) (*Policy, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		return nil, Errors{yamlError(file, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Errors{{File: file, Line: extra.Line, Msg: "a policy file holds one YAML document"}}
	}
	d := &decoder{file: file, lines: map[string]int{}}
	var spec fileSpec
	if root.Kind == 0 {
		return nil, Errors{{File: file, Line: 1, Msg: "empty policy"}}
	}
	d.decode(&root, reflect.ValueOf(&spec).Elem(), "")
	c := &compiler{file: file, lines: d.lines, errs: d.errs}
	p := c.policy(&spec)
	if len(c.errs) > 0 {
		return nil, c.errs.sorted()
	}
	sum := sha256.Sum256(data)
	p.File, p.Hash, p.lines = file, hex.EncodeToString(sum[:])[:16], d.lines
	return p, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlError(file string, err error) FieldError {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return FieldError{File: file, Line: line, Msg: "YAML: " + m[2]}
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return FieldError{File: file, Line: 1, Msg: "YAML: " + oneLine(te.Error())}
	}
	return FieldError{File: file, Line: 1, Msg: "YAML: " + oneLine(err.Error())}
}

// compiler turns decoded specs into a Policy, collecting every error.
type compiler struct {
	file  string
	lines map[string]int
	errs  Errors
}

// errf records an error at the line of path (or of its nearest parent).
func (c *compiler) errf(path, format string, args ...any) {
	c.errs = append(c.errs, FieldError{File: c.file, Line: c.line(path), Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (c *compiler) line(path string) int { return lineOf(c.lines, path) }

// lineOf is the line of path's value, or of its nearest parent's; 1 when
// none is known.
func lineOf(lines map[string]int, path string) int {
	for p := path; p != ""; p = parent(p) {
		if l, ok := lines[p]; ok {
			return l
		}
	}
	return 1
}

func parent(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		switch path[i] {
		case '.':
			return path[:i]
		case '[':
			return path[:i]
		}
	}
	return ""
}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}
