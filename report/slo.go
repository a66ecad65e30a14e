package report

import (
	"time"

	rewind "github.com/rewind-sre/rewind"
)

// The seed's rollback targets, exported for the pages that show a rollback
// against them: first violating sample → decision within DetectionSLO,
// decision → recovery verified within ExecutionSLO.
const (
	DetectionSLO = detectionSLO
	ExecutionSLO = executionSLO
)

// FirstViolation is the earliest activeAt of a decision's firing triggers:
// where the detection time (DetectionSLO) starts; zero without one.
func FirstViolation(d *rewind.Decision) time.Time { return firstViolation(d) }
