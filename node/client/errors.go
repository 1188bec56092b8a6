package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
)

// Error is an error answer of the API: the HTTP status and the
// {"error":{"code","message","retryable"}} body node/api writes.
type Error struct {
	// Status is the HTTP status of the answer.
	Status int
	// Code is the ASP error code (api.Code...), or the status text when
	// the answer was not the API's JSON.
	Code string
	// Message is the node's text, for people.
	Message string
	// Retryable says the same request may succeed later unchanged (busy,
	// timeout, unavailable, capacity_unavailable; and a 502, 503 or 504
	// that is not the API's answer).
	Retryable bool
	// SessionID names the session the error is about, when one exists
	// (an invitation recorded but not acknowledged: timeout).
	SessionID string
	// Method and Path are the request's.
	Method, Path string
}

// Error implements error. The text is "METHOD PATH (HTTP status): code:
// message".
func (e *Error) Error() string {
	return fmt.Sprintf("%s %s (HTTP %d): %s: %s", e.Method, e.Path, e.Status, e.Code, e.Message)
}

// Is reports whether target is the sentinel of e's code (ErrNotFound,
// ErrInvalidTransition...).
func (e *Error) Is(target error) bool {
	c, ok := target.(codeError)
	return ok && string(c) == e.Code
}

// As fills an *api.Error target, for code written against the server's
// error type.
func (e *Error) As(target any) bool {
	if p, ok := target.(**api.Error); ok {
		*p = &api.Error{Status: e.Status, Code: e.Code, Message: e.Message, SessionID: e.SessionID}
		return true
	}
	return false
}

// codeError is the type of the sentinels: an ASP error code.
type codeError string

func (c codeError) Error() string { return "asp: " + string(c) }

// Sentinels for the common codes: errors.Is(err, ErrNotFound) holds for an
// *Error with that code.
var (
	ErrBadRequest             error = codeError(api.CodeBadRequest)
	ErrUnauthorized           error = codeError(api.CodeUnauthorized) // 401 (no or unknown token) and 403 (not allowed)
	ErrNotFound               error = codeError(api.CodeNotFound)
	ErrInvalidTransition      error = codeError(api.CodeInvalidTransition) // an illegal move in a session
	ErrDuplicate              error = codeError(api.CodeDuplicate)
	ErrConflict               error = codeError(protocol.CodeConflict)
	ErrTimeout                error = codeError(api.CodeTimeout)
	ErrBusy                   error = codeError(protocol.CodeBusy) // the counterparty is moving in the session: retry
	ErrUnavailable            error = codeError(api.CodeUnavailable)
	ErrInsufficientTrustScore error = codeError(api.CodeInsufficientTrustScore)
	ErrPolicyViolation        error = codeError(api.CodePolicyViolation)
	ErrUnsupported            error = codeError(api.CodeUnsupported)
)

// IsCode reports whether err is an API error with the given code.
func IsCode(err error, code string) bool {
	e := errorsAs(err)
	return e != nil && e.Code == code
}

// IsRetryable reports whether err is an API error whose request may
// succeed later unchanged.
func IsRetryable(err error) bool {
	e := errorsAs(err)
	return e != nil && e.Retryable
}

func errorsAs(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// errorAnswer decodes a non-2xx answer.
func errorAnswer(method, path string, status int, raw []byte) *Error {
	e := &Error{Status: status, Method: method, Path: path}
	var eb api.ErrorResponse
	if json.Unmarshal(raw, &eb) == nil && eb.Error.Code != "" {
		e.Code, e.Message, e.Retryable, e.SessionID = eb.Error.Code, eb.Error.Message, eb.Error.Retryable, eb.Error.SessionID
		return e
	}
	e.Code, e.Message = http.StatusText(status), strings.TrimSpace(string(raw))
	switch status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusTooManyRequests:
		e.Retryable = true
	}
	return e
}
