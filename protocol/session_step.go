package protocol

import (
	"bytes"
	"fmt"
	"slices"
	"time"
)

// ---- time ----

// lapse is the effect of time alone at instant t.
type lapse struct {
	inviteTimedOut bool
	offerExpired   string
}

func (s *Session) lapseAt(t time.Time) lapse {
	var l lapse
	if s.state == StateInvited && t.Sub(s.invitedAt) > s.cfg.InviteTimeout {
		l.inviteTimedOut = true
	}
	if s.open != "" {
		if o := s.offers[s.open]; !o.validUntil.IsZero() && t.After(o.validUntil) {
			l.offerExpired = s.open
		}
	}
	return l
}

// Due reports whether Tick(now) would change s: an unanswered invitation
// times out, or an open offer lapses.
func (s *Session) Due(now time.Time) bool {
	l := s.lapseAt(Millis(now))
	return l.inviteTimedOut || l.offerExpired != ""
}

// Tick advances time to now: an invitation unanswered for InviteTimeout
// fails the session; an open offer past its validUntil expires. It never
// moves time backwards and never fails.
func (s *Session) Tick(now time.Time) Effects {
	now = Millis(now)
	eff := Effects{From: s.state, To: s.state}
	l := s.lapseAt(now)
	s.applyLapse(l, &eff)
	eff.To = s.state
	return eff
}

func (s *Session) applyLapse(l lapse, eff *Effects) {
	if l.inviteTimedOut {
		s.state = StateFailed
		s.reason = "invitation timed out"
		eff.Reason = s.reason
	}
	if l.offerExpired != "" {
		s.offers[l.offerExpired].status = OfferExpired
		s.open = ""
		eff.Offers = append(eff.Offers, OfferChange{l.offerExpired, OfferExpired})
		switch s.state {
		case StateAgreeing:
			s.state = s.settled()
		case StateEscalated:
			if s.resume == StateAgreeing {
				s.resume = s.settled()
			}
		}
		if eff.Reason == "" {
			eff.Reason = "offer expired"
		}
	}
}

// ---- Step ----

// Step verifies env and applies it. It checks, in order: well-formedness
// and version; the session id; duplicates (the same messageId and content
// already applied: ErrDuplicate; the same messageId with other content:
// ErrReplay); that sender and recipient are the two parties; the sender's
// certificate (issued by the organisation in the sender's id, valid at the
// envelope's timestamp); the integrity hash and the signature; the
// sequence number (next for this sender: lower is ErrReplay, higher
// ErrSequenceGap); previousHash = Head (else ErrChainMismatch); the
// timestamp (not before the previous envelope's, and within
// FreshnessWindow of now); and finally the legality of the move. Time
// effects (invitation timeout, offer expiry) are evaluated at the
// envelope's timestamp, so two nodes stepping the same transcript agree.
//
// Deadlines are also judged against the receiver's clock, now: an ACCEPT
// of an offer whose validUntil is before now is refused (ErrStaleOffer),
// and so is the acceptance of an invitation older than InviteTimeout at
// now (ErrTimeout), whatever timestamp the sender chose within the
// freshness window. (Replay steps each envelope at its own timestamp; what
// a live node accepted, Replay accepts.)
//
// On error the session is unchanged.
func (s *Session) Step(env *Envelope, now time.Time) (Effects, error) {
	if env == nil {
		return Effects{}, fmt.Errorf("%w: no envelope", ErrMalformed)
	}
	if err := env.checkWith(s.isName); err != nil {
		return Effects{}, err
	}
	if env.SessionID != s.id {
		return Effects{}, fmt.Errorf("%w: %s is not %s", ErrWrongSession, env.SessionID, s.id)
	}
	h := env.Hash()
	if i, ok := s.byID[env.MessageID]; ok {
		if s.hashes[i] == h {
			return Effects{}, fmt.Errorf("%w: %s", ErrDuplicate, env.MessageID)
		}
		return Effects{}, fmt.Errorf("%w: messageId %s reused with other content", ErrReplay, env.MessageID)
	}
	si := s.party(env.Sender)
	if si < 0 || env.Recipient != s.names[1-si] {
		return Effects{}, fmt.Errorf("%w: %s → %s in session %s", ErrNotParty, env.Sender, env.Recipient, s.id)
	}
	newCert, err := s.checkCertificate(env)
	if err != nil {
		return Effects{}, err
	}
	if err := env.verifySignatureCached(h, s.cfg.Verified); err != nil {
		return Effects{}, err
	}
	if want := s.seq[si] + 1; env.SequenceNumber != want {
		if env.SequenceNumber < want {
			return Effects{}, fmt.Errorf("%w: sequence %d from %s, next is %d", ErrReplay, env.SequenceNumber, env.Sender, want)
		}
		return Effects{}, fmt.Errorf("%w: sequence %d from %s, next is %d", ErrSequenceGap, env.SequenceNumber, env.Sender, want)
	}
	if env.Integrity.PreviousHash != s.head {
		return Effects{}, fmt.Errorf("%w: message %s", ErrChainMismatch, env.MessageID)
	}
	if env.Timestamp.Before(s.lastTime) {
		return Effects{}, fmt.Errorf("%w: %s before %s", ErrTimeRegressed, FormatTime(env.Timestamp), FormatTime(s.lastTime))
	}
	if d := env.Timestamp.Sub(now); d > s.cfg.FreshnessWindow || -d > s.cfg.FreshnessWindow {
		return Effects{}, fmt.Errorf("%w: %s vs now %s", ErrNotFresh, FormatTime(env.Timestamp), FormatTime(now))
	}
	if len(s.transcript) >= s.cfg.MaxMessages {
		return Effects{}, fmt.Errorf("%w: session has %d messages", ErrTooLarge, len(s.transcript))
	}
	pl, err := s.plan(env, h)
	if err != nil {
		return Effects{}, err
	}
	if err := s.checkReceivedInTime(pl, Millis(now)); err != nil {
		return Effects{}, err
	}
	if newCert != nil {
		s.certs[string(newCert.Signature)] = certEntry{newCert}
	}
	return s.apply(pl), nil
}

// checkReceivedInTime refuses an acceptance that arrives, by the
// receiver's clock now, after the deadline of what it accepts: the offer's
// validUntil, or the invitation's InviteTimeout.
func (s *Session) checkReceivedInTime(p *plan, now time.Time) error {
	if c := p.commitment; c != nil {
		if o := s.offers[c.Offer.MessageID]; o != nil && !o.validUntil.IsZero() && now.After(o.validUntil) {
			return fmt.Errorf("%w: offer %s was valid until %s, the ACCEPT arrived at %s", ErrStaleOffer,
				o.id, FormatTime(o.validUntil), FormatTime(now))
		}
	}
	if s.state == StateInvited && p.to == StateIntroduced && now.Sub(s.invitedAt) > s.cfg.InviteTimeout {
		return fmt.Errorf("%w: invitation of %s accepted at %s, after %s", ErrTimeout, FormatTime(s.invitedAt),
			FormatTime(now), s.cfg.InviteTimeout)
	}
	return nil
}

// checkCertificate verifies env's certificate, using the cache of
// certificates already verified in this session. It returns the
// certificate to add to the cache, if any.
func (s *Session) checkCertificate(env *Envelope) (*Certificate, error) {
	c := env.Certificate
	if c == nil {
		return nil, fmt.Errorf("%w: envelope carries no certificate", ErrBadCertificate)
	}
	if c.AgentID != env.Sender {
		return nil, fmt.Errorf("%w: certificate of %s on a message from %s", ErrBadCertificate, c.AgentID, env.Sender)
	}
	if e, ok := s.certs[string(c.Signature)]; ok && sameCertificate(e.cert, c) {
		if env.Timestamp.After(c.NotAfter) {
			return nil, fmt.Errorf("%w: %s expired at %s", ErrCertificateExpired, c.AgentID, FormatTime(c.NotAfter))
		}
		return nil, nil
	}
	if err := c.verifyCached(env.Timestamp, s.cfg.Verified); err != nil {
		return nil, err
	}
	cp := *c
	cp.PublicKey = slices.Clone(c.PublicKey)
	cp.Capabilities = slices.Clone(c.Capabilities)
	cp.Signature = slices.Clone(c.Signature)
	return &cp, nil
}

func sameCertificate(a, b *Certificate) bool {
	return a.AgentID == b.AgentID && bytes.Equal(a.PublicKey, b.PublicKey) && a.NotAfter.Equal(b.NotAfter) &&
		slices.Equal(a.Capabilities, b.Capabilities) && bytes.Equal(a.Signature, b.Signature)
}

// plan is a legal move, computed without changing the session.
type plan struct {
	env    *Envelope
	hash   [32]byte
	si     int
	lapse  lapse
	to     State
	resume State
	reason string

	invitation bool
	offerTo    map[string]OfferStatus // status changes of existing offers
	newOffer   *offer
	open       string // open offer after the move
	commitment *Commitment
}

func (s *Session) plan(env *Envelope, h [32]byte) (*plan, error) {
	si := s.party(env.Sender)
	if si < 0 || env.Recipient != s.names[1-si] {
		return nil, fmt.Errorf("%w: %s → %s in session %s", ErrNotParty, env.Sender, env.Recipient, s.id)
	}
	p := &plan{env: env, hash: h, si: si, lapse: s.lapseAt(env.Timestamp), resume: s.resume, open: s.open,
		offerTo: map[string]OfferStatus{}}
	// The state as time alone has left it at the envelope's timestamp.
	state := s.state
	if p.lapse.inviteTimedOut {
		state = StateFailed
	}
	if x := p.lapse.offerExpired; x != "" {
		p.offerTo[x] = OfferExpired
		p.open = ""
		switch state {
		case StateAgreeing:
			state = s.settled()
		case StateEscalated:
			if p.resume == StateAgreeing {
				p.resume = s.settled()
			}
		}
	}
	p.to = state
	perf := env.Performative
	illegal := func() error {
		return fmt.Errorf("%w: %s from %s in %s", ErrInvalidTransition, perf, s.names[si], state)
	}

	switch state {
	case StateClosed, StateFailed:
		if p.lapse.inviteTimedOut {
			return nil, fmt.Errorf("%w: invitation unanswered for %s", ErrTimeout, s.cfg.InviteTimeout)
		}
		return nil, fmt.Errorf("%w: %s", ErrSessionClosed, state)

	case StateIdle:
		b, ok := env.Body.(*ProposeBody)
		if !ok || !b.IsInvitation() || si != 0 {
			return nil, illegal()
		}
		p.invitation = true
		p.to = StateInvited
		return p, nil

	case StateInvited:
		switch b := env.Body.(type) {
		case *AcceptBody:
			if si == 0 {
				return nil, fmt.Errorf("%w: the initiator cannot accept its own invitation", ErrOwnOffer)
			}
			if err := s.checkRef(b.ReferenceID, b.ReferenceHash, s.invitation); err != nil {
				return nil, err
			}
			p.to = StateIntroduced
		case *RejectBody:
			if si == 0 {
				return nil, fmt.Errorf("%w: the initiator cannot reject its own invitation", ErrOwnOffer)
			}
			if err := s.checkRef(b.ReferenceID, nil, s.invitation); err != nil {
				return nil, err
			}
			p.to, p.reason = StateFailed, "invitation rejected"
		case *WithdrawBody:
			if si != 0 {
				return nil, illegal()
			}
			if err := s.checkRef(b.ReferenceID, nil, s.invitation); err != nil {
				return nil, err
			}
			p.to, p.reason = StateFailed, "invitation withdrawn"
		case *CloseBody:
			p.to, p.reason = StateClosed, closeReason(b)
		default:
			return nil, illegal()
		}
		return p, nil

	case StateEscalated:
		switch b := env.Body.(type) {
		case *InformBody:
			if b.InformType == InformResume {
				p.to = p.resume
				p.resume = ""
			}
		case *QueryBody, *ClarifyBody, *ObserveBody:
			if err := s.checkClarify(env.Body); err != nil {
				return nil, err
			}
		case *CloseBody:
			s.closeOpen(p)
			p.to, p.reason = StateClosed, closeReason(b)
		default:
			return nil, fmt.Errorf("%w: %s while escalated", ErrEscalated, perf)
		}
		return p, nil
	}

	// INTRODUCED, CONVERSING, AGREEING, EXECUTING.
	switch b := env.Body.(type) {
	case *ProposeBody:
		if b.IsInvitation() {
			return nil, illegal()
		}
		if err := s.checkAmends(b.Amends); err != nil {
			return nil, err
		}
		if err := s.openOffer(p, env, h, *b.Terms, b.ValidUntil, b.Amends); err != nil {
			return nil, err
		}
	case *CommitBody:
		if b.ReferenceID != "" {
			if _, ok := s.offers[b.ReferenceID]; !ok {
				return nil, fmt.Errorf("%w: COMMIT references %q, not an offer of this session", ErrBadReference, b.ReferenceID)
			}
		}
		if err := s.checkAmends(b.Amends); err != nil {
			return nil, err
		}
		for _, o := range b.Obligations {
			if s.party(o.Party) < 0 {
				return nil, fmt.Errorf("%w: obligation of %s, not a party", ErrBadReference, o.Party)
			}
		}
		if err := s.openOffer(p, env, h, b.Terms, b.ValidUntil, b.Amends); err != nil {
			return nil, err
		}
	case *CounterBody:
		o, err := s.answerable(p, b.ReferenceID)
		if err != nil {
			return nil, err
		}
		if o.by == si {
			return nil, fmt.Errorf("%w: %s cannot counter its own offer", ErrOwnOffer, s.names[si])
		}
		if b.Amends != o.amends {
			return nil, fmt.Errorf("%w: a counter amends what the countered offer amends (%q)", ErrBadReference, o.amends)
		}
		p.offerTo[o.id] = OfferCountered
		if err := s.openOffer(p, env, h, b.Terms, b.ValidUntil, b.Amends); err != nil {
			return nil, err
		}
	case *AcceptBody:
		if b.ReferenceID != "" && b.ReferenceID == s.invitation {
			return nil, fmt.Errorf("%w: the invitation was already accepted", ErrAlreadyAccepted)
		}
		o, err := s.answerable(p, b.ReferenceID)
		if err != nil {
			return nil, err
		}
		if o.by == si {
			return nil, fmt.Errorf("%w: %s cannot accept its own offer", ErrOwnOffer, s.names[si])
		}
		if len(b.ReferenceHash) != 0 && !bytes.Equal(b.ReferenceHash, o.hash[:]) {
			return nil, fmt.Errorf("%w: referenceHash is not the hash of %s", ErrBadReference, o.id)
		}
		p.offerTo[o.id] = OfferAccepted
		p.open = ""
		p.commitment = newCommitment(s.id, o.env, o.hash, o.terms, o.amends, env, h)
		p.to = StateExecuting
	case *RejectBody:
		if b.ReferenceID != "" && b.ReferenceID == s.invitation {
			return nil, fmt.Errorf("%w: the invitation was already accepted", ErrAlreadyAccepted)
		}
		o, err := s.answerable(p, b.ReferenceID)
		if err != nil {
			return nil, err
		}
		if o.by == si {
			return nil, fmt.Errorf("%w: withdraw an own offer, do not reject it", ErrOwnOffer)
		}
		p.offerTo[o.id] = OfferRejected
		p.open = ""
		p.to = s.settled()
	case *WithdrawBody:
		o, err := s.answerable(p, b.ReferenceID)
		if err != nil {
			return nil, err
		}
		if o.by != si {
			return nil, fmt.Errorf("%w: %s can withdraw only its own offer", ErrInvalidTransition, s.names[si])
		}
		p.offerTo[o.id] = OfferWithdrawn
		p.open = ""
		p.to = s.settled()
	case *InformBody:
		if b.InformType == InformResume {
			return nil, fmt.Errorf("%w: nothing to resume in %s", ErrInvalidTransition, state)
		}
		p.to = talk(state)
	case *QueryBody, *ClarifyBody, *ObserveBody:
		if err := s.checkClarify(env.Body); err != nil {
			return nil, err
		}
		p.to = talk(state)
	case *DelegateBody:
		if b.Delegate == s.names[si] {
			return nil, fmt.Errorf("%w: delegation to oneself", ErrMalformed)
		}
		p.to = talk(state)
	case *EscalateBody:
		p.resume = talk(state)
		p.to = StateEscalated
	case *CloseBody:
		s.closeOpen(p)
		p.to, p.reason = StateClosed, closeReason(b)
	default:
		return nil, illegal()
	}
	return p, nil
}

// talk is the state after a message that neither offers nor answers.
func talk(s State) State {
	if s == StateIntroduced {
		return StateConversing
	}
	return s
}

func closeReason(b *CloseBody) string {
	if b.Reason != "" {
		return b.Reason
	}
	return "closed"
}

func (s *Session) closeOpen(p *plan) {
	if p.open != "" {
		p.offerTo[p.open] = OfferClosed
		p.open = ""
	}
}

// openOffer records in p a new open offer made by env.
func (s *Session) openOffer(p *plan, env *Envelope, h [32]byte, t Terms, validUntil time.Time, amends string) error {
	if !validUntil.IsZero() && !validUntil.After(env.Timestamp) {
		return fmt.Errorf("%w: validUntil %s is not after the offer's timestamp", ErrMalformed, FormatTime(validUntil))
	}
	if err := CheckTermsRoles(t, s.names[0], s.names[1]); err != nil {
		return err
	}
	if p.open != "" {
		if _, set := p.offerTo[p.open]; !set {
			p.offerTo[p.open] = OfferSuperseded
		}
	}
	p.newOffer = &offer{id: env.MessageID, env: env, hash: h, by: p.si, terms: t, validUntil: validUntil,
		status: OfferOpen, amends: amends}
	p.open = env.MessageID
	p.to = StateAgreeing
	return nil
}

// answerable resolves the offer an ACCEPT, REJECT, COUNTER or WITHDRAW
// answers: ref, or the open offer if ref is empty. The offer must be open.
func (s *Session) answerable(p *plan, ref string) (*offer, error) {
	if ref == "" {
		if p.open == "" {
			if p.lapse.offerExpired != "" {
				return nil, fmt.Errorf("%w: offer %s expired", ErrStaleOffer, p.lapse.offerExpired)
			}
			return nil, fmt.Errorf("%w: no open offer", ErrInvalidTransition)
		}
		ref = p.open
	}
	o, ok := s.offers[ref]
	if !ok {
		return nil, fmt.Errorf("%w: %q is not an offer of this session", ErrBadReference, ref)
	}
	if ref != p.open {
		st := o.status
		if x, ok := p.offerTo[ref]; ok {
			st = x
		}
		if st == OfferAccepted {
			return nil, fmt.Errorf("%w: %s", ErrAlreadyAccepted, ref)
		}
		return nil, fmt.Errorf("%w: offer %s is %s", ErrStaleOffer, ref, st)
	}
	return o, nil
}

func (s *Session) checkRef(ref string, hash []byte, want string) error {
	if ref != "" && ref != want {
		return fmt.Errorf("%w: %q is not the invitation", ErrBadReference, ref)
	}
	if len(hash) != 0 {
		h := s.hashes[s.byID[want]]
		if !bytes.Equal(hash, h[:]) {
			return fmt.Errorf("%w: referenceHash is not the invitation's hash", ErrBadReference)
		}
	}
	return nil
}

func (s *Session) checkAmends(id string) error {
	if id == "" {
		return nil
	}
	if _, ok := s.Commitment(id); !ok {
		return fmt.Errorf("%w: amends %q, not a commitment of this session", ErrBadReference, id)
	}
	return nil
}

func (s *Session) checkClarify(b Body) error {
	if c, ok := b.(*ClarifyBody); ok && c.ReferenceID != "" {
		if _, ok := s.byID[c.ReferenceID]; !ok {
			return fmt.Errorf("%w: CLARIFY references unknown message %q", ErrBadReference, c.ReferenceID)
		}
	}
	return nil
}

// apply commits a plan. It cannot fail.
func (s *Session) apply(p *plan) Effects {
	eff := Effects{Envelope: p.env, Hash: p.hash, From: s.state}
	env := p.env
	si := p.si
	// Offer status changes, in a deterministic order (transcript order).
	if len(p.offerTo) > 0 {
		ids := make([]string, 0, len(p.offerTo))
		for id := range p.offerTo {
			ids = append(ids, id)
		}
		slices.SortFunc(ids, func(a, b string) int { return s.byID[a] - s.byID[b] })
		for _, id := range ids {
			st := p.offerTo[id]
			s.offers[id].status = st
			eff.Offers = append(eff.Offers, OfferChange{id, st})
		}
	}
	if o := p.newOffer; o != nil {
		s.offers[o.id] = o
		s.offerOrder = append(s.offerOrder, o.id)
		eff.Offers = append(eff.Offers, OfferChange{o.id, OfferOpen})
	}
	s.open = p.open
	if p.invitation {
		s.invitation = env.MessageID
		s.invitedAt = env.Timestamp
	}
	if p.commitment != nil {
		s.commitments = append(s.commitments, p.commitment)
		eff.Commitment = p.commitment
	}
	s.byID[env.MessageID] = len(s.transcript)
	s.transcript = append(s.transcript, env)
	s.hashes = append(s.hashes, p.hash)
	s.head = p.hash
	s.lastTime = env.Timestamp
	s.seq[si] = env.SequenceNumber
	s.state = p.to
	s.resume = p.resume
	if p.lapse.inviteTimedOut {
		panic("protocol: applied a move after the invitation timed out")
	}
	if p.reason != "" {
		s.reason = p.reason
	}
	if s.state != StateEscalated {
		s.resume = ""
	}
	eff.To = s.state
	if eff.From == StateFailed || eff.From == StateClosed {
		panic("protocol: applied a move in a terminal state")
	}
	return eff
}
