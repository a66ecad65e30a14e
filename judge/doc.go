// Package judge holds the statistics of Rewind's judge trigger form: exact
// tests on request counts and histogram buckets that decide whether a
// canary is worse than its baseline. It is pure: no I/O, no PromQL, no
// clock. Every function accepts any input without panicking; NaN, infinite
// or negative counts, and invalid options, give an insufficient Result with
// the reason in Detail.
//
// # Counts
//
// Counts come from PromQL increase() and are not integers (extrapolation):
// each is rounded to the nearest integer, a bad count above its total is
// clamped to the total, and totals above 2^53 are refused. Below, x is a
// bad count and n a total, subscript c for the canary and b for the
// baseline; p_c and p_b are the underlying proportions; α is
// Options.Alpha; f ≥ 1 is the normalized Options.MinEffect.
//
// # Proportion (two samples)
//
// With Direction Increase the null hypothesis is
//
//	H0: p_c ≤ f·p_b     against   H1: p_c > f·p_b.
//
// The p-value is the larger of two exact conditional tests, so that the
// test rejects only when both do (an intersection–union test, of level α):
//
//   - the one-sided Fisher exact test of p_c ≤ p_b: P(X ≥ x_c) for X
//     hypergeometric, x_c+x_b bad among n_c+n_b requests, n_c drawn (exact
//     under binomial sampling; the normal approximation with continuity
//     correction is used once its variance exceeds 10^6);
//   - when f > 1, the conditional binomial test of the shifted null on the
//     rate ratio: given m = x_c+x_b, x_c ~ Binomial(m, π), and p_c ≤ f·p_b
//     means π ≤ π0 = f·n_c / (f·n_c + n_b); the p-value is
//     P(Binomial(m, π0) ≥ x_c) (exact for Poisson counts, the usual model
//     of rare bad requests; conservative for common ones).
//
// With Direction Decrease (worse when lower) the null is p_c ≥ p_b / f,
// the tails are the lower ones and π0 = n_c / (n_c + f·n_b).
//
// The effect is p̂_c / p̂_b (canary over baseline; +Inf for a zero-error
// baseline and NaN for no bad requests at all). Its interval is the
// Clopper–Pearson interval for π, each tail α (confidence 1 − 2α), mapped
// to the ratio scale by π/(1−π) · n_b/n_c; so its lower bound exceeds f
// exactly when the shifted binomial test rejects at α (above 3 000 bad
// requests on both sides of a bound the interval uses the asymptotic beta
// quantile, within 1e-4 relative). The upper bound is +Inf when the
// baseline has no bad request.
//
// # Worse and holds
//
// Result.Worse is the seed's own measure, without statistics: the effect's
// point estimate, computed from the counts as given (not rounded), strictly
// past f (> f with Increase, < 1/f with Decrease; for the one-sample test
// the share strictly past a; for latency the ratio of the quantiles each
// side's own buckets interpolate, > f) — exactly the seed's condition on the
// same windows. It is what a trigger's hold measures (decide.Assess).
//
// The result holds when it is worse, the p-value is ≤ α and, with
// Increase, the canary has at least 2 bad requests: one bad request never
// holds, however clean the baseline. Against an all-zero baseline the
// p-value is π0^x_c, so steady canary errors are caught once there are
// enough of them.
//
// # Proportion above a threshold (one sample)
//
//	H0: p_c ≤ a   against   H1: p_c > a    (Decrease: p_c ≥ a against p_c < a)
//
// for the threshold a = ProportionAbove's above, by the exact binomial tail
// P(Binomial(n_c, a) ≥ x_c) (Decrease: ≤). The effect is p̂_c itself with
// its Clopper–Pearson interval at confidence 1 − 2α. It holds when it is
// worse (p̂_c strictly beyond a), the p-value is ≤ α and, with Increase,
// x_c ≥ 2.
//
// # Latency (histogram buckets)
//
// Both histograms are normalized as histogram_quantile does: buckets sorted
// by bound, equal bounds merged, negative counts clamped to 0, cumulative
// counts made non-decreasing; a +Inf bucket is required. Only the bounds
// present on both sides are kept, and cumulative counts are rounded. Each
// bucket is one group of tied values. Two one-sided tests are run:
//
//   - rank test, H0: canary and baseline durations have the same
//     distribution, against the canary tending to be slower: Mann–Whitney U
//     (canary-over-baseline pairs, ties counted half), normal approximation
//     with tie-corrected variance n_c·n_b/12·((N+1) − Σ(t³−t)/(N(N−1))) and
//     continuity correction 0.5;
//   - tail test, H0: at most a share 1 − q of canary requests exceeds u,
//     where u is the lowest bucket bound above which at most a share 1 − q
//     of the baseline lies with confidence 1 − α (the one-sided
//     Clopper–Pearson upper bound of the baseline's share above u is at
//     most 1 − q; a baseline too small to place its q-quantile, such as 43
//     requests for q = 0.99, has none), by the exact binomial tail
//     P(Binomial(n_c, 1−q) ≥ k) for k canary requests above u. When no
//     finite bound qualifies there is no tail test (p = 1).
//
// The reported p-value is min(1, 2·min(p_rank, p_tail)) (Bonferroni), so
// it is ≤ α when either test is significant at α/2; a change in spread or
// tail is caught, not only a shift. The effect is the ratio of the
// canary's and the baseline's q-quantiles, each interpolated linearly
// within its bucket as histogram_quantile does. Its interval combines, for
// each side, the histogram quantiles at the Wilson score bounds for q at
// confidence 1 − α (so the ratio's confidence is at least 1 − 2α). It
// holds when the p-value is ≤ α and the effect is ≥ f. Only Direction
// Increase (slower is worse) is supported.
//
// # Insufficient data
//
// A result is insufficient, never holding, when the options are invalid,
// an input is not a count, the baseline has no requests, the canary has
// fewer than Options.MinRequests requests (at least 1), or when even the
// most extreme outcome at the observed request counts could not be
// significant: every canary request bad (Increase) or none (Decrease), or
// every canary request in the +Inf bucket (latency), with the baseline as
// observed; with Increase, fewer than 2 canary requests is also
// insufficient. Result.Needed then holds about the smallest number of
// canary requests in the window at which the test could decide: a canary
// with the observed proportion (or distribution) if its effect is past f,
// else with the most extreme one, and the baseline grown in the same
// proportion (same traffic split, same baseline proportion or
// distribution). It is searched from the normal approximation's answer by
// doubling and bisection to within 1/16 (exact below 16 requests); when
// that answer is above 4 096 requests with at least 100 counted requests
// expected under H0 it is reported itself, rounded up to two significant
// digits. Every call costs at most a few dozen exact tail evaluations.
//
// # Sequential evidence
//
// ProportionEstimate, ProportionAboveEstimate and LatencyEstimate give the
// point estimate (Worse) of a window without a test, for a sequential
// judge, whose evidence is an Evidence: the anytime-valid test of the counts
// of each evaluation interval. Given an interval's requests n (canary) and
// n′ (baseline) and its bad requests m = x + y, x is Binomial(m, π) (exact
// for Poisson bad requests), and p_c ≤ f·p_b means π ≤ π0 = f·n/(f·n + n′).
// For each odds ratio ρ = 1.5^j, j = 1 … 16, the interval multiplies a
// component by ρ^x / (1 − π0 + π0ρ)^m, the likelihood ratio of the log-odds
// shifted by ln ρ, whose conditional expectation is at most 1 under the
// composite null; the equally weighted mixture of the components is a test
// supermartingale. One sample: π0 = a, m = n. Decrease: the baseline's
// share against f·n′/(n + f·n′) (one sample: the uncounted share against
// 1 − a). Latency (AddTail): the requests above a threshold set from the
// previous window (SetBound, QuantileBound), two-sample with f = 1. The
// caller (decide) chooses the intervals before they are seen and begins an
// episode with Begin; the k-th episode of a life is proven when
// 1/(k(k+1)) × the mixture ≥ 1/α, so that, by Ville's inequality and the
// union over episodes, a canary never worse than the null is proven with
// probability at most α over its whole life (docs/judge.md).
package judge
