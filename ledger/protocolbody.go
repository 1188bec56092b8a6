package ledger

import (
	"fmt"
	"slices"

	"github.com/aspnode/asp/protocol"
	"github.com/fxamacker/cbor/v2"
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
//   - KindAttestation: the body is an attestation (registry/attest, format
//     attestationVersion), a claim to third parties that a commitment
//     exists and how a party behaved. Its evidence must prove the
//     commitment: offer and acceptance verified as for KindCommitment and
//     every party organisation's receipt for it
//     (protocol.VerifyEvidence); it must name that commitment, and its
//     attester and subject must be its two parties. (The attester's own
//     signature is registry/attest's to check; the node checks it before
//     recording.)
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
	case KindAttestation:
		id, err := verifyAttestationEvidence(e.Body)
		if err != nil {
			return fmt.Errorf("attestation: %w", err)
		}
		if e.Commitment != "" && e.Commitment != id {
			return fmt.Errorf("entry names commitment %q, its attestation %q", e.Commitment, id)
		}
	}
	return nil
}

// attestationVersion is the attestation format whose evidence
// VerifyProtocolBody checks: registry/attest.Version (a test keeps the two
// equal; registry depends on ledger, not the reverse).
const attestationVersion = "asp/1.1"

// attestationEvidence is the part of an attestation's CBOR that names and
// proves the commitment; the other fields are ignored here.
type attestationEvidence struct {
	Version      string   `cbor:"version"`
	Attester     string   `cbor:"attester"`
	Subject      string   `cbor:"subject"`
	CommitmentID string   `cbor:"commitmentId"`
	Offer        []byte   `cbor:"offer"`
	Acceptance   []byte   `cbor:"acceptance"`
	Receipts     [][]byte `cbor:"receipts"`
}

// evidenceDecMode reads the evidence fields of an attestation: no
// duplicate keys (so no reader can see another offer than the one
// signed), case-sensitive names, no tags, no indefinite lengths; the
// attestation's other fields are skipped.
var evidenceDecMode = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   16,
		MaxArrayElements:  4096,
		MaxMapPairs:       4096,
		UTF8:              cbor.UTF8RejectInvalid,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

// verifyAttestationEvidence checks the evidence of an encoded attestation
// and returns the id of the commitment it proves.
func verifyAttestationEvidence(b []byte) (string, error) {
	var w attestationEvidence
	if err := evidenceDecMode.Unmarshal(b, &w); err != nil {
		return "", fmt.Errorf("%w: %v", protocol.ErrMalformed, err)
	}
	if w.Version != attestationVersion {
		return "", fmt.Errorf("%w: attestation version %q, want %q", protocol.ErrVersion, w.Version, attestationVersion)
	}
	offer, err := protocol.DecodeEnvelope(w.Offer)
	if err != nil {
		return "", fmt.Errorf("offer: %w", err)
	}
	acc, err := protocol.DecodeEnvelope(w.Acceptance)
	if err != nil {
		return "", fmt.Errorf("acceptance: %w", err)
	}
	var receipts []*protocol.Receipt
	for _, rb := range w.Receipts {
		r, err := protocol.DecodeReceipt(rb)
		if err != nil {
			return "", err
		}
		receipts = append(receipts, r)
	}
	c, err := protocol.VerifyEvidence(offer, acc, receipts)
	if err != nil {
		return "", err
	}
	if w.CommitmentID != c.ID {
		return "", fmt.Errorf("%w: names %s, its evidence forms %s", protocol.ErrWrongCommitment, w.CommitmentID, c.ID)
	}
	if w.Attester == w.Subject || !slices.Contains(c.Parties(), w.Attester) || !slices.Contains(c.Parties(), w.Subject) {
		return "", fmt.Errorf("%w: %s about %s on %s", protocol.ErrNotParty, w.Attester, w.Subject, c.ID)
	}
	return c.ID, nil
}
