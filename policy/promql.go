package policy

import (
	"fmt"
	"regexp"
	"strings"
	"time"

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

// stepQuery rewrites a count query of the judge form (increase() over a
// window) into the counts of one evaluation interval, for a sequential
// judge: every increase(SELECTOR[range]) becomes
//
//	((SELECTOR - SELECTOR offset interval) >= 0)
//
// the per-series difference of the counters between this evaluation and
// the previous one (exact integers, and consecutive evaluations tile time
// without overlap; a series that reset in the interval, or that is missing
// at either end, is left out). Any other range selector is an error: the
// interval's counts cannot be told from it.
//
// It also returns the query's window: the longest range of its increase()
// selectors.
func stepQuery(q string, interval time.Duration) (string, time.Duration, error) {
	expr, err := checkPromQL(q)
	if err != nil {
		return "", 0, err
	}
	var window time.Duration
	out, err := stepRewrite(expr, interval, &window)
	if err != nil {
		return "", 0, err
	}
	if window == 0 {
		return "", 0, fmt.Errorf("sequential: the query has no increase(counter[range]) whose interval counts the test could read")
	}
	s := out.String()
	if _, err := checkPromQL(s); err != nil {
		return "", 0, fmt.Errorf("sequential: rewriting for interval counts gave %s: %v", s, err)
	}
	return s, window, nil
}

func stepRewrite(e parser.Expr, interval time.Duration, window *time.Duration) (parser.Expr, error) {
	var err error
	switch n := e.(type) {
	case *parser.AggregateExpr:
		if n.Expr, err = stepRewrite(n.Expr, interval, window); err == nil && n.Param != nil {
			n.Param, err = stepRewrite(n.Param, interval, window)
		}
	case *parser.BinaryExpr:
		if n.LHS, err = stepRewrite(n.LHS, interval, window); err == nil {
			n.RHS, err = stepRewrite(n.RHS, interval, window)
		}
	case *parser.ParenExpr:
		n.Expr, err = stepRewrite(n.Expr, interval, window)
	case *parser.UnaryExpr:
		n.Expr, err = stepRewrite(n.Expr, interval, window)
	case *parser.Call:
		if n.Func.Name == "increase" && len(n.Args) == 1 {
			if ms, ok := n.Args[0].(*parser.MatrixSelector); ok {
				*window = max(*window, ms.Range)
			}
			return stepDifference(n.Args[0], interval)
		}
		for i := range n.Args {
			if n.Args[i], err = stepRewrite(n.Args[i], interval, window); err != nil {
				break
			}
		}
	case *parser.MatrixSelector, *parser.SubqueryExpr:
		err = fmt.Errorf("sequential: %s is a range outside increase(): the interval's counts cannot be read from it", e)
	}
	return e, err
}

// stepDifference builds ((v - v offset interval) >= 0) from the argument
// of increase().
func stepDifference(arg parser.Expr, interval time.Duration) (parser.Expr, error) {
	ms, ok := arg.(*parser.MatrixSelector)
	if !ok {
		return nil, fmt.Errorf("sequential: increase() of %s: a counter selector with a range is needed", arg)
	}
	vs, ok := ms.VectorSelector.(*parser.VectorSelector)
	if !ok || vs.Timestamp != nil || vs.StartOrEnd != 0 || vs.OriginalOffsetExpr != nil || vs.Anchored || vs.Smoothed {
		return nil, fmt.Errorf("sequential: increase(%s): a plain counter selector (an offset is allowed; @ and modifiers are not) is needed", ms)
	}
	now, past := *vs, *vs
	past.OriginalOffset += interval
	diff := &parser.BinaryExpr{Op: parser.SUB, LHS: &now, RHS: &past, VectorMatching: &parser.VectorMatching{Card: parser.CardOneToOne}}
	return &parser.ParenExpr{Expr: &parser.BinaryExpr{
		Op: parser.GTE, LHS: &parser.ParenExpr{Expr: diff}, RHS: &parser.NumberLiteral{Val: 0},
	}}, nil
}
