package ledger

import (
	"fmt"

	"github.com/aspnode/asp/protocol"
)

// VerifyProtocolBody is a VerifyOptions.VerifyEntry for entries recorded
// after the node's conventions (docs/ledger.md):
//
//   - KindMessageSent, KindMessageReceived: the body is a protocol envelope
//     (protocol.EncodeEnvelope); its certificate, hash and sender signature
//     must verify, and the entry's Session, if set, must be its session.
//   - KindCommitment: the body is a commitment (protocol.EncodeCommitment);
//     decoding verifies every signature of its offer, acceptance, receipts
//     and actions; the entry's Commitment, if set, must be its id.
//   - KindReceipt: the body is a receipt (protocol.EncodeReceipt) whose
//     organisation signature must verify.
//
// Bodies of other kinds are not examined. A forger who changes a term in a
// recorded commitment can recompute every hash, and with the node's
// checkpoint key even re-sign the checkpoints, but cannot make these
// signatures verify.
func VerifyProtocolBody(e Entry) error {
	switch e.Kind {
	case KindMessageSent, KindMessageReceived:
		env, err := protocol.DecodeEnvelope(e.Body)
		if err != nil {
			return fmt.Errorf("envelope: %w", err)
		}
		if err := env.Verify(); err != nil {
			return fmt.Errorf("envelope: %w", err)
		}
		if e.Session != "" && e.Session != env.SessionID {
			return fmt.Errorf("entry names session %q, its envelope %q", e.Session, env.SessionID)
		}
	case KindCommitment:
		c, err := protocol.DecodeCommitment(e.Body)
		if err != nil {
			return fmt.Errorf("commitment: %w", err)
		}
		if e.Commitment != "" && e.Commitment != c.ID {
			return fmt.Errorf("entry names commitment %q, its body %q", e.Commitment, c.ID)
		}
	case KindReceipt:
		r, err := protocol.DecodeReceipt(e.Body)
		if err != nil {
			return fmt.Errorf("receipt: %w", err)
		}
		if err := r.Verify(); err != nil {
			return fmt.Errorf("receipt: %w", err)
		}
		if e.Commitment != "" && e.Commitment != r.CommitmentID {
			return fmt.Errorf("entry names commitment %q, its receipt %q", e.Commitment, r.CommitmentID)
		}
	}
	return nil
}
