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
)

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
