package protocol

import (
	"fmt"
	"io"
	"time"
)

// Prepare builds sender's next envelope: header filled (version, a UUIDv7
// messageId from the timestamp and rnd, sequence number, recipient,
// previousHash = Head), timestamp = now truncated to milliseconds (or the
// previous envelope's timestamp if that is later), and the body completed
// with its defaults:
//
//   - PROPOSE without Type: an invitation in IDLE, an offer otherwise; an
//     offer's terms are completed from the latest offer's (Terms.With).
//   - COUNTER and COMMIT: referenceId defaults to the open offer, terms are
//     completed from the referenced (or latest) offer's.
//   - ACCEPT, REJECT, WITHDRAW: referenceId defaults to the open offer (or
//     the invitation); ACCEPT also gets the referenced envelope's hash.
//
// body may be nil (an empty body of p). The caller's body is not modified.
// Prepare checks that the move is legal now, so an illegal move fails
// before anything is signed; the envelope is unsigned and has no
// certificate: set them with Seal (or Certificate and Sign), then Step.
func (s *Session) Prepare(sender AgentID, p Performative, body Body, now time.Time, rnd io.Reader) (*Envelope, error) {
	si := s.party(sender.String())
	if si < 0 {
		return nil, fmt.Errorf("%w: %s in session %s", ErrNotParty, sender, s.id)
	}
	if !p.Valid() {
		return nil, fmt.Errorf("%w: performative %q", ErrMalformed, p)
	}
	ts := Millis(now)
	if ts.Before(s.lastTime) {
		ts = s.lastTime
	}
	b, err := s.fillBody(p, body, ts)
	if err != nil {
		return nil, err
	}
	id, err := NewMessageID(ts, rnd)
	if err != nil {
		return nil, err
	}
	env := &Envelope{
		Version:        Version,
		MessageID:      id,
		SessionID:      s.id,
		SequenceNumber: s.seq[si] + 1,
		Timestamp:      ts,
		Sender:         s.names[si],
		Recipient:      s.names[1-si],
		Performative:   p,
		Body:           b,
	}
	env.Integrity.PreviousHash = s.head
	if err := env.check(); err != nil {
		return nil, err
	}
	if _, err := s.plan(env, [32]byte{}); err != nil {
		return nil, err
	}
	return env, nil
}

func (s *Session) latestTerms() (Terms, bool) {
	if s.open != "" {
		return s.offers[s.open].terms, true
	}
	if n := len(s.offerOrder); n > 0 {
		return s.offers[s.offerOrder[n-1]].terms, true
	}
	return Terms{}, false
}

func (s *Session) refTerms(ref string) (Terms, bool) {
	if o, ok := s.offers[ref]; ok {
		return o.terms, true
	}
	return s.latestTerms()
}

// fillBody returns a copy of body with defaults filled in.
func (s *Session) fillBody(p Performative, body Body, ts time.Time) (Body, error) {
	if body == nil {
		w, err := newWireBody(p)
		if err != nil {
			return nil, err
		}
		if body, err = bodyFromWire(w); err != nil {
			return nil, err
		}
	}
	if body.Performative() != p {
		return nil, fmt.Errorf("%w: %T is not a %s body", ErrMalformed, body, p)
	}
	// Copy through the wire form so the caller's value is never aliased.
	raw, err := canonical(body.wire())
	if err != nil {
		return nil, err
	}
	w, _ := newWireBody(p)
	if err := decMode.Unmarshal(raw, w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if body, err = bodyFromWire(w); err != nil {
		return nil, err
	}
	defaultRef := func() string {
		if s.open != "" {
			return s.open
		}
		if s.state == StateInvited {
			return s.invitation
		}
		return ""
	}
	switch b := body.(type) {
	case *ProposeBody:
		if b.Type == "" {
			if s.state == StateIdle {
				b.Type = InvitationType
			} else {
				b.Type = OfferType
			}
		}
		if b.Terms != nil {
			if base, ok := s.latestTerms(); ok {
				t := base.With(*b.Terms)
				b.Terms = &t
			}
		}
	case *CounterBody:
		if b.ReferenceID == "" {
			b.ReferenceID = s.open
		}
		if base, ok := s.refTerms(b.ReferenceID); ok {
			b.Terms = base.With(b.Terms)
		}
		if o, ok := s.offers[b.ReferenceID]; ok && b.Amends == "" {
			b.Amends = o.amends
		}
	case *CommitBody:
		if b.ReferenceID == "" {
			b.ReferenceID = s.open
		}
		if base, ok := s.refTerms(b.ReferenceID); ok {
			b.Terms = base.With(b.Terms)
		}
	case *AcceptBody:
		if b.ReferenceID == "" {
			b.ReferenceID = defaultRef()
		}
		if len(b.ReferenceHash) == 0 {
			if i, ok := s.byID[b.ReferenceID]; ok {
				h := s.hashes[i]
				b.ReferenceHash = h[:]
			}
		}
	case *RejectBody:
		if b.ReferenceID == "" {
			b.ReferenceID = defaultRef()
		}
	case *WithdrawBody:
		if b.ReferenceID == "" {
			b.ReferenceID = defaultRef()
		}
	}
	return body, nil
}
