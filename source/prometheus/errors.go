package prometheus

import (
	"fmt"

	"github.com/rewind-sre/rewind"
)

// Kind classifies why a query failed. Callers treat every kind the same way
// (the trigger is degraded, never given a value); the kind is for metrics
// and for the operator reading the reason.
type Kind string

const (
	KindRequest     Kind = "request"     // invalid arguments: no request was sent
	KindTimeout     Kind = "timeout"     // no answer before the deadline
	KindCanceled    Kind = "canceled"    // the caller's context was canceled
	KindUnreachable Kind = "unreachable" // connection refused, DNS, TLS, reset
	KindHTTP        Kind = "http"        // non-2xx status (ErrorType set when the body says why)
	KindAPI         Kind = "api"         // "status": "error" in a 2xx answer
	KindPartial     Kind = "partial"     // warnings or a partial response
	KindDecode      Kind = "decode"      // the body is not the documented JSON
	KindResultType  Kind = "result-type" // a result the caller cannot use
	KindTooLarge    Kind = "too-large"   // a body or a result over Rewind's bounds
	KindBackoff     Kind = "backoff"     // not sent: the endpoint is overloaded or down, Rewind waits
)

// Error is a failed query. errors.Is(err, rewind.ErrQuery) holds for every
// Error, and errors.Is also reaches the cause (e.g. context.DeadlineExceeded).
//
// The message names the query and the reason. It never contains a bearer
// token or password: the transport reads them from files, and text that a
// server sends back (error bodies, warnings) is scrubbed of them before it
// becomes a Reason, in case a proxy echoes the Authorization header.
type Error struct {
	Query     string // the PromQL expression as sent
	Kind      Kind
	Status    int    // HTTP status code, 0 when no response arrived
	ErrorType string // Prometheus "errorType" (bad_data, timeout, execution, ...), if any
	Reason    string // human-readable reason
	Err       error  // underlying cause, may be nil
}

func (e *Error) Error() string {
	return fmt.Sprintf("query %q failed: %s", e.Query, e.Reason)
}

// Unwrap returns rewind.ErrQuery and the cause, so errors.Is finds both.
// An Error that says the endpoint is overloaded or failing (or backed off
// for that) also unwraps to rewind.ErrUnavailable.
func (e *Error) Unwrap() []error {
	out := []error{rewind.ErrQuery}
	if e.Kind == KindBackoff || overloaded(e) {
		out = append(out, rewind.ErrUnavailable)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

func queryError(query string, kind Kind, format string, args ...any) *Error {
	return &Error{Query: query, Kind: kind, Reason: fmt.Sprintf(format, args...)}
}
