package api

import (
	"fmt"
	"net/http"
)

// Error codes used by the API, in addition to those protocol.ErrorCode returns.
const (
	CodeBadRequest             = "bad_request"
	CodeUnauthorized           = "unauthorized"
	CodeNotFound               = "not_found"
	CodeInvalidTransition      = "invalid_transition"
	CodeInvalidSignature       = "invalid_signature"
	CodeDuplicate              = "duplicate"
	CodeInsufficientTrustScore = "insufficient_trust_score"
	CodePolicyViolation        = "policy_violation"
	CodeEscalationRequired     = "escalation_required"
	CodeTimeout                = "timeout"
	CodeMethodNotAllowed       = "method_not_allowed"
	CodeUnsupported            = "unsupported"
	CodeUnavailable            = "unavailable"
	CodeInternal               = "internal"
)

// Error is an API error: an HTTP status plus an ASP error code and a
// message safe to show to the client. A Backend returns it to choose the
// answer exactly.
type Error struct {
	Status  int
	Code    string
	Message string
	// Err is the underlying cause, if any; it is not shown to the client.
	Err error
	// SessionID names the session the error is about, if any.
	SessionID string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given status and code.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// BadRequest is 400 bad_request.
func BadRequest(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, CodeBadRequest, format, args...)
}

// Unauthorized is 401 unauthorized: no or an unknown token.
func Unauthorized(format string, args ...any) *Error {
	return Errorf(http.StatusUnauthorized, CodeUnauthorized, format, args...)
}

// Forbidden is 403 unauthorized: a valid token that may not do this.
func Forbidden(format string, args ...any) *Error {
	return Errorf(http.StatusForbidden, CodeUnauthorized, format, args...)
}

// NotFound is 404 not_found.
func NotFound(format string, args ...any) *Error {
	return Errorf(http.StatusNotFound, CodeNotFound, format, args...)
}

// Conflict is 409 with the given code (invalid_transition, duplicate...).
func Conflict(code, format string, args ...any) *Error {
	return Errorf(http.StatusConflict, code, format, args...)
}

// InvalidTransition is 409 invalid_transition.
func InvalidTransition(format string, args ...any) *Error {
	return Conflict(CodeInvalidTransition, format, args...)
}

// Timeout is 504 timeout.
func Timeout(format string, args ...any) *Error {
	return Errorf(http.StatusGatewayTimeout, CodeTimeout, format, args...)
}

// Internal is 500 internal; err is kept for logs and not shown.
func Internal(err error) *Error {
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error", Err: err}
}
