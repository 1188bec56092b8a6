package protocol

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error this package returns wraps one of them;
// test with errors.Is, and map to an ASP error code with ErrorCode.
var (
	// Encoding and well-formedness (code bad_request).
	ErrMalformed     = errors.New("protocol: malformed")
	ErrNonCanonical  = errors.New("protocol: non-canonical encoding")
	ErrTooLarge      = errors.New("protocol: too large")
	ErrFloat         = errors.New("protocol: number where a decimal string belongs")
	ErrBadDecimal    = errors.New("protocol: bad decimal")
	ErrBadKey        = errors.New("protocol: bad key")
	ErrBadPeerID     = errors.New("protocol: bad peer id")
	ErrBadAgentID    = errors.New("protocol: bad agent id")
	ErrVersion       = errors.New("protocol: unsupported version")
	ErrWrongSession  = errors.New("protocol: envelope belongs to another session")
	ErrBadReference  = errors.New("protocol: reference names no suitable message")
	ErrSequenceGap   = errors.New("protocol: sequence number skips ahead")
	ErrTimeRegressed = errors.New("protocol: timestamp precedes the previous message")

	// Authentication (codes invalid_signature and unauthorized).
	ErrBadSignature       = errors.New("protocol: bad signature")
	ErrBadHash            = errors.New("protocol: integrity hash does not match content")
	ErrBadCertificate     = errors.New("protocol: bad certificate")
	ErrCertificateExpired = errors.New("protocol: certificate expired")
	ErrNotParty           = errors.New("protocol: not a party")

	// Chain and delivery (codes duplicate, replay, conflict, timeout).
	ErrDuplicate     = errors.New("protocol: message already applied")
	ErrReplay        = errors.New("protocol: sequence number or message id reused")
	ErrChainMismatch = errors.New("protocol: previousHash is not the session head")
	ErrNotFresh      = errors.New("protocol: timestamp outside the freshness window")
	ErrTimeout       = errors.New("protocol: response window expired")

	// Legality (codes invalid_transition, stale_offer, escalation_required).
	ErrInvalidTransition = errors.New("protocol: invalid transition")
	ErrOwnOffer          = errors.New("protocol: a party cannot answer its own offer")
	ErrAlreadyAccepted   = errors.New("protocol: offer already accepted")
	ErrSessionClosed     = errors.New("protocol: session is over")
	ErrStaleOffer        = errors.New("protocol: offer is no longer open")
	ErrEscalated         = errors.New("protocol: session is escalated")
	ErrPolicyViolation   = errors.New("protocol: policy violation")

	// Commitments.
	ErrCommitmentState    = errors.New("protocol: action not allowed in the commitment's state")
	ErrWrongCommitment    = errors.New("protocol: action or receipt names another commitment")
	ErrMissingSignature   = errors.New("protocol: a required signature is missing")
	ErrNotArbiter         = errors.New("protocol: signer may not resolve this dispute")
	ErrReceiptOrg         = errors.New("protocol: receipt from an organisation that is not a party")
	ErrUnreceipted        = errors.New("protocol: commitment lacks a party organisation's receipt")
	ErrDuplicateSignature = errors.New("protocol: signer signed twice")

	// Refusals of a party's policy or capacity (codes budget_exceeded,
	// capacity_unavailable, schema_unsupported): returned by the layers
	// above, which decide them, so that every refusal has one code.
	ErrBudgetExceeded      = errors.New("protocol: budget exceeded")
	ErrCapacityUnavailable = errors.New("protocol: capacity unavailable")
	ErrSchemaUnsupported   = errors.New("protocol: body schema not supported")

	// Obligations and disputes (docs/disputes.md).
	ErrArbiterNotThirdParty = errors.New("protocol: the arbiter must be an agent of a third organisation")
	ErrBadPenalty           = errors.New("protocol: penalty cannot be computed")
	ErrNoObligation         = errors.New("protocol: the commitment has no such obligation")
	ErrDuplicateDispute     = errors.New("protocol: a dispute on this obligation and ground was already filed")
	ErrWrongDispute         = errors.New("protocol: record names another dispute or commitment")
	ErrDisputeClosed        = errors.New("protocol: dispute is closed")
	ErrDisputeStep          = errors.New("protocol: step not allowed in the dispute's state")
	ErrBadEvidence          = errors.New("protocol: evidence does not verify")
)

// ASP error codes, as carried in REJECT bodies and API error answers.
const (
	CodeBadRequest         = "bad_request"
	CodeInvalidSignature   = "invalid_signature"
	CodeUnauthorized       = "unauthorized"
	CodeDuplicate          = "duplicate"
	CodeReplay             = "replay"
	CodeConflict           = "conflict"
	CodeTimeout            = "timeout"
	CodeInvalidTransition  = "invalid_transition"
	CodeStaleOffer         = "stale_offer"
	CodeEscalationRequired = "escalation_required"
	CodePolicyViolation    = "policy_violation"
	CodeInternal           = "internal"

	CodeBudgetExceeded      = "budget_exceeded"      // the move would exceed the agent's budget
	CodeCapacityUnavailable = "capacity_unavailable" // the resource cannot be supplied now
	CodeSchemaUnsupported   = "schema_unsupported"   // a body type or schema the receiver does not handle
	CodeUnspecified         = "unspecified"          // a refusal that gives no reason
	CodeBusy                = "busy"                 // the peer is sending in the same session right now
	CodeUnavailable         = "unavailable"          // the service is closed or not ready
	CodePending             = "pending"              // the previous move is recorded, not yet acknowledged, and being resent
	CodeNotFound            = "not_found"            // no such agent, session or commitment at the answering node
	CodeEquivocation        = "equivocation"         // the organisation's log signed two histories (a verified equivocation proof)
)

// codes lists every ASP code, each once, with whether a refusal with it is
// retryable: it is about the moment (the peer's load, capacity or a time
// window), not the request, so the same operation tried again later may
// succeed. Every other refusal stands until the request changes.
// docs/protocol.md §7 lists the same codes and flags (a test holds them
// to it).
var codes = []struct {
	code      string
	retryable bool
}{
	{CodeBadRequest, false},
	{CodeInvalidSignature, false},
	{CodeUnauthorized, false},
	{CodeDuplicate, false},
	{CodeReplay, false},
	{CodeConflict, false},
	{CodeTimeout, true},
	{CodeInvalidTransition, false},
	{CodeStaleOffer, false},
	{CodeEscalationRequired, false},
	{CodePolicyViolation, false},
	{CodeBudgetExceeded, false},
	{CodeCapacityUnavailable, true},
	{CodeSchemaUnsupported, false},
	{CodeBusy, true},
	{CodeUnavailable, true},
	{CodePending, true},
	{CodeNotFound, false},
	{CodeEquivocation, false},
	{CodeUnspecified, false},
	{CodeInternal, false},
}

// Retryable reports whether a refusal with the ASP code may succeed if the
// same operation is tried again later: true for timeout, busy, pending,
// unavailable and capacity_unavailable; false for every other code,
// including unknown ones.
func Retryable(code string) bool {
	for _, c := range codes {
		if c.code == code {
			return c.retryable
		}
	}
	return false
}

var codeTable = []struct {
	err  error
	code string
}{
	// Most specific first: some errors wrap two sentinels.
	{ErrDuplicate, CodeDuplicate},
	{ErrReplay, CodeReplay},
	{ErrChainMismatch, CodeConflict},
	{ErrBadSignature, CodeInvalidSignature},
	{ErrBadHash, CodeInvalidSignature},
	{ErrMissingSignature, CodeUnauthorized},
	{ErrDuplicateSignature, CodeBadRequest},
	{ErrBadCertificate, CodeUnauthorized},
	{ErrCertificateExpired, CodeUnauthorized},
	{ErrNotParty, CodeUnauthorized},
	{ErrNotArbiter, CodeUnauthorized},
	{ErrReceiptOrg, CodeUnauthorized},
	{ErrUnreceipted, CodeUnauthorized},
	{ErrNotFresh, CodeTimeout},
	{ErrTimeout, CodeTimeout},
	{ErrStaleOffer, CodeStaleOffer},
	{ErrEscalated, CodeEscalationRequired},
	{ErrPolicyViolation, CodePolicyViolation},
	{ErrInvalidTransition, CodeInvalidTransition},
	{ErrOwnOffer, CodeInvalidTransition},
	{ErrAlreadyAccepted, CodeInvalidTransition},
	{ErrSessionClosed, CodeInvalidTransition},
	{ErrCommitmentState, CodeInvalidTransition},
	{ErrMalformed, CodeBadRequest},
	{ErrNonCanonical, CodeBadRequest},
	{ErrTooLarge, CodeBadRequest},
	{ErrFloat, CodeBadRequest},
	{ErrBadDecimal, CodeBadRequest},
	{ErrBadKey, CodeBadRequest},
	{ErrBadPeerID, CodeBadRequest},
	{ErrBadAgentID, CodeBadRequest},
	{ErrVersion, CodeBadRequest},
	{ErrWrongSession, CodeBadRequest},
	{ErrBadReference, CodeBadRequest},
	{ErrSequenceGap, CodeBadRequest},
	{ErrTimeRegressed, CodeBadRequest},
	{ErrWrongCommitment, CodeBadRequest},
	{ErrBudgetExceeded, CodeBudgetExceeded},
	{ErrCapacityUnavailable, CodeCapacityUnavailable},
	{ErrSchemaUnsupported, CodeSchemaUnsupported},
	{ErrArbiterNotThirdParty, CodePolicyViolation},
	{ErrBadPenalty, CodeBadRequest},
	{ErrNoObligation, CodeBadRequest},
	{ErrDuplicateDispute, CodeDuplicate},
	{ErrWrongDispute, CodeBadRequest},
	{ErrDisputeClosed, CodeInvalidTransition},
	{ErrDisputeStep, CodeInvalidTransition},
	{ErrBadEvidence, CodeInvalidSignature},
}

// ErrorCode returns the ASP error code for err: "" for nil, one of the
// Code constants for an error of this package, and "internal" otherwise.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	for _, c := range codeTable {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return CodeInternal
}

// ReplayError reports the first envelope of a transcript that Replay
// refused. It wraps the refusal.
type ReplayError struct {
	Index     int    // position in the transcript, from 0
	MessageID string // the envelope's messageId, if it had one
	Err       error
}

func (e *ReplayError) Error() string {
	return fmt.Sprintf("replay: envelope %d (%s): %v", e.Index, e.MessageID, e.Err)
}

// Unwrap returns the refusal.
func (e *ReplayError) Unwrap() error { return e.Err }
