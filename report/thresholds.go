package report

import (
	"fmt"
	"strconv"

	"github.com/rewind-sre/rewind/policy"
)

// Thresholds maps each trigger of sys to what its values are held against,
// as people read it: the condition as written (canary > baseline * 1.5),
// the alert form's comparison, or the statistical test's effect and alpha.
// The decision record keeps the values; the thresholds come from the policy.
func Thresholds(sys *policy.System) map[string]string {
	out := make(map[string]string, len(sys.Triggers))
	for _, t := range sys.Triggers {
		out[t.Name] = threshold(t)
	}
	return out
}

func threshold(t *policy.Trigger) string {
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	switch t.Form {
	case policy.FormExpr:
		if t.Alert != nil {
			return fmt.Sprintf("%s %s", t.Alert.Op, g(t.Alert.Threshold))
		}
		return "any series"
	case policy.FormJudge:
		j := t.Judge
		alpha := "α = " + g(j.Alpha)
		if j.Direction == "decrease" {
			alpha += ", decrease"
		}
		switch {
		case j.Test == "latency":
			return fmt.Sprintf("p%s ≥ %s× baseline, %s", g(100*j.Quantile), g(j.MinEffect), alpha)
		case j.Above != nil:
			return fmt.Sprintf("error ratio > %s%%, %s", g(100**j.Above), alpha)
		case j.MinEffect > 0:
			return fmt.Sprintf("error ratio ≥ %s× baseline, %s", g(j.MinEffect), alpha)
		}
		return "error ratio above baseline, " + alpha
	}
	return t.Condition
}
