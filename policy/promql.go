package policy

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/prometheus/prometheus/promql/parser"
)

var promParser = parser.NewParser(parser.Options{})

var selectorPlaceholder = regexp.MustCompile(`\{\{\s*selector\s*\}\}`)

func hasPlaceholder(q string) bool { return selectorPlaceholder.MatchString(q) }

// resolve replaces every {{selector}} with the given label matchers.
func resolve(template, selector string) string {
	return selectorPlaceholder.ReplaceAllLiteralString(template, selector)
}

// checkPromQL parses a resolved query and requires an instant vector or scalar.
func checkPromQL(q string) (parser.Expr, error) {
	expr, err := promParser.ParseExpr(q)
	if err != nil {
		return nil, fmt.Errorf("PromQL: %s", oneLine(err.Error()))
	}
	switch expr.Type() {
	case parser.ValueTypeVector, parser.ValueTypeScalar:
		return expr, nil
	}
	return nil, fmt.Errorf("PromQL: the query must give an instant vector or a scalar, not a %s", expr.Type())
}

func checkSelector(sel string) error {
	if strings.TrimSpace(sel) == "" {
		return fmt.Errorf("a selector is required (e.g. version=\"canary\")")
	}
	if _, err := promParser.ParseMetricSelector("{" + sel + "}"); err != nil {
		return fmt.Errorf("not a label matcher list: %s", oneLine(err.Error()))
	}
	return nil
}

// splitAlert recognises an alert-form `VECTOR OP NUMBER` (or `NUMBER OP
// VECTOR`) filter, so that an empty VECTOR reads as no data.
func splitAlert(expr parser.Expr) *AlertCompare {
	for {
		p, ok := expr.(*parser.ParenExpr)
		if !ok {
			break
		}
		expr = p.Expr
	}
	be, ok := expr.(*parser.BinaryExpr)
	if !ok || !be.Op.IsComparisonOperator() || be.ReturnBool {
		return nil
	}
	op := be.Op.String()
	if n, ok := numberOf(be.RHS); ok && be.LHS.Type() == parser.ValueTypeVector {
		return &AlertCompare{Vector: be.LHS.String(), Op: op, Threshold: n}
	}
	if n, ok := numberOf(be.LHS); ok && be.RHS.Type() == parser.ValueTypeVector {
		flipped := map[string]string{">": "<", "<": ">", ">=": "<=", "<=": ">=", "==": "==", "!=": "!="}[op]
		return &AlertCompare{Vector: be.RHS.String(), Op: flipped, Threshold: n}
	}
	return nil
}

func numberOf(e parser.Expr) (float64, bool) {
	for {
		p, ok := e.(*parser.ParenExpr)
		if !ok {
			break
		}
		e = p.Expr
	}
	switch n := e.(type) {
	case *parser.NumberLiteral:
		return n.Val, true
	case *parser.UnaryExpr:
		if v, ok := numberOf(n.Expr); ok && n.Op == parser.SUB {
			return -v, true
		}
	}
	return 0, false
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
