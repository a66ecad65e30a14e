package report

// The seed's rollback targets, exported for the pages that show a rollback
// against them: first violating sample → decision within DetectionSLO,
// decision → recovery verified within ExecutionSLO.
const (
	DetectionSLO = detectionSLO
	ExecutionSLO = executionSLO
)
