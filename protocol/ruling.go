package protocol

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"
)

// StepKind names a party's step in a dispute.
type StepKind string

// Dispute steps.
const (
	StepAccept   StepKind = "accept"   // accept the remedy on the table (the claim, or the other party's counter)
	StepCounter  StepKind = "counter"  // offer another remedy
	StepReject   StepKind = "reject"   // refuse the remedy on the table and negotiate no further: escalate
	StepEscalate StepKind = "escalate" // ask for the next rung now (the arbiter, or the humans)
)

// DisputeStep is a party's signed step in a dispute: a response to the
// filing or to a counter. An accept names the record it accepts by its
// digest (Reference), so nobody can carry an acceptance over to another
// remedy.
type DisputeStep struct {
	DisputeID    string
	CommitmentID string
	Kind         StepKind
	By           string // agent id of the party; signs the step
	Remedy       string // counter: the remedy offered
	Reference    []byte // accept: the digest of the filing or counter accepted (32 bytes)
	Reason       string // free text, optional
	Time         time.Time
	Signatures   []ActionSignature
}

type wireDisputeStep struct {
	DisputeID    string                `cbor:"disputeId" json:"disputeId"`
	CommitmentID string                `cbor:"commitmentId" json:"commitmentId"`
	Kind         string                `cbor:"kind" json:"kind"`
	By           string                `cbor:"by" json:"by"`
	Remedy       string                `cbor:"remedy,omitempty" json:"remedy,omitempty"`
	Reference    b64                   `cbor:"reference,omitempty" json:"reference,omitempty"`
	Reason       string                `cbor:"reason,omitempty" json:"reason,omitempty"`
	Time         string                `cbor:"time" json:"time"`
	Signatures   []wireActionSignature `cbor:"signatures,omitempty" json:"signatures,omitempty"`
}

func (s *DisputeStep) wire(signing bool) *wireDisputeStep {
	w := &wireDisputeStep{s.DisputeID, s.CommitmentID, string(s.Kind), s.By, s.Remedy, s.Reference, s.Reason,
		FormatTime(s.Time), nil}
	if !signing {
		w.Signatures = wireSignatures(s.Signatures)
	}
	return w
}

func (w *wireDisputeStep) step() (*DisputeStep, error) {
	t, err := ParseTime(w.Time)
	if err != nil {
		return nil, fmt.Errorf("dispute step time: %w", err)
	}
	s := &DisputeStep{DisputeID: w.DisputeID, CommitmentID: w.CommitmentID, Kind: StepKind(w.Kind), By: w.By,
		Remedy: w.Remedy, Reference: nilIfEmpty([]byte(w.Reference)), Reason: w.Reason, Time: t}
	if s.Signatures, err = fromWireSignatures(w.Signatures); err != nil {
		return nil, err
	}
	return s, s.check()
}

func checkRecordIDs(disputeID, commitmentID string) error {
	if len(disputeID) != len(DisputeIDPrefix)+32 || disputeID[:len(DisputeIDPrefix)] != DisputeIDPrefix {
		return fmt.Errorf("%w: dispute id %q", ErrMalformed, disputeID)
	}
	return checkText("commitmentId", commitmentID, maxShort, true)
}

func (s *DisputeStep) check() error {
	if err := checkRecordIDs(s.DisputeID, s.CommitmentID); err != nil {
		return err
	}
	if err := checkAgent("by", s.By, true); err != nil {
		return err
	}
	if err := checkText("remedy", s.Remedy, maxText, s.Kind == StepCounter); err != nil {
		return err
	}
	if err := checkText("reason", s.Reason, maxText, false); err != nil {
		return err
	}
	switch s.Kind {
	case StepAccept:
		if len(s.Reference) != sha256.Size || s.Remedy != "" {
			return fmt.Errorf("%w: an accept names the record it accepts (32 bytes) and no remedy", ErrMalformed)
		}
	case StepCounter, StepReject, StepEscalate:
		if len(s.Reference) != 0 || (s.Kind != StepCounter && s.Remedy != "") {
			return fmt.Errorf("%w: %s carries no reference (and only a counter a remedy)", ErrMalformed, s.Kind)
		}
	default:
		return fmt.Errorf("%w: dispute step %q", ErrMalformed, s.Kind)
	}
	return checkRecordTime(s.Time, len(s.Signatures))
}

// Digest returns SHA-256 of the step's canonical payload.
func (s *DisputeStep) Digest() ([32]byte, error) {
	d, _, err := digest(s.wire(true))
	return d, err
}

// Sign adds the party's signature. Set every other field first.
func (s *DisputeStep) Sign(key ed25519.PrivateKey, cert *Certificate) error {
	if err := s.check(); err != nil {
		return err
	}
	d, err := s.Digest()
	if err != nil {
		return err
	}
	sig, err := signRecord(domainDisputeStep, d, key, cert)
	if err != nil {
		return err
	}
	s.Signatures = append(s.Signatures, sig)
	return nil
}

// Verify checks the step's form and signature: by By, with a certificate
// valid at Time.
func (s *DisputeStep) Verify() error {
	if err := s.check(); err != nil {
		return err
	}
	d, err := s.Digest()
	if err != nil {
		return err
	}
	return verifyRecord(domainDisputeStep, d, s.Signatures, s.Time, s.By)
}

// EncodeDisputeStep returns the canonical CBOR of a step.
func EncodeDisputeStep(s *DisputeStep) ([]byte, error) { return canonical(s.wire(false)) }

// DecodeDisputeStep decodes canonical CBOR and checks the form.
func DecodeDisputeStep(b []byte) (*DisputeStep, error) {
	var w wireDisputeStep
	if err := decodeCanonical(b, &w); err != nil {
		return nil, fmt.Errorf("dispute step: %w", err)
	}
	return w.step()
}

// MarshalJSON encodes the step's JSON form.
func (s *DisputeStep) MarshalJSON() ([]byte, error) { return json.Marshal(s.wire(false)) }

// UnmarshalJSON decodes the step's JSON form strictly.
func (s *DisputeStep) UnmarshalJSON(b []byte) error {
	var w wireDisputeStep
	if err := strictJSON(b, &w); err != nil {
		return err
	}
	x, err := w.step()
	if err != nil {
		return err
	}
	*s = *x
	return nil
}

// RulingOutcome is an arbiter's decision.
type RulingOutcome string

// Ruling outcomes.
const (
	RulingUpheld    RulingOutcome = "upheld"    // the filer is right: the respondent breached
	RulingDismissed RulingOutcome = "dismissed" // the filer is wrong: nobody breached
	RulingSplit     RulingOutcome = "split"     // both share it; a breacher may be named
)

// Ruling is the decision that closes an escalated dispute: signed by the
// arbiter named in the commitment's terms, or — at the human rung — by
// both parties (their organisations' humans deciding through their
// agents).
type Ruling struct {
	DisputeID    string
	CommitmentID string
	Arbiter      string // agent id of the arbiter; empty for a ruling signed by both parties
	Outcome      RulingOutcome
	Breacher     string // agent id of the party in breach: required if upheld, optional if split, none if dismissed
	Remedy       string // what is owed, free text
	Reasoning    string // why (required)
	Time         time.Time
	Signatures   []ActionSignature
}

type wireRuling struct {
	DisputeID    string                `cbor:"disputeId" json:"disputeId"`
	CommitmentID string                `cbor:"commitmentId" json:"commitmentId"`
	Arbiter      string                `cbor:"arbiter,omitempty" json:"arbiter,omitempty"`
	Outcome      string                `cbor:"outcome" json:"outcome"`
	Breacher     string                `cbor:"breacher,omitempty" json:"breacher,omitempty"`
	Remedy       string                `cbor:"remedy,omitempty" json:"remedy,omitempty"`
	Reasoning    string                `cbor:"reasoning" json:"reasoning"`
	Time         string                `cbor:"time" json:"time"`
	Signatures   []wireActionSignature `cbor:"signatures,omitempty" json:"signatures,omitempty"`
}

func (r *Ruling) wire(signing bool) *wireRuling {
	w := &wireRuling{r.DisputeID, r.CommitmentID, r.Arbiter, string(r.Outcome), r.Breacher, r.Remedy, r.Reasoning,
		FormatTime(r.Time), nil}
	if !signing {
		w.Signatures = wireSignatures(r.Signatures)
	}
	return w
}

func (w *wireRuling) ruling() (*Ruling, error) {
	t, err := ParseTime(w.Time)
	if err != nil {
		return nil, fmt.Errorf("ruling time: %w", err)
	}
	r := &Ruling{DisputeID: w.DisputeID, CommitmentID: w.CommitmentID, Arbiter: w.Arbiter,
		Outcome: RulingOutcome(w.Outcome), Breacher: w.Breacher, Remedy: w.Remedy, Reasoning: w.Reasoning, Time: t}
	if r.Signatures, err = fromWireSignatures(w.Signatures); err != nil {
		return nil, err
	}
	return r, r.check()
}

func (r *Ruling) check() error {
	if err := checkRecordIDs(r.DisputeID, r.CommitmentID); err != nil {
		return err
	}
	if err := checkAgent("arbiter", r.Arbiter, false); err != nil {
		return err
	}
	switch r.Outcome {
	case RulingUpheld:
		if err := checkAgent("breacher", r.Breacher, true); err != nil {
			return err
		}
	case RulingSplit:
		if err := checkAgent("breacher", r.Breacher, false); err != nil {
			return err
		}
	case RulingDismissed:
		if r.Breacher != "" {
			return fmt.Errorf("%w: a dismissal names no breacher", ErrMalformed)
		}
	default:
		return fmt.Errorf("%w: ruling outcome %q", ErrMalformed, r.Outcome)
	}
	if err := checkText("remedy", r.Remedy, maxText, false); err != nil {
		return err
	}
	if err := checkText("reasoning", r.Reasoning, maxText, true); err != nil {
		return err
	}
	return checkRecordTime(r.Time, len(r.Signatures))
}

// CommitmentOutcome is the state the ruling moves the commitment to:
// BREACHED when it names a breacher, else RESOLVED.
func (r *Ruling) CommitmentOutcome() CommitmentState {
	if r.Breacher != "" {
		return CommitmentBreached
	}
	return CommitmentResolved
}

// Digest returns SHA-256 of the ruling's canonical payload.
func (r *Ruling) Digest() ([32]byte, error) {
	d, _, err := digest(r.wire(true))
	return d, err
}

// Sign adds a signature (the arbiter's, or a party's at the human rung).
func (r *Ruling) Sign(key ed25519.PrivateKey, cert *Certificate) error {
	if err := r.check(); err != nil {
		return err
	}
	d, err := r.Digest()
	if err != nil {
		return err
	}
	sig, err := signRecord(domainRuling, d, key, cert)
	if err != nil {
		return err
	}
	r.Signatures = append(r.Signatures, sig)
	return nil
}

// Verify checks the ruling's form and signatures, and that want (agent
// ids) all signed: the arbiter, or both parties. With no want, the
// Arbiter must have signed.
func (r *Ruling) Verify(want ...string) error {
	if err := r.check(); err != nil {
		return err
	}
	if len(want) == 0 {
		if r.Arbiter == "" {
			return fmt.Errorf("%w: a ruling without arbiter needs the parties' signatures", ErrMissingSignature)
		}
		want = []string{r.Arbiter}
	}
	d, err := r.Digest()
	if err != nil {
		return err
	}
	return verifyRecord(domainRuling, d, r.Signatures, r.Time, want...)
}

// EncodeRuling returns the canonical CBOR of a ruling.
func EncodeRuling(r *Ruling) ([]byte, error) { return canonical(r.wire(false)) }

// DecodeRuling decodes canonical CBOR and checks the form.
func DecodeRuling(b []byte) (*Ruling, error) {
	var w wireRuling
	if err := decodeCanonical(b, &w); err != nil {
		return nil, fmt.Errorf("ruling: %w", err)
	}
	return w.ruling()
}

// MarshalJSON encodes the ruling's JSON form.
func (r *Ruling) MarshalJSON() ([]byte, error) { return json.Marshal(r.wire(false)) }

// UnmarshalJSON decodes the ruling's JSON form strictly.
func (r *Ruling) UnmarshalJSON(b []byte) error {
	var w wireRuling
	if err := strictJSON(b, &w); err != nil {
		return err
	}
	x, err := w.ruling()
	if err != nil {
		return err
	}
	*r = *x
	return nil
}
