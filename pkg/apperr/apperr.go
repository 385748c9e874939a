// Package apperr defines mmsgate's one coded error type, its classes, and
// the one table that maps a code to an HTTP status. What each Skycore code
// means lives with the vendor, in pkg/skycore.
package apperr

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Code is a Skycore error code ("E110") or one of mmsgate's own codes below.
type Code string

// mmsgate's own codes. Vendor codes are used as they come ("E104").
const (
	CodeInternal     Code = "INTERNAL"      // a bug or an unexpected error
	CodeTimeout      Code = "TIMEOUT"       // the call to Skycore ran out of time
	CodeNetwork      Code = "NETWORK"       // connection refused, reset, truncated body
	CodeNoTrackingID Code = "NO_TRACKINGID" // Success without TRACKINGID: may have been queued, never resent
	CodeForbidden    Code = "FORBIDDEN"     // postback token wrong or missing
	CodeMethod       Code = "METHOD"        // postback with a method other than POST
	CodeTooLarge     Code = "TOO_LARGE"     // postback body over the limit
	CodeMalformed    Code = "MALFORMED"     // postback that can never be processed
	CodeUnavailable  Code = "UNAVAILABLE"   // a dependency (DynamoDB, SQS, Secrets Manager) failed
	CodeBusy         Code = "BUSY"          // the same item is being processed elsewhere right now
	CodeConflict     Code = "CONFLICT"      // a record already says something else (a tracking id linked to another id)
	CodeStore        Code = "STORE"         // DynamoDB refuses the call for good (validation, access, missing table)
	CodeInDoubt      Code = "INDOUBT"       // a call that may have reached Skycore: waiting for its postback
	// CodeAmbiguous: Skycore's answer says it took the request (Success, a
	// tracking id) and something else too (an error code, another STATUS, an
	// odd form, over the size cap): in doubt, as TIMEOUT.
	CodeAmbiguous Code = "AMBIGUOUS"
	CodeExpiresAt Code = "EXPIRES_AT" // the request's expiresAt passed before Skycore accepted it
)

// HTTPCode is the code for an unusable HTTP answer with the given status,
// for example HTTP_500.
func HTTPCode(status int) Code { return Code(fmt.Sprintf("HTTP_%d", status)) }

// Class says what to do with a failed message. Do not reorder. The zero
// value is Unclassified, one explicit class: callers treat it as Retry, so
// that nothing is thrown away because nobody classified it.
type Class uint8

const (
	Unclassified Class = iota // nobody said: retried, and logged as such
	Permanent                 // this message as built can never succeed
	Retry                     // transient: try the same message again later
	Config                    // the account or deployment is wrong: wait long, alert
)

func (c Class) String() string {
	return [...]string{"unclassified", "permanent", "retry", "config"}[c]
}

// Error is the one coded error of mmsgate.
type Error struct {
	Code    Code
	Class   Class
	Op      string        // where it happened, e.g. "skycore.SendSavedMMS"
	Field   string        // the request field at fault, e.g. "vcard.phones[1].label"
	Message string        // for people; never holds a secret
	Wait    time.Duration // the least time before a retry is useful (E106's X seconds)
	Err     error         // the cause, logged, never shown to callers
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Code))
	if e.Field != "" {
		b.WriteString(" ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Message)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Invalid is a permanent rejection of one request field, found before any
// network call.
func Invalid(code Code, field, format string, args ...any) *Error {
	return &Error{Code: code, Class: Permanent, Op: "sendreq.Validate", Field: field, Message: fmt.Sprintf(format, args...)}
}

// As returns the first *Error in err's tree.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// CodeOf returns the code of the first *Error in err, or CodeInternal.
func CodeOf(err error) Code {
	if e, ok := As(err); ok {
		return e.Code
	}
	return CodeInternal
}

// ClassOf returns the class of the first *Error in err; Unclassified for
// anything else (a bug or an unknown failure).
func ClassOf(err error) Class {
	if e, ok := As(err); ok {
		return e.Class
	}
	return Unclassified
}

// Transient reports whether err is worth retrying as it is: Retry, or
// nobody classified it.
func Transient(err error) bool {
	c := ClassOf(err)
	return c == Retry || c == Unclassified
}

// All lists every *Error in err's tree, in order (validation joins them).
func All(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if e, ok := err.(*Error); ok {
			out = append(out, e)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, c := range u.Unwrap() {
				walk(c)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// Join joins validation errors; nil when there are none.
func Join(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	list := make([]error, len(errs))
	for i, e := range errs {
		list[i] = e
	}
	return joined(list)
}

// joined prints its errors on one line, so that an event's error field stays
// readable.
type joined []error

func (j joined) Error() string {
	parts := make([]string, len(j))
	for i, e := range j {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

func (j joined) Unwrap() []error { return j }
