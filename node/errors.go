package node

import (
	"errors"
	"fmt"

	"github.com/aspnode/asp/protocol"
)

// Error is a refusal by this node: an ASP error code from protocol's code
// table (protocol.ErrorCode, protocol.Retryable), or one of the node's own
// below, and a message safe to show to the agent. The node never chooses
// an HTTP status: node/api maps the code to one.
type Error struct {
	Code    string
	Message string
	// Err is the cause, if any (errors.Is and errors.As see it).
	Err error
}

func (e *Error) Error() string { return e.Message }

// ASPCode reports the error's ASP code.
func (e *Error) ASPCode() string { return e.Code }

func (e *Error) Unwrap() error { return e.Err }

// Codes of the node's own refusals, beside protocol's.
const (
	// codeNotFound: no such agent, session or commitment here (or not one
	// the caller may see).
	codeNotFound = protocol.CodeNotFound
	// codePending: the previous move or action is recorded and being
	// resent; the caller moves again once it is acknowledged.
	codePending = protocol.CodePending
	// codeSuperseded: a refusal a node records itself for a pending move
	// of its own that can no longer enter the session (the counterparty
	// moved first, from the same head). It is never sent.
	codeSuperseded = "superseded"
	// codeBusy: the peer is sending in the same session right now.
	codeBusy = protocol.CodeBusy
)

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func notFound(what, id string) error { return errorf(codeNotFound, "%s %s not found", what, id) }

func badRequest(format string, args ...any) error {
	return errorf(protocol.CodeBadRequest, format, args...)
}

func invalidTransition(format string, args ...any) error {
	return errorf(protocol.CodeInvalidTransition, format, args...)
}

var (
	errDuplicate = errorf(protocol.CodeDuplicate, "already exists")
	// errBusy refuses an incoming move while we are sending in the same
	// session: no one applied it.
	errBusy = errorf(codeBusy, "session busy: concurrent move")
)

// errUndelivered says a move or action is durable here but the
// counterparty has not acknowledged it: it is resent (timeout, retryable).
func errUndelivered(format string, args ...any) error {
	return errorf(protocol.CodeTimeout, format, args...)
}

// RemoteRefusal is a counterparty node's refusal of a request, with its
// ASP code.
type RemoteRefusal struct {
	Code    string
	Message string
}

func (e *RemoteRefusal) Error() string {
	return fmt.Sprintf("counterparty refused: %s: %s", e.Code, e.Message)
}

// ASPCode reports the refusal's ASP error code.
func (e *RemoteRefusal) ASPCode() string { return e.Code }

// codeOf is the ASP code of an error the engine returns or refuses with.
func codeOf(err error) string {
	var c interface{ ASPCode() string }
	if errors.As(err, &c) {
		return c.ASPCode()
	}
	return protocol.ErrorCode(err)
}

// Declined is the counterparty's REJECT of our invitation, with the code it
// gave (policy_violation, insufficient_trust_score, or its own).
type Declined struct {
	Code    string
	Message string
}

func (e *Declined) Error() string { return e.Message }

// ASPCode reports the code the counterparty gave.
func (e *Declined) ASPCode() string { return e.Code }

// Declined marks the error as a refusal to take part (node/api answers 403).
func (e *Declined) Declined() bool { return true }

// sessionErr is an error about a session that exists: node/api shows the
// session's id beside it (an invitation recorded but not acknowledged
// leaves a session the agent can read and close).
type sessionErr struct {
	err error
	id  string
}

func (e *sessionErr) Error() string { return e.err.Error() }

func (e *sessionErr) Unwrap() error { return e.err }

// SessionID is the session the error is about.
func (e *sessionErr) SessionID() string { return e.id }
