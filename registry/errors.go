package registry

import "errors"

// Sentinel errors. Test for them with errors.Is. Every error a card check
// returns wraps exactly one of ErrMalformed, ErrForged, ErrExpired,
// ErrOversized or ErrReplayed; RejectReason names it for metrics.
var (
	// ErrMalformed: the bytes are not a canonical card encoding.
	ErrMalformed = errors.New("registry: malformed card")
	// ErrForged: a signature, certificate or binding does not check out.
	ErrForged = errors.New("registry: forged card")
	// ErrExpired: the card or its certificate is past its notAfter.
	ErrExpired = errors.New("registry: expired card")
	// ErrOversized: the card exceeds MaxCardSize or a field limit.
	ErrOversized = errors.New("registry: oversized card")
	// ErrReplayed: a valid card presented where it does not belong — under
	// another agent's key, by a peer that is not its organization, or older
	// than a version already seen.
	ErrReplayed = errors.New("registry: replayed card")

	// ErrNotFound: no valid card is known for the agent, or it was withdrawn.
	ErrNotFound = errors.New("registry: agent not found")
	// ErrBadCapability: a capability name is not a dotted lowercase name.
	ErrBadCapability = errors.New("registry: bad capability name")
	// ErrNotAnnounced: the card is published locally (served over
	// ProtocolID) but could not be put on the DHT yet; Run retries.
	ErrNotAnnounced = errors.New("registry: not announced on the DHT")
	// ErrClosed: the registry was closed.
	ErrClosed = errors.New("registry: closed")
)

// Reasons a card is rejected, as counted in the
// asp_registry_cards_rejected_total{reason} metric.
const (
	ReasonMalformed = "malformed"
	ReasonForged    = "forged"
	ReasonExpired   = "expired"
	ReasonOversized = "oversized"
	ReasonReplayed  = "replayed"
)

// RejectReason returns the metric reason for an error from a card check,
// or "" if err is not a rejection.
func RejectReason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrOversized):
		return ReasonOversized
	case errors.Is(err, ErrExpired):
		return ReasonExpired
	case errors.Is(err, ErrReplayed):
		return ReasonReplayed
	case errors.Is(err, ErrForged):
		return ReasonForged
	case errors.Is(err, ErrMalformed):
		return ReasonMalformed
	}
	return ""
}
