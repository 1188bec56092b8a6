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
//     (each naming the offer and acceptance by their full hashes) and
//     actions, and that the acceptance was signed within the offer's
//     validUntil; the entry's Commitment, if set, must be its id. It is the
//     organisation's own record, made when its session formed the
//     commitment (so before any receipt exists); the session's messages
//     are entries of the same ledger.
//   - KindReceipt: the body is a receipt (protocol.EncodeReceipt) whose
//     organisation signature must verify and whose commitment id must be
//     the one its offer and acceptance hashes derive.
//   - KindCommitmentUpdate: the body is a CommitmentUpdate (records.go) of
//     a known state, the entry names a commitment, and the signed action
//     it carries, if any, verifies and acts on that commitment.
//   - KindMessageRefused: the body is a Refusal naming a message and a
//     code.
//   - KindReconciled: the body is a Reconciled that adopts a move or ends
//     the session, and the entry names its session.
//   - KindMandate: the body is a Mandate naming a valid agent id, its
//     mandate a JSON object if set.
//   - KindConsent: the body is a JSON object (the invitation policy).
//   - KindAttestation: the body is an attestation (registry/attest, format
//     attestationVersion), a claim to third parties that a commitment
//     exists and how a party behaved. Its evidence must prove the
//     commitment: offer and acceptance verified as for KindCommitment and
//     every party organisation's receipt for it
//     (protocol.VerifyEvidence); it must name that commitment, and its
//     attester and subject must be its two parties. (The attester's own
//     signature is registry/attest's to check; the node checks it before
//     recording.)
//   - KindKeyEvent: the body is a KeyEvent (records.go); an added key's
//     certificate must be signed by the organisation its agent id names,
//     valid at the entry's time, and certify that agent, that key and
//     those capabilities.
//   - KindAnchor: the body is an Anchor (anchors.go) whose certificate is
//     signed by the organisation it names, for that organisation's own
//     ledger, and whose checkpoint bears a valid signature by the
//     certified key. (The cosignature line beside it is checked against a
//     witness key by witness.VerifyCosignature, which this package cannot
//     name.)
//
// Bodies of other kinds are not examined. A forger who changes a term in a
// recorded commitment can recompute every hash, and with the node's
// checkpoint key even re-sign the checkpoints, but cannot make these
// signatures verify; and one party alone cannot make a commitment that
// passes as evidence, since that needs the other organisation's receipt.
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
	case KindCommitmentUpdate:
		if err := verifyCommitmentUpdate(e); err != nil {
			return fmt.Errorf("commitment update: %w", err)
		}
	case KindMessageRefused:
		if _, err := DecodeRefusal(e.Body); err != nil {
			return err
		}
	case KindReconciled:
		if err := verifyReconciled(e); err != nil {
			return err
		}
	case KindMandate:
		if _, err := DecodeMandate(e.Body); err != nil {
			return err
		}
	case KindConsent:
		if _, err := DecodeConsent(e.Body); err != nil {
			return err
		}
	case KindAttestation:
		if err := verifyAttestation(e); err != nil {
			return fmt.Errorf("attestation: %w", err)
		}
	case KindKeyEvent:
		if err := verifyKeyEvent(e); err != nil {
			return fmt.Errorf("key event: %w", err)
		}
	case KindAnchor:
		if err := verifyAnchor(e); err != nil {
			return fmt.Errorf("anchor: %w", err)
		}
	case KindDispute:
		if err := verifyDisputeRecord(e); err != nil {
			return fmt.Errorf("dispute: %w", err)
		}
	case KindPolicy:
		if _, err := DecodePolicy(e.Body); err != nil {
			return err
		}
	case KindBusinessEvent:
		if err := verifyBusinessEvent(e); err != nil {
			return fmt.Errorf("business event: %w", err)
		}
	}
	return nil
}
