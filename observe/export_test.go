package observe

import rewind "github.com/rewind-sre/rewind"

// AnswerOf is a member query's share of a batch's answers.
func AnswerOf(a *Answers, query string) (rewind.Vector, error) {
	r, ok := a.results[query]
	if !ok {
		return nil, rewind.ErrQuery
	}
	return r.vec, r.err
}
