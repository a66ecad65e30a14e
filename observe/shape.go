package observe

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// This file finds the queries of many systems that one query can answer,
// and writes that query. Two resolved PromQL strings have the same shape
// when their ASTs are identical but for the values of equality label
// matchers: typically the canary and baseline queries of every system of a
// policy, which differ only in system="…" and version="…". The labels whose
// values differ (L) tell the members apart. The grouped query selects every
// member's series with one set matcher per label of L, keeps L through
// every aggregation (by) and binary operation (on / ignoring), and so
// returns, for each member, exactly its own result with L added; the
// fan-out picks each member's series by their L values and removes the L
// labels that the member's own result would not carry.
//
// Only shapes proven to commute with that restriction are grouped: a
// whitelist of node types, aggregations and functions, each evaluated per
// series or per group (see rewrite). Anything else (without, topk,
// count_values, absent, label_replace, vector(), group_left, subqueries,
// scalar results, ...) keeps one query per member.

var promParser = parser.NewParser(parser.Options{})

// maxGroupLabels bounds L: more distinguishing labels than this is not a
// policy of many similar systems.
const maxGroupLabels = 6

// abstraction is a parsed query with the values of its equality matchers
// taken out.
type abstraction struct {
	key    string   // the AST printed with every abstracted value blanked
	names  []string // the abstracted matchers' label names, in walk order
	values []string // and their values
	vector bool     // the query gives an instant vector
}

// abstract parses query and takes the values of its equality matchers out.
func abstract(query string) (abstraction, error) {
	expr, err := promParser.ParseExpr(query)
	if err != nil {
		return abstraction{}, err
	}
	var a abstraction
	a.vector = expr.Type() == parser.ValueTypeVector
	eachEquality(expr, func(m **labels.Matcher) {
		a.names = append(a.names, (*m).Name)
		a.values = append(a.values, (*m).Value)
		*m = &labels.Matcher{Type: labels.MatchEqual, Name: (*m).Name, Value: "\x00"}
	})
	a.key = expr.String()
	return a, nil
}

// eachEquality calls f with every equality matcher of a label (not the
// metric name) of every selector of expr, in a fixed order.
func eachEquality(expr parser.Expr, f func(m **labels.Matcher)) {
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		// The order in which the policy wrote the matchers does not matter.
		slices.SortStableFunc(vs.LabelMatchers, func(a, b *labels.Matcher) int {
			return cmp.Or(strings.Compare(a.Name, b.Name), int(a.Type)-int(b.Type))
		})
		for i, m := range vs.LabelMatchers {
			if m.Type == labels.MatchEqual && m.Name != labels.MetricName {
				f(&vs.LabelMatchers[i])
			}
		}
		return nil
	})
}

// shapePlan is how the members of one shape are grouped: the labels that
// tell them apart, and which of them each member's own result carries.
type shapePlan struct {
	template string   // one member's query
	labels   []string // L, sorted
	strip    []string // L labels that a member's own result does not carry
}

// planShape decides whether the members (queries with the same key) can be
// answered by one query, and by which labels. It returns an error naming
// the reason when they cannot.
func planShape(members []abstraction, queries []string) (*shapePlan, error) {
	first := members[0]
	if !first.vector {
		return nil, errors.New("not an instant vector")
	}
	for _, m := range members[1:] {
		if !slices.Equal(m.names, first.names) {
			return nil, errors.New("the matchers differ")
		}
	}
	varying := map[string]bool{}
	for p := range first.names {
		for _, m := range members[1:] {
			if m.values[p] != first.values[p] {
				varying[first.names[p]] = true
				break
			}
		}
	}
	L := make([]string, 0, len(varying))
	for l := range varying {
		L = append(L, l)
	}
	slices.Sort(L)
	switch {
	case len(L) > maxGroupLabels:
		return nil, fmt.Errorf("%d labels differ", len(L))
	case slices.Contains(L, "le"):
		return nil, errors.New("the le label differs")
	}
	// Within a member, every matcher of a label of L has one value.
	for _, m := range members {
		val := map[string]string{}
		for p, n := range m.names {
			if !varying[n] {
				continue
			}
			if v, ok := val[n]; ok && v != m.values[p] {
				return nil, fmt.Errorf("label %s has two values in one query", n)
			}
			val[n] = m.values[p]
		}
	}
	expr, err := promParser.ParseExpr(queries[0])
	if err != nil {
		return nil, err
	}
	g := grouper{labels: L}
	kept, err := g.expr(expr)
	if err != nil {
		return nil, err
	}
	sp := &shapePlan{template: queries[0], labels: L}
	for i, l := range L {
		if kept&(1<<i) == 0 {
			sp.strip = append(sp.strip, l)
		}
	}
	return sp, nil
}

// query writes the grouped query for members whose values of L are given
// (values[j][i] is member j's value of L[i]).
func (sp *shapePlan) query(values [][]string) (string, error) {
	expr, err := promParser.ParseExpr(sp.template)
	if err != nil {
		return "", err
	}
	g := grouper{labels: sp.labels}
	if _, err := g.expr(expr); err != nil { // rewrites by/on/ignoring
		return "", err
	}
	matchers := make(map[string]*labels.Matcher, len(sp.labels))
	for i, l := range sp.labels {
		set := map[string]bool{}
		for _, v := range values {
			set[v[i]] = true
		}
		vs := make([]string, 0, len(set))
		for v := range set {
			vs = append(vs, v)
		}
		slices.Sort(vs)
		if len(vs) == 1 {
			matchers[l] = &labels.Matcher{Type: labels.MatchEqual, Name: l, Value: vs[0]}
			continue
		}
		for k, v := range vs {
			vs[k] = regexp.QuoteMeta(v)
		}
		m, err := labels.NewMatcher(labels.MatchRegexp, l, strings.Join(vs, "|"))
		if err != nil {
			return "", err
		}
		matchers[l] = m
	}
	eachEquality(expr, func(m **labels.Matcher) {
		if r, ok := matchers[(*m).Name]; ok {
			*m = r
		}
	})
	return expr.String(), nil
}

// grouper checks an AST node by node against the whitelist and rewrites
// it to keep the labels L apart. expr returns the set (a bit per label of
// L) of L labels that one member's own result carries; the rewritten node
// always carries all of L, with the member's values.
type grouper struct {
	labels []string
}

func (g *grouper) all() uint { return 1<<len(g.labels) - 1 }

// mask is the set of L labels among names.
func (g *grouper) mask(names []string) uint {
	var m uint
	for i, l := range g.labels {
		if slices.Contains(names, l) {
			m |= 1 << i
		}
	}
	return m
}

// Aggregations evaluated group by group: with L added to "by", the groups
// of one member are exactly its own groups.
var groupwiseAggregations = map[parser.ItemType]bool{
	parser.SUM: true, parser.AVG: true, parser.MIN: true, parser.MAX: true, parser.COUNT: true,
	parser.GROUP: true, parser.STDDEV: true, parser.STDVAR: true, parser.QUANTILE: true,
}

// Functions evaluated series by series that keep every label but the
// metric name (histogram_quantile drops le, never in L).
var perSeriesFunctions = map[string]bool{
	"rate": true, "irate": true, "increase": true, "delta": true, "idelta": true, "deriv": true,
	"resets": true, "changes": true, "predict_linear": true, "timestamp": true,
	"avg_over_time": true, "min_over_time": true, "max_over_time": true, "sum_over_time": true,
	"count_over_time": true, "last_over_time": true, "present_over_time": true,
	"stddev_over_time": true, "stdvar_over_time": true, "quantile_over_time": true,
	"abs": true, "ceil": true, "floor": true, "round": true, "exp": true, "ln": true,
	"log2": true, "log10": true, "sqrt": true, "sgn": true,
	"clamp": true, "clamp_min": true, "clamp_max": true, "histogram_quantile": true,
}

func (g *grouper) expr(e parser.Expr) (uint, error) {
	switch n := e.(type) {
	case *parser.ParenExpr:
		return g.expr(n.Expr)
	case *parser.VectorSelector:
		return g.selector(n)
	case *parser.MatrixSelector:
		vs, ok := n.VectorSelector.(*parser.VectorSelector)
		if !ok {
			return 0, errors.New("a range of something other than a selector")
		}
		return g.selector(vs)
	case *parser.UnaryExpr:
		if n.Expr.Type() != parser.ValueTypeVector {
			return 0, errors.New("a scalar expression")
		}
		return g.expr(n.Expr)
	case *parser.Call:
		return g.call(n)
	case *parser.AggregateExpr:
		return g.aggregate(n)
	case *parser.BinaryExpr:
		return g.binary(n)
	}
	return 0, fmt.Errorf("%T is not grouped", e)
}

func (g *grouper) selector(vs *parser.VectorSelector) (uint, error) {
	if vs.Anchored || vs.Smoothed || vs.BypassEmptyMatcherCheck {
		return 0, errors.New("an experimental selector")
	}
	var have []string
	for _, m := range vs.LabelMatchers {
		if m.Type == labels.MatchEqual {
			have = append(have, m.Name)
		}
	}
	if g.mask(have) != g.all() {
		return 0, fmt.Errorf("selector %s does not name every label of %v", vs, g.labels)
	}
	return g.all(), nil
}

func (g *grouper) call(c *parser.Call) (uint, error) {
	if !perSeriesFunctions[c.Func.Name] {
		return 0, fmt.Errorf("function %s is not grouped", c.Func.Name)
	}
	var kept uint
	vectors := 0
	for _, a := range c.Args {
		switch a.Type() {
		case parser.ValueTypeVector, parser.ValueTypeMatrix:
			k, err := g.expr(a)
			if err != nil {
				return 0, err
			}
			kept, vectors = k, vectors+1
		default:
			if !constant(a) {
				return 0, fmt.Errorf("argument %s of %s is not a constant", a, c.Func.Name)
			}
		}
	}
	if vectors != 1 {
		return 0, fmt.Errorf("%s has %d vector arguments", c.Func.Name, vectors)
	}
	return kept, nil
}

func (g *grouper) aggregate(a *parser.AggregateExpr) (uint, error) {
	switch {
	case !groupwiseAggregations[a.Op]:
		return 0, fmt.Errorf("aggregation %s is not grouped", a.Op)
	case a.Without:
		return 0, errors.New("without (…) is not grouped")
	case a.Param != nil && !constant(a.Param):
		return 0, errors.New("a parameter that is not a constant")
	}
	k, err := g.expr(a.Expr)
	if err != nil {
		return 0, err
	}
	kept := k & g.mask(a.Grouping)
	a.Grouping = union(a.Grouping, g.labels)
	return kept, nil
}

func (g *grouper) binary(b *parser.BinaryExpr) (uint, error) {
	lv, rv := b.LHS.Type() == parser.ValueTypeVector, b.RHS.Type() == parser.ValueTypeVector
	switch {
	case lv && !rv:
		if !constant(b.RHS) {
			return 0, errors.New("a scalar side that is not a constant")
		}
		return g.expr(b.LHS)
	case rv && !lv:
		if !constant(b.LHS) {
			return 0, errors.New("a scalar side that is not a constant")
		}
		return g.expr(b.RHS)
	case !lv && !rv:
		return 0, errors.New("a scalar expression")
	}
	vm := b.VectorMatching
	if vm == nil {
		return 0, errors.New("vector operands without matching")
	}
	switch {
	case vm.Card == parser.CardOneToMany || vm.Card == parser.CardManyToOne || len(vm.Include) > 0:
		return 0, errors.New("group_left/group_right is not grouped")
	case vm.FillValues.LHS != nil || vm.FillValues.RHS != nil:
		return 0, errors.New("fill modifiers are not grouped")
	}
	kl, err := g.expr(b.LHS)
	if err != nil {
		return 0, err
	}
	kr, err := g.expr(b.RHS)
	if err != nil {
		return 0, err
	}
	// A member's own match compares the labels of the signature (on: those
	// listed; else all but those ignored). An L label in the signature must
	// be carried by both operands or by neither, or the member's own match
	// would fail where the grouped one, carrying L on both sides, succeeds.
	// Labels of L outside the signature are constant within a member, so
	// adding them to the grouped match changes nothing for it.
	sig := func(k uint) uint {
		if vm.On {
			return k & g.mask(vm.MatchingLabels)
		}
		return k &^ g.mask(vm.MatchingLabels)
	}
	if sig(kl) != sig(kr) || b.Op == parser.LOR && kl != kr {
		return 0, errors.New("the operands carry different labels of the group")
	}
	kept := sig(kl) // one-to-one: the result keeps the signature's labels
	if vm.Card == parser.CardManyToMany {
		kept = kl // and, or, unless: the operands' own series
	}
	if vm.On {
		vm.MatchingLabels = union(vm.MatchingLabels, g.labels)
	} else {
		vm.MatchingLabels = slices.DeleteFunc(slices.Clone(vm.MatchingLabels), func(l string) bool { return slices.Contains(g.labels, l) })
	}
	return kept, nil
}

// constant reports whether e is made of number and string literals only.
func constant(e parser.Expr) bool {
	switch n := e.(type) {
	case *parser.NumberLiteral, *parser.StringLiteral:
		return true
	case *parser.ParenExpr:
		return constant(n.Expr)
	case *parser.UnaryExpr:
		return constant(n.Expr)
	case *parser.BinaryExpr:
		return constant(n.LHS) && constant(n.RHS)
	}
	return false
}

// union is a ∪ b, a's order first.
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, l := range b {
		if !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}
