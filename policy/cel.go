package policy

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
)

var (
	celEnvOnce sync.Once
	celEnv     *cel.Env
	celEnvErr  error
)

func conditionEnv() (*cel.Env, error) {
	celEnvOnce.Do(func() {
		celEnv, celEnvErr = cel.NewEnv(
			cel.Variable("canary", cel.DoubleType),
			cel.Variable("baseline", cel.DoubleType),
			cel.CrossTypeNumericComparisons(true),
		)
	})
	return celEnv, celEnvErr
}

// compileCondition type-checks a CEL condition to bool. Integer literals are
// read as doubles first, so that `baseline * 2` means what an SRE means.
// It returns the program and whether the condition refers to `baseline`.
func compileCondition(src string) (cel.Program, bool, error) {
	env, err := conditionEnv()
	if err != nil {
		return nil, false, err
	}
	ast, iss := env.Compile(floatLiterals(src))
	if iss != nil && iss.Err() != nil {
		msgs := make([]string, 0, len(iss.Errors()))
		for _, e := range iss.Errors() {
			msgs = append(msgs, strings.TrimSuffix(e.Message, " (in container '')"))
		}
		return nil, false, errors.New(strings.Join(msgs, "; "))
	}
	if ast.OutputType() != cel.BoolType {
		return nil, false, fmt.Errorf("condition must be a boolean expression, not %s", ast.OutputType())
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, false, err
	}
	usesBaseline := false
	for _, ref := range ast.NativeRep().ReferenceMap() {
		if ref.Name == "baseline" {
			usesBaseline = true
		}
	}
	return prg, usesBaseline, nil
}

// activation avoids a map allocation per evaluation.
type activation struct{ canary, baseline float64 }

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "canary":
		return a.canary, true
	case "baseline":
		return a.baseline, true
	}
	return nil, false
}

func (a *activation) Parent() cel.Activation { return nil }

func evalCondition(prg cel.Program, canary, baseline float64) (bool, error) {
	if prg == nil {
		return false, errors.New("no condition compiled")
	}
	out, _, err := prg.Eval(&activation{canary, baseline})
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("condition gave %v, not a boolean", out.Value())
	}
	return b, nil
}

// floatLiterals rewrites integer literals outside string literals as doubles
// ("2" → "2.0"); CEL has no implicit int → double conversion.
func floatLiterals(src string) string {
	var b strings.Builder
	var quote byte
	for i := 0; i < len(src); i++ {
		c := src[i]
		if quote != 0 {
			b.WriteByte(c)
			if c == '\\' && i+1 < len(src) {
				i++
				b.WriteByte(src[i])
			} else if c == quote {
				quote = 0
			}
			continue
		}
		if c == '"' || c == '\'' {
			quote = c
			b.WriteByte(c)
			continue
		}
		if isDigit(c) && (i == 0 || !isIdentOrDot(src[i-1])) {
			j := i
			for j < len(src) && isDigit(src[j]) {
				j++
			}
			b.WriteString(src[i:j])
			if j == len(src) || !strings.ContainsRune(".eExXuU", rune(src[j])) && !isIdentOrDot(src[j]) {
				b.WriteString(".0")
			}
			i = j - 1
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isIdentOrDot(c byte) bool {
	return c == '_' || c == '.' || isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'z')
}
