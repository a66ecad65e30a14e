// Package montecarlo measures the statistical judge's quality bars
// through the real pipeline: each run generates a history with
// internal/scenario (binomial errors per scrape, lognormal latencies),
// loads it into the embedded TSDB as OpenMetrics text and replays a policy
// over it with backtest.Run, so every number comes from PromQL, the
// observe stage, the judge and the decision state machine as they run live.
//
// Two kinds of experiment are run, each over independent histories whose
// seeds derive from one suite seed (the results do not depend on the number
// of workers or on scheduling):
//
//   - a healthy case replays canary-hours of a canary that is as good as
//     its baseline and counts every rollback episode (a new start of a
//     rollback trigger firing) in each hour after the warm-up;
//   - a fault case makes the canary go bad after the warm-up and a settling
//     period, at a random phase of the evaluation interval, and measures the
//     time from the fault to the first rollback, and the runs that were not
//     rolled back within the hour after it.
//
// The warm-up is the first WarmUp of every history: until then the 5m
// windows of the policy's queries are only partly filled, so no evaluation
// before it is replayed.
package montecarlo
