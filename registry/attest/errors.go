package attest

import (
	"errors"
	"fmt"

	"github.com/aspnode/asp/protocol"
)

// Sentinel errors. Every error that Decode, Verify and Service.Publish
// return wraps one of them (and, where a protocol check failed, the
// protocol error too); test with errors.Is.
//
// ErrMalformed, ErrForged, ErrNotParty, ErrMismatch and ErrUnreceipted are
// provable: the
// bytes alone show them, whoever checks and whenever. The gossip validator
// rejects them (and GossipSub penalises the sender). ErrStale, ErrDuplicate
// and ErrRateLimited depend on the observer's clock or history; the
// validator ignores them.
var (
	// ErrMalformed marks bytes that do not decode as an attestation or as
	// the envelopes it carries, or fields out of their grammar.
	ErrMalformed = errors.New("attest: malformed attestation")
	// ErrForged marks a signature that does not verify: the attestation's,
	// its certificate's, or the offer's or acceptance's (or their
	// certificates').
	ErrForged = errors.New("attest: forged attestation")
	// ErrNotParty marks an attester who is not a party of the commitment,
	// a subject who is not the other party, or an attester who is the
	// subject.
	ErrNotParty = errors.New("attest: attester or subject is not a party of the commitment")
	// ErrMismatch marks evidence that does not form the named commitment:
	// the acceptance does not accept the offer, or the commitment id
	// derived from them is not CommitmentID, or the attestation predates
	// the commitment.
	ErrMismatch = errors.New("attest: evidence does not form the named commitment")
	// ErrUnreceipted marks evidence without the receipt of every party
	// organisation for the commitment it forms: a receipt missing, naming
	// another commitment (another acceptance of the same offer) or from
	// an organisation that is not a party. Such a commitment may exist
	// only in the attester's signatures (an ACCEPT the other side never
	// received), so it is no evidence about the other side.
	ErrUnreceipted = errors.New("attest: commitment not receipted by both organisations")
	// ErrStale marks an attestation whose time is outside the observer's
	// window: older than the gossip horizon or too far in the future.
	ErrStale = errors.New("attest: attestation time outside the accepted window")
	// ErrDuplicate marks an attestation already seen by a Service.
	ErrDuplicate = errors.New("attest: attestation already seen")
	// ErrRateLimited marks a message over its origin's rate limit.
	ErrRateLimited = errors.New("attest: origin over its rate limit")
	// ErrClosed is returned by a Service after Close, or before Join.
	ErrClosed = errors.New("attest: service not running")
)

// Provable reports whether err proves the attestation bad for every
// observer at every time (ErrMalformed, ErrForged, ErrNotParty,
// ErrMismatch, ErrUnreceipted), which is when the gossip validator rejects
// it.
func Provable(err error) bool {
	return errors.Is(err, ErrMalformed) || errors.Is(err, ErrForged) ||
		errors.Is(err, ErrNotParty) || errors.Is(err, ErrMismatch) || errors.Is(err, ErrUnreceipted)
}

// reason is the metric label of a validation result.
func reason(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrDuplicate):
		return "duplicate"
	case errors.Is(err, ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, ErrStale):
		return "stale"
	case errors.Is(err, ErrForged):
		return "forged"
	case errors.Is(err, ErrNotParty):
		return "not_party"
	case errors.Is(err, ErrUnreceipted):
		return "unreceipted"
	case errors.Is(err, ErrMismatch) && errors.Is(err, protocol.ErrStaleOffer):
		return "late_acceptance"
	case errors.Is(err, ErrMismatch):
		return "mismatch"
	case errors.Is(err, ErrMalformed):
		return "malformed"
	}
	return "other"
}

// classifyEnvelope maps an envelope's verification error to ErrForged
// (authentication) or ErrMalformed (grammar), keeping the protocol error.
func classifyEnvelope(which string, err error) error {
	if errors.Is(err, protocol.ErrBadSignature) || errors.Is(err, protocol.ErrBadHash) ||
		errors.Is(err, protocol.ErrBadCertificate) || errors.Is(err, protocol.ErrCertificateExpired) ||
		errors.Is(err, protocol.ErrBadKey) {
		return fmt.Errorf("%w: %s: %w", ErrForged, which, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrMalformed, which, err)
}
