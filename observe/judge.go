package observe

import (
	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
)

func judgeCounts(q *querier, t *policy.Trigger, o *rewind.Observation) {
	o.Outcome, o.Reason = rewind.OutcomeError, "judge form: not available yet"
}
