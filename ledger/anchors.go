package ledger

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/aspnode/asp/protocol"
)

// Witnessing records (docs/ledger.md §7, docs/node.md "Witnessing"): the
// checkpoints of other organisations' logs that this node cosigned
// (KindAnchor), and the equivocation proofs it holds (KindEquivocation).
// They sit beside the records of records.go, with the same rules: one
// reading, fixed encodings, and what VerifyProtocolBody checks named here.

// KindEquivocation records an equivocation proof this node built or
// verified: two checkpoints signed by one organisation's certified
// checkpoint key that cannot both be true. Body: the proof as
// witness.EncodeEquivocation writes it (a canonical CBOR map). Shown as
// kind-34.
const KindEquivocation Kind = 34

// Anchor is the body of a KindAnchor record: a checkpoint of another
// organisation's log that this node cosigned as its witness, with that
// organisation's checkpoint-key certificate, so that this log commits to
// the other's head. Encoding: a CBOR map {1: checkpoint (the signed note
// as cosigned: the log's signature line and this node's cosignature/v1
// line), 2: key certificate (KeyCertificate, JSON)}.
//
// Who could forge one: the checkpoint carries the other organisation's
// signature by the key its identity certified, which VerifyProtocolBody
// checks, so no one but that organisation can make an anchor to a head it
// did not sign. The recording node's operator can withhold an anchor, or
// record it late (the entry's time is its word); a withheld anchor is
// missing evidence, never false evidence. The cosignature line is the
// recording node's own (its identity key signs it as witness); an auditor
// checks it against that node's witness key (witness.VerifyCosignature).
type Anchor struct {
	Checkpoint     []byte `cbor:"1,keyasint"`
	KeyCertificate []byte `cbor:"2,keyasint"`
}

// maxAnchorPart bounds each part of an anchor body.
const maxAnchorPart = 8 << 10

// EncodeAnchor returns the body of a KindAnchor record.
func EncodeAnchor(a Anchor) []byte { return encodeRecord(a) }

// DecodeAnchor reads the body of a KindAnchor record: a checkpoint and a
// certificate, each non-empty and bounded. It verifies nothing
// (VerifyProtocolBody does).
func DecodeAnchor(b []byte) (Anchor, error) {
	var a Anchor
	if err := decodeRecord("anchor", b, &a); err != nil {
		return Anchor{}, err
	}
	if len(a.Checkpoint) == 0 || len(a.KeyCertificate) == 0 || len(a.Checkpoint) > maxAnchorPart || len(a.KeyCertificate) > maxAnchorPart {
		return Anchor{}, fmt.Errorf("%w: anchor without a checkpoint and a certificate of 1 to %d bytes", protocol.ErrMalformed, maxAnchorPart)
	}
	return a, nil
}

// AnchorRecord is a KindAnchor record.
func AnchorRecord(t time.Time, a Anchor) Record {
	return Record{Kind: KindAnchor, Time: t, Body: EncodeAnchor(a)}
}

// EquivocationRecord is a KindEquivocation record of an encoded proof.
func EquivocationRecord(t time.Time, proof []byte) Record {
	return Record{Kind: KindEquivocation, Time: t, Body: proof}
}

// VerifyAnchor checks an anchor offline: its certificate is signed by the
// organisation it names and certifies that organisation's own ledger
// (OriginFor), and the checkpoint bears a valid signature by the
// certified key. It returns the checkpoint anchored.
func VerifyAnchor(a Anchor) (CheckpointBody, *KeyCertificate, error) {
	var cert KeyCertificate
	if err := json.Unmarshal(a.KeyCertificate, &cert); err != nil {
		return CheckpointBody{}, nil, fmt.Errorf("%w: anchor certificate: %v", protocol.ErrMalformed, err)
	}
	if err := cert.Verify(); err != nil {
		return CheckpointBody{}, nil, err
	}
	if cert.Origin != OriginFor(cert.Org) {
		return CheckpointBody{}, nil, fmt.Errorf("anchor: certificate of %s is for origin %q", cert.Org, cert.Origin)
	}
	v, err := cert.Verifier()
	if err != nil {
		return CheckpointBody{}, nil, err
	}
	cp, _, err := ParseCheckpoint(a.Checkpoint, cert.Origin, v)
	if err != nil {
		return CheckpointBody{}, nil, fmt.Errorf("anchor: %w", err)
	}
	return cp, &cert, nil
}

// verifyAnchor is VerifyProtocolBody for KindAnchor.
func verifyAnchor(e Entry) error {
	a, err := DecodeAnchor(e.Body)
	if err != nil {
		return err
	}
	_, _, err = VerifyAnchor(a)
	return err
}
