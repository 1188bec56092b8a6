package protocol

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"slices"
	"time"
)

// State is a session state, after ASP.
type State string

// Session states.
const (
	StateIdle       State = "IDLE"       // created; nothing sent
	StateInvited    State = "INVITED"    // invitation sent, awaiting ACCEPT or REJECT
	StateIntroduced State = "INTRODUCED" // invitation accepted
	StateConversing State = "CONVERSING" // talking, no open offer
	StateAgreeing   State = "AGREEING"   // an offer (PROPOSE, COUNTER or COMMIT) is open
	StateExecuting  State = "EXECUTING"  // at least one commitment exists, no open offer
	StateEscalated  State = "ESCALATED"  // paused until an INFORM "resume"
	StateClosed     State = "CLOSED"     // ended normally (terminal)
	StateFailed     State = "FAILED"     // ended abnormally (terminal)
)

// Terminal reports whether no envelope can follow.
func (s State) Terminal() bool { return s == StateClosed || s == StateFailed }

// OfferStatus is the status of an offer (PROPOSE, COUNTER or COMMIT).
type OfferStatus string

// Offer statuses. Only an open offer can be accepted, rejected, countered
// or withdrawn.
const (
	OfferOpen       OfferStatus = "open"
	OfferAccepted   OfferStatus = "accepted"
	OfferRejected   OfferStatus = "rejected"
	OfferCountered  OfferStatus = "countered"
	OfferWithdrawn  OfferStatus = "withdrawn"
	OfferSuperseded OfferStatus = "superseded" // a newer PROPOSE or COMMIT replaced it
	OfferExpired    OfferStatus = "expired"    // validUntil passed
	OfferClosed     OfferStatus = "closed"     // the session ended while it was open
)

// Config parameterises a session. The zero value means the defaults.
type Config struct {
	// InviteTimeout is how long an invitation waits for ACCEPT or REJECT,
	// measured from its timestamp. Default 30 s.
	InviteTimeout time.Duration
	// FreshnessWindow bounds |envelope timestamp - now| in Step. Default 5 min.
	FreshnessWindow time.Duration
	// MaxMessages bounds a transcript. Default 10000.
	MaxMessages int
	// Verified, if set, remembers signatures already verified (or made)
	// by the caller, across sessions: Step skips the Ed25519 check of an
	// envelope or certificate signature it reports as known. It changes no
	// outcome, only the cost: a signature is known only if it verified.
	// Nil: every signature is checked.
	Verified VerifiedSignatures
}

// VerifiedSignatures is a caller's memory of valid signatures. Known
// reports whether sig is a valid signature by pub over the signed digest d
// (d binds the message and its domain); Add records one that is. An
// implementation must be safe for concurrent use and must report Known only
// for what was added. The package never calls Add for an unverified
// signature.
type VerifiedSignatures interface {
	Known(pub []byte, d [32]byte, sig []byte) bool
	Add(pub []byte, d [32]byte, sig []byte)
}

// Defaults of Config.
const (
	DefaultInviteTimeout   = 30 * time.Second
	DefaultFreshnessWindow = 5 * time.Minute
	DefaultMaxMessages     = 10000
)

func (c Config) withDefaults() Config {
	if c.InviteTimeout <= 0 {
		c.InviteTimeout = DefaultInviteTimeout
	}
	if c.FreshnessWindow <= 0 {
		c.FreshnessWindow = DefaultFreshnessWindow
	}
	if c.MaxMessages <= 0 {
		c.MaxMessages = DefaultMaxMessages
	}
	return c
}

// OfferChange reports an offer whose status changed.
type OfferChange struct {
	ID     string // messageId of the offer
	Status OfferStatus
}

// Effects is what a Step or Tick did. The caller records and sends: the
// package itself does nothing.
type Effects struct {
	Envelope   *Envelope     // the envelope appended to the transcript; nil from Tick
	Hash       [32]byte      // its integrity hash (the new head)
	From, To   State         // session state before and after
	Commitment *Commitment   // a commitment born of this step (state PENDING), or nil
	Offers     []OfferChange // offers opened or closed, in order
	Reason     string        // why the state changed without an envelope (Tick), or ""
}

// Changed reports whether anything happened.
func (e Effects) Changed() bool {
	return e.Envelope != nil || e.From != e.To || len(e.Offers) > 0
}

type offer struct {
	id         string
	env        *Envelope
	hash       [32]byte
	by         int // party index of the offerer
	terms      Terms
	validUntil time.Time
	status     OfferStatus
	amends     string
}

type certEntry struct {
	cert *Certificate
}

// Session is one negotiation between two agents: a deterministic state
// machine over a hash-chained transcript of signed envelopes. It performs
// no I/O, reads no clock and starts no goroutine; it is not safe for
// concurrent use (drive each session from one goroutine).
//
// Step and Tick either apply completely or, on error, leave the session
// unchanged.
type Session struct {
	cfg     Config
	id      string
	parties [2]AgentID // initiator, responder
	names   [2]string
	created time.Time

	state  State
	resume State // state to return to from ESCALATED
	reason string

	transcript []*Envelope
	hashes     [][32]byte
	head       [32]byte
	lastTime   time.Time
	seq        [2]uint64
	byID       map[string]int

	invitation string
	invitedAt  time.Time
	offers     map[string]*offer
	offerOrder []string
	open       string

	commitments []*Commitment
	certs       map[string]certEntry // verified certificates by signature
}

// NewSession returns a session in state IDLE between initiator and
// responder. created is informational (truncated to milliseconds). The id
// must satisfy ValidSessionID and the parties must differ; NewSession
// panics otherwise (use SessionFromInvitation for ids from the network).
func NewSession(cfg Config, id string, initiator, responder AgentID, created time.Time) *Session {
	if err := ValidSessionID(id); err != nil {
		panic(err)
	}
	if err := initiator.Validate(); err != nil {
		panic(err)
	}
	if err := responder.Validate(); err != nil {
		panic(err)
	}
	if initiator == responder {
		panic("protocol: a session needs two different agents")
	}
	return &Session{
		cfg:     cfg.withDefaults(),
		id:      id,
		parties: [2]AgentID{initiator, responder},
		names:   [2]string{initiator.String(), responder.String()},
		created: Millis(created),
		state:   StateIdle,
		byID:    map[string]int{},
		offers:  map[string]*offer{},
		certs:   map[string]certEntry{},
	}
}

// SessionFromInvitation creates the responder's copy of a session from a
// received invitation and steps it: the result is INVITED.
func SessionFromInvitation(cfg Config, inv *Envelope, now time.Time) (*Session, Effects, error) {
	if inv == nil {
		return nil, Effects{}, fmt.Errorf("%w: no envelope", ErrMalformed)
	}
	if err := inv.check(); err != nil {
		return nil, Effects{}, err
	}
	if b, ok := inv.Body.(*ProposeBody); !ok || !b.IsInvitation() {
		return nil, Effects{}, fmt.Errorf("%w: first envelope of a session must be a session-invitation", ErrInvalidTransition)
	}
	from, _ := ParseAgentID(inv.Sender)
	to, _ := ParseAgentID(inv.Recipient)
	s := NewSession(cfg, inv.SessionID, from, to, inv.Timestamp)
	eff, err := s.Step(inv, now)
	if err != nil {
		return nil, Effects{}, err
	}
	return s, eff, nil
}

// ID returns the session id.
func (s *Session) ID() string { return s.id }

// Config returns the session's configuration, defaults filled in.
func (s *Session) Config() Config { return s.cfg }

// Parties returns the initiator and the responder.
func (s *Session) Parties() (initiator, responder AgentID) { return s.parties[0], s.parties[1] }

// Created returns the creation time given to NewSession.
func (s *Session) Created() time.Time { return s.created }

// State returns the current state.
func (s *Session) State() State { return s.state }

// Reason explains a FAILED or CLOSED state ("" otherwise).
func (s *Session) Reason() string { return s.reason }

// Head returns the integrity hash of the last envelope (32 zero bytes
// before the first).
func (s *Session) Head() [32]byte { return s.head }

// Len returns the number of envelopes in the transcript.
func (s *Session) Len() int { return len(s.transcript) }

// Transcript returns the envelopes applied, in order. The slice is a copy;
// the envelopes are shared and must not be modified.
func (s *Session) Transcript() []*Envelope { return slices.Clone(s.transcript) }

// Envelope returns the applied envelope with the given messageId.
func (s *Session) Envelope(messageID string) (*Envelope, bool) {
	i, ok := s.byID[messageID]
	if !ok {
		return nil, false
	}
	return s.transcript[i], true
}

// OpenOffer returns the open offer (a PROPOSE, COUNTER or COMMIT), if any.
func (s *Session) OpenOffer() (*Envelope, bool) {
	if s.open == "" {
		return nil, false
	}
	return s.offers[s.open].env, true
}

// OpenTerms returns the terms of the open offer, if any.
func (s *Session) OpenTerms() (Terms, bool) {
	if s.open == "" {
		return Terms{}, false
	}
	return s.offers[s.open].terms, true
}

// Offer returns the status of the offer with the given messageId.
func (s *Session) Offer(messageID string) (OfferStatus, bool) {
	o, ok := s.offers[messageID]
	if !ok {
		return "", false
	}
	return o.status, true
}

// Commitments returns the commitments born in this session, in order, as
// they were created (state PENDING). Their later life (receipts, actions)
// is the caller's: see Commitment.
func (s *Session) Commitments() []*Commitment { return slices.Clone(s.commitments) }

// Commitment returns the commitment of this session with the given id.
func (s *Session) Commitment(id string) (*Commitment, bool) {
	for _, c := range s.commitments {
		if c.ID == id {
			return c, true
		}
	}
	return nil, false
}

// NextSequence returns the sequence number sender's next envelope must
// carry (0 if sender is not a party).
func (s *Session) NextSequence(sender AgentID) uint64 {
	i := s.party(sender.String())
	if i < 0 {
		return 0
	}
	return s.seq[i] + 1
}

// IsParty reports whether a is the initiator or the responder.
func (s *Session) IsParty(a AgentID) bool { return s.party(a.String()) >= 0 }

// Counterparty returns the other party of a.
func (s *Session) Counterparty(a AgentID) (AgentID, bool) {
	i := s.party(a.String())
	if i < 0 {
		return AgentID{}, false
	}
	return s.parties[1-i], true
}

// isName reports whether name is one of the parties' (already validated) ids.
func (s *Session) isName(name string) bool { return name == s.names[0] || name == s.names[1] }

func (s *Session) party(name string) int {
	switch name {
	case s.names[0]:
		return 0
	case s.names[1]:
		return 1
	}
	return -1
}

// settled is the state with no open offer.
func (s *Session) settled() State {
	if len(s.commitments) > 0 {
		return StateExecuting
	}
	return StateConversing
}

// VerifyKey reports whether pub is the key certified for agent in this
// session's transcript.
func (s *Session) VerifyKey(agent AgentID, pub ed25519.PublicKey) bool {
	for _, e := range s.certs {
		if e.cert.AgentID == agent.String() && bytes.Equal(e.cert.PublicKey, pub) {
			return true
		}
	}
	return false
}
