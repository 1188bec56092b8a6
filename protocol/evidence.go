package protocol

import (
	"bytes"
	"fmt"
	"time"
)

// wireCommitment holds only the signed facts; everything else is derived.
type wireCommitment struct {
	Offer      b64    `cbor:"offer"`
	Acceptance b64    `cbor:"acceptance"`
	Receipts   []b64  `cbor:"receipts,omitempty"`
	Actions    []b64  `cbor:"actions,omitempty"`
	ExpiredAt  string `cbor:"expiredAt,omitempty"`
}

// EncodeCommitment returns the canonical CBOR of a commitment: its offer,
// acceptance, receipts and actions (each in its own canonical encoding)
// and the time it expired. Everything else is derived on decoding.
func EncodeCommitment(c *Commitment) ([]byte, error) {
	w := wireCommitment{ExpiredAt: FormatTime(c.ExpiredAt)}
	var err error
	if w.Offer, err = EncodeEnvelope(c.Offer); err != nil {
		return nil, err
	}
	if w.Acceptance, err = EncodeEnvelope(c.Acceptance); err != nil {
		return nil, err
	}
	for _, r := range c.Receipts {
		b, err := EncodeReceipt(r)
		if err != nil {
			return nil, err
		}
		w.Receipts = append(w.Receipts, b)
	}
	for _, a := range c.Actions {
		b, err := EncodeAction(a)
		if err != nil {
			return nil, err
		}
		w.Actions = append(w.Actions, b)
	}
	return canonical(w)
}

// DecodeCommitment decodes a commitment and verifies all of it, like
// VerifyCommitment: the result's derived fields (id, terms, state) are
// recomputed, never read.
func DecodeCommitment(b []byte) (*Commitment, error) {
	var w wireCommitment
	if err := decodeCanonical(b, &w); err != nil {
		return nil, fmt.Errorf("commitment: %w", err)
	}
	offer, err := DecodeEnvelope(w.Offer)
	if err != nil {
		return nil, fmt.Errorf("commitment offer: %w", err)
	}
	acc, err := DecodeEnvelope(w.Acceptance)
	if err != nil {
		return nil, fmt.Errorf("commitment acceptance: %w", err)
	}
	expired, err := ParseTime(w.ExpiredAt)
	if err != nil {
		return nil, err
	}
	var receipts []*Receipt
	for _, rb := range w.Receipts {
		r, err := DecodeReceipt(rb)
		if err != nil {
			return nil, err
		}
		receipts = append(receipts, r)
	}
	var actions []*Action
	for _, ab := range w.Actions {
		a, err := DecodeAction(ab)
		if err != nil {
			return nil, err
		}
		actions = append(actions, a)
	}
	return RebuildCommitment(offer, acc, receipts, actions, expired)
}

// VerifyCommitment re-derives c from its signed facts (offer, acceptance,
// receipts, actions, expiry) and checks that c agrees: every signature and
// certificate, the acceptance naming the offer, the id, and every state
// change. An attestation or an auditor relies on this.
func VerifyCommitment(c *Commitment) error {
	x, err := RebuildCommitment(c.Offer, c.Acceptance, c.Receipts, c.Actions, c.ExpiredAt)
	if err != nil {
		return err
	}
	if x.ID != c.ID || x.State != c.State || x.SessionID != c.SessionID || x.Proposer != c.Proposer ||
		x.Acceptor != c.Acceptor || x.Head != c.Head || x.OfferHash != c.OfferHash || x.Amends != c.Amends {
		return fmt.Errorf("%w: commitment %s does not match its signed facts", ErrMalformed, c.ID)
	}
	return nil
}

// VerifyEvidence derives the commitment that offer and acc form, with
// receipts, and checks that it is evidence that both sides are bound:
// everything RebuildCommitment checks, and every party organisation's
// receipt held (ErrUnreceipted). This is the rule for anything that claims
// a commitment exists to a third party (attestations, audits): an ACCEPT
// alone is only what the acceptor signed, and may never have reached the
// offerer; a receipt is an organisation's signature that its own session
// formed and recorded the commitment, naming its offer and acceptance by
// their full hashes.
func VerifyEvidence(offer, acc *Envelope, receipts []*Receipt) (*Commitment, error) {
	c, err := RebuildCommitment(offer, acc, receipts, nil, time.Time{})
	if err != nil {
		return nil, err
	}
	if !c.Receipted() {
		return nil, fmt.Errorf("%w: %s holds %d receipts of the organisations %v", ErrUnreceipted, c.ID,
			len(c.Receipts), c.Orgs())
	}
	return c, nil
}

// RebuildCommitment derives a commitment from its signed facts, verifying
// each: the offer (PROPOSE, COUNTER or COMMIT with terms) and the ACCEPT
// that names it, both signed and certified, the ACCEPT's timestamp not
// after the offer's validUntil (ErrStaleOffer); then the receipts (each
// naming the offer and acceptance by their full hashes); then the actions
// in order, with the expiry (if expiredAt is set) placed in time.
//
// The offer and the ACCEPT alone prove only what their signers signed: the
// acceptor can sign an ACCEPT the offerer never received. A commitment is
// evidence that both organisations are bound only when Receipted: each
// organisation's node signs its receipt only for a commitment its own
// session state machine formed.
func RebuildCommitment(offer, acc *Envelope, receipts []*Receipt, actions []*Action, expiredAt time.Time) (*Commitment, error) {
	if offer == nil || acc == nil {
		return nil, fmt.Errorf("%w: commitment without offer or acceptance", ErrMalformed)
	}
	if err := offer.Verify(); err != nil {
		return nil, fmt.Errorf("commitment offer: %w", err)
	}
	if err := acc.Verify(); err != nil {
		return nil, fmt.Errorf("commitment acceptance: %w", err)
	}
	var terms Terms
	var amends string
	var validUntil time.Time
	switch b := offer.Body.(type) {
	case *ProposeBody:
		if b.Terms == nil {
			return nil, fmt.Errorf("%w: the invitation is not an offer", ErrBadReference)
		}
		terms, amends, validUntil = *b.Terms, b.Amends, b.ValidUntil
	case *CounterBody:
		terms, amends, validUntil = b.Terms, b.Amends, b.ValidUntil
	case *CommitBody:
		terms, amends, validUntil = b.Terms, b.Amends, b.ValidUntil
	default:
		return nil, fmt.Errorf("%w: a %s is not an offer", ErrBadReference, offer.Performative)
	}
	ab, ok := acc.Body.(*AcceptBody)
	if !ok {
		return nil, fmt.Errorf("%w: acceptance is a %s", ErrBadReference, acc.Performative)
	}
	oh, ah := offer.Hash(), acc.Hash()
	if ab.ReferenceID != offer.MessageID || (len(ab.ReferenceHash) != 0 && !bytes.Equal(ab.ReferenceHash, oh[:])) {
		return nil, fmt.Errorf("%w: the ACCEPT does not name the offer", ErrBadReference)
	}
	if acc.SessionID != offer.SessionID || acc.Sender != offer.Recipient || acc.Recipient != offer.Sender ||
		acc.Timestamp.Before(offer.Timestamp) {
		return nil, fmt.Errorf("%w: offer and acceptance are not a pair", ErrBadReference)
	}
	// An offer can be accepted only while it is valid: the ACCEPT's own
	// signed timestamp must not be after validUntil. (Each live node also
	// judges it against its own clock: Session.Step.)
	if !validUntil.IsZero() && acc.Timestamp.After(validUntil) {
		return nil, fmt.Errorf("%w: accepted at %s, the offer was valid until %s", ErrStaleOffer,
			FormatTime(acc.Timestamp), FormatTime(validUntil))
	}
	if err := CheckTermsRoles(terms, offer.Sender, acc.Sender); err != nil {
		return nil, err
	}
	c := newCommitment(offer.SessionID, offer, oh, terms, amends, acc, ah)
	return c.Replay(receipts, actions, expiredAt, nil)
}

// Replay returns c (as formed: no receipts, no actions) with its receipts
// added, then its actions applied in order with the expiry (if expiredAt
// is set) placed in time, verifying each as AddReceipt and Apply do. vc,
// if set, spares the Ed25519 check of receipt signatures it knows.
func (c *Commitment) Replay(receipts []*Receipt, actions []*Action, expiredAt time.Time, vc VerifiedSignatures) (*Commitment, error) {
	for _, r := range receipts {
		n, err := c.AddReceiptCached(r, vc)
		if err != nil {
			return nil, err
		}
		c = n
	}
	expire := func(at time.Time) error {
		if expiredAt.IsZero() || c.State != CommitmentActive || expiredAt.After(at) {
			return nil
		}
		n, ok := c.Expire(expiredAt)
		if !ok {
			return fmt.Errorf("%w: expiry at %s before the deadline", ErrCommitmentState, FormatTime(expiredAt))
		}
		c = n
		return nil
	}
	for _, a := range actions {
		if err := expire(a.Time); err != nil {
			return nil, err
		}
		n, err := c.Apply(a)
		if err != nil {
			return nil, err
		}
		c = n
	}
	if !expiredAt.IsZero() {
		if err := expire(expiredAt); err != nil {
			return nil, err
		}
		if c.ExpiredAt.IsZero() {
			return nil, fmt.Errorf("%w: expiry recorded in state %s", ErrCommitmentState, c.State)
		}
	}
	return c, nil
}
