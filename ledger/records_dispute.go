package ledger

import (
	"fmt"
	"time"

	"github.com/aspnode/asp/protocol"
)

// Dispute records (docs/disputes.md, "On the node"), beside the node's
// other records (records.go).
//
// A KindDispute record holds exactly one of: a signed filing
// (protocol.EncodeDispute), a signed step (protocol.EncodeDisputeStep), a
// signed ruling (protocol.EncodeRuling), or a breach the node detected
// (its own word, unsigned). The signed ones carry their authors'
// signatures: an operator cannot invent a filing, a remedy or an
// acceptance, nor move one to another commitment; VerifyProtocolBody
// checks each signature and that the record names the entry's
// commitment. A detected breach is only the node's observation: the
// obligation and its deadline come from the signed terms, so anyone can
// recompute it (protocol.Commitment.Watch); an operator can forge or
// withhold one, which changes no state (the filing that follows it is
// what counts).
//
// A KindPolicy record is the dispute policy the node put in force at the
// record's time (the node's own word, like a refusal): an auditor replays
// a dispute with the windows in force at its filing. An operator can
// backdate one, but the counterparty holds its own copy of every filing
// and step, with their signed times.

// KindPolicy records the dispute policy in force from the record's time.
// Body: Policy.
const KindPolicy Kind = 35

// DisputeRecordBody is the body of a KindDispute record: exactly one
// field set. Encoding: a CBOR map {1: filing, 2: step, 3: ruling, 4:
// breach}.
type DisputeRecordBody struct {
	Filing []byte  `cbor:"1,keyasint,omitempty"`
	Step   []byte  `cbor:"2,keyasint,omitempty"`
	Ruling []byte  `cbor:"3,keyasint,omitempty"`
	Breach *Breach `cbor:"4,keyasint,omitempty"`
}

// Breach is a breach the node detected: the obligation (its id,
// "<commitmentId>/<key>"), the obligor the terms name, and the deadline
// missed (protocol time text).
type Breach struct {
	Obligation string `cbor:"1,keyasint"`
	Obligor    string `cbor:"2,keyasint"`
	Deadline   string `cbor:"3,keyasint"`
}

// EncodeDisputeRecord returns the body of a KindDispute record.
func EncodeDisputeRecord(b DisputeRecordBody) []byte { return encodeRecord(b) }

// DecodeDisputeRecord reads the body of a KindDispute record: exactly one
// field set, none empty. It does not decode the signed record inside
// (VerifyProtocolBody does).
func DecodeDisputeRecord(b []byte) (DisputeRecordBody, error) {
	var d DisputeRecordBody
	if err := decodeRecord("dispute record", b, &d); err != nil {
		return DisputeRecordBody{}, err
	}
	set := 0
	for _, f := range [][]byte{d.Filing, d.Step, d.Ruling} {
		if f != nil {
			if len(f) == 0 {
				return DisputeRecordBody{}, fmt.Errorf("%w: dispute record with an empty field", protocol.ErrMalformed)
			}
			set++
		}
	}
	if d.Breach != nil {
		if d.Breach.Obligation == "" || d.Breach.Obligor == "" {
			return DisputeRecordBody{}, fmt.Errorf("%w: breach without obligation or obligor", protocol.ErrMalformed)
		}
		set++
	}
	if set != 1 {
		return DisputeRecordBody{}, fmt.Errorf("%w: dispute record with %d fields, want 1", protocol.ErrMalformed, set)
	}
	return d, nil
}

// DisputeRecord is a KindDispute record of a commitment.
func DisputeRecord(t time.Time, session, commitment string, b DisputeRecordBody) Record {
	return Record{Kind: KindDispute, Time: t, Session: session, Commitment: commitment, Body: EncodeDisputeRecord(b)}
}

// verifyDisputeRecord is VerifyProtocolBody for KindDispute: well formed,
// naming a commitment, and the signed record inside verifies and names
// that commitment.
func verifyDisputeRecord(e Entry) error {
	d, err := DecodeDisputeRecord(e.Body)
	if err != nil {
		return err
	}
	if e.Commitment == "" {
		return fmt.Errorf("%w: dispute record names no commitment", protocol.ErrMalformed)
	}
	var names string
	switch {
	case d.Filing != nil:
		f, err := protocol.DecodeDispute(d.Filing)
		if err != nil {
			return err
		}
		if err := f.Verify(); err != nil {
			return fmt.Errorf("filing: %w", err)
		}
		names = f.CommitmentID
	case d.Step != nil:
		s, err := protocol.DecodeDisputeStep(d.Step)
		if err != nil {
			return err
		}
		if err := s.Verify(); err != nil {
			return fmt.Errorf("step: %w", err)
		}
		names = s.CommitmentID
	case d.Ruling != nil:
		r, err := protocol.DecodeRuling(d.Ruling)
		if err != nil {
			return err
		}
		// A ruling at the human rung names no arbiter: both parties sign
		// it (which agents are the parties, the commitment's record says;
		// here: two signers, each signature valid).
		var want []string
		if r.Arbiter == "" {
			for _, s := range r.Signatures {
				if s.Certificate != nil {
					want = append(want, s.Certificate.AgentID)
				}
			}
			if len(want) < 2 {
				return fmt.Errorf("%w: a ruling without arbiter signed by %d", protocol.ErrMissingSignature, len(want))
			}
		}
		if err := r.Verify(want...); err != nil {
			return fmt.Errorf("ruling: %w", err)
		}
		names = r.CommitmentID
	default:
		return nil
	}
	if names != e.Commitment {
		return fmt.Errorf("%w: entry names commitment %q, its record %q", protocol.ErrWrongCommitment, e.Commitment, names)
	}
	return nil
}

// Policy is the body of a KindPolicy record: the dispute policy's fields
// as the node's configuration spells them (durations in Go's form, "72h").
type Policy struct {
	OnBreach        string   `cbor:"1,keyasint"`
	ConfirmWithin   string   `cbor:"2,keyasint"`
	RespondWithin   string   `cbor:"3,keyasint"`
	NegotiateFor    string   `cbor:"4,keyasint"`
	RuleWithin      string   `cbor:"5,keyasint"`
	DefaultArbiters []string `cbor:"6,keyasint,omitempty"`
	Webhook         string   `cbor:"7,keyasint,omitempty"`
}

// EncodePolicy returns the body of a KindPolicy record.
func EncodePolicy(p Policy) []byte { return encodeRecord(p) }

// DecodePolicy reads the body of a KindPolicy record: every window a
// positive duration.
func DecodePolicy(b []byte) (Policy, error) {
	var p Policy
	if err := decodeRecord("policy", b, &p); err != nil {
		return Policy{}, err
	}
	for _, w := range []string{p.ConfirmWithin, p.RespondWithin, p.NegotiateFor, p.RuleWithin} {
		if d, err := time.ParseDuration(w); err != nil || d <= 0 {
			return Policy{}, fmt.Errorf("%w: policy window %q", protocol.ErrMalformed, w)
		}
	}
	return p, nil
}

// PolicyRecord is a KindPolicy record.
func PolicyRecord(t time.Time, p Policy) Record {
	return Record{Kind: KindPolicy, Time: t, Body: EncodePolicy(p)}
}
