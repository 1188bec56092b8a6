package protocol

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"
)

// CommitmentState is the lifecycle state of a commitment.
type CommitmentState string

// Commitment states.
//
//	PENDING → ACTIVE                      when every party organisation's receipt is held
//	ACTIVE → FULFILLMENT_CLAIMED → FULFILLED   claim, then the other party confirms
//	ACTIVE | FULFILLMENT_CLAIMED | EXPIRED → DISPUTED → RESOLVED | BREACHED
//	ACTIVE → EXPIRED                      deadline passed without a claim (Expire)
//	PENDING | ACTIVE | FULFILLMENT_CLAIMED | EXPIRED → CANCELLED   signed by both parties
const (
	CommitmentPending            CommitmentState = "PENDING"
	CommitmentActive             CommitmentState = "ACTIVE"
	CommitmentFulfillmentClaimed CommitmentState = "FULFILLMENT_CLAIMED"
	CommitmentFulfilled          CommitmentState = "FULFILLED"
	CommitmentDisputed           CommitmentState = "DISPUTED"
	CommitmentResolved           CommitmentState = "RESOLVED"
	CommitmentBreached           CommitmentState = "BREACHED"
	CommitmentExpired            CommitmentState = "EXPIRED"
	CommitmentCancelled          CommitmentState = "CANCELLED"
)

// Final reports whether no action can follow.
func (s CommitmentState) Final() bool {
	switch s {
	case CommitmentFulfilled, CommitmentResolved, CommitmentBreached, CommitmentCancelled:
		return true
	}
	return false
}

// CommitmentIDPrefix starts every commitment id.
const CommitmentIDPrefix = "cmt_"

// CommitmentID derives a commitment id from the integrity hashes of the
// offer and of its acceptance: "cmt_" followed by the lower-case hex of
// the first 16 bytes of SHA-256("asp/1.0 commitment" || 0x00 || offer ||
// acceptance).
func CommitmentID(offerHash, acceptanceHash [32]byte) string {
	h := sha256.New()
	h.Write([]byte("asp/1.0 commitment\x00"))
	h.Write(offerHash[:])
	h.Write(acceptanceHash[:])
	return CommitmentIDPrefix + hex.EncodeToString(h.Sum(nil)[:16])
}

// Commitment is an accepted offer: the offer and its acceptance, both
// signed, plus what happened to it since. Values are treated as immutable:
// AddReceipt, Apply and Expire return a new Commitment.
type Commitment struct {
	ID         string
	SessionID  string
	Proposer   string      // agent id of the offerer
	Acceptor   string      // agent id of the acceptor
	Terms      Terms       // the offer's terms
	Commit     *CommitBody // the COMMIT body, when the offer was a COMMIT
	Amends     string      // id of the commitment this one amends, or ""
	Offer      *Envelope   // the PROPOSE, COUNTER or COMMIT accepted
	Acceptance *Envelope   // the ACCEPT
	OfferHash  [32]byte    // the offer's integrity hash
	Head       [32]byte    // transcript head when accepted (the acceptance's hash)
	Created    time.Time   // the acceptance's timestamp

	State     CommitmentState
	Receipts  []*Receipt // one per party organisation, in arrival order
	Actions   []*Action  // applied actions, in order
	ExpiredAt time.Time  // when Expire moved it to EXPIRED, else zero
	Updated   time.Time  // time of the last change
}

func newCommitment(sessionID string, offerEnv *Envelope, offerHash [32]byte, t Terms, amends string, acc *Envelope, accHash [32]byte) *Commitment {
	c := &Commitment{
		ID:         CommitmentID(offerHash, accHash),
		SessionID:  sessionID,
		Proposer:   offerEnv.Sender,
		Acceptor:   acc.Sender,
		Terms:      t,
		Amends:     amends,
		Offer:      offerEnv,
		Acceptance: acc,
		OfferHash:  offerHash,
		Head:       accHash,
		Created:    acc.Timestamp,
		State:      CommitmentPending,
		Updated:    acc.Timestamp,
	}
	if cb, ok := offerEnv.Body.(*CommitBody); ok {
		c.Commit = cb
	}
	return c
}

// Parties returns the proposer and the acceptor.
func (c *Commitment) Parties() []string { return []string{c.Proposer, c.Acceptor} }

// IsParty reports whether agent (an agent id) is a party.
func (c *Commitment) IsParty(agent string) bool { return agent == c.Proposer || agent == c.Acceptor }

// Orgs returns the distinct peer ids of the parties' organisations: the
// organisations whose receipts make the commitment ACTIVE.
func (c *Commitment) Orgs() []string {
	a, _ := ParseAgentID(c.Proposer)
	b, _ := ParseAgentID(c.Acceptor)
	if a.Org == b.Org {
		return []string{a.Org}
	}
	return []string{a.Org, b.Org}
}

// Deadline is the terms' deliverBy (zero if none).
func (c *Commitment) Deadline() time.Time { return c.Terms.DeliverBy }

// Signatures returns the agents' signatures binding the commitment: the
// offer's and the acceptance's.
func (c *Commitment) Signatures() [][]byte {
	return [][]byte{c.Offer.Integrity.Signature, c.Acceptance.Integrity.Signature}
}

func (c *Commitment) clone() *Commitment {
	x := *c
	x.Receipts = slices.Clone(c.Receipts)
	x.Actions = slices.Clone(c.Actions)
	return &x
}

// Expire returns c moved to EXPIRED if it is ACTIVE and now is past its
// deadline, and whether it moved. A commitment without deadline never
// expires.
func (c *Commitment) Expire(now time.Time) (*Commitment, bool) {
	d := c.Deadline()
	if c.State != CommitmentActive || d.IsZero() || !now.After(d) {
		return c, false
	}
	n := c.clone()
	n.State = CommitmentExpired
	n.ExpiredAt = Millis(now)
	n.Updated = n.ExpiredAt
	return n, true
}

// Apply returns c changed by the signed action a, or an error and no
// change. It verifies a (Action.Verify), that it names c, that its time
// is not before c's last change, and that its kind is allowed in c's
// state and signed by whom it must be:
//
//	claim    a party                      ACTIVE → FULFILLMENT_CLAIMED
//	confirm  the party that did not claim  FULFILLMENT_CLAIMED → FULFILLED
//	dispute  a party                      ACTIVE | FULFILLMENT_CLAIMED | EXPIRED → DISPUTED
//	resolve  the terms' arbiter, or both parties   DISPUTED → RESOLVED | BREACHED
//	cancel   both parties                 PENDING | ACTIVE | FULFILLMENT_CLAIMED | EXPIRED → CANCELLED
//
// A claim or confirm naming an obligation other than the delivery
// (Action.Obligation) changes no state: see applyObligation. A claim
// naming the delivery explicitly must be the provider's.
func (c *Commitment) Apply(a *Action) (*Commitment, error) {
	if a == nil {
		return nil, fmt.Errorf("%w: no action", ErrMalformed)
	}
	if a.CommitmentID != c.ID {
		return nil, fmt.Errorf("%w: action for %s, not %s", ErrWrongCommitment, a.CommitmentID, c.ID)
	}
	if err := a.Verify(); err != nil {
		return nil, err
	}
	if a.Time.Before(c.Updated) {
		return nil, fmt.Errorf("%w: action at %s, commitment changed at %s", ErrTimeRegressed,
			FormatTime(a.Time), FormatTime(c.Updated))
	}
	signed := func(agent string) bool { return slices.Contains(a.Signers(), agent) }
	in := func(states ...CommitmentState) error {
		if !slices.Contains(states, c.State) {
			return fmt.Errorf("%w: %s in %s", ErrCommitmentState, a.Kind, c.State)
		}
		return nil
	}
	party := func() error {
		if !c.IsParty(a.Actor) {
			return fmt.Errorf("%w: %s is not a party of %s", ErrNotParty, a.Actor, c.ID)
		}
		return nil
	}
	if !isDelivery(a.Obligation) {
		return c.applyObligation(a)
	}
	var to CommitmentState
	switch a.Kind {
	case ActionClaim:
		if a.Obligation != "" && a.Actor != c.Provider() {
			return nil, fmt.Errorf("%w: %s does not owe the delivery", ErrNotParty, a.Actor)
		}
		if err := party(); err != nil {
			return nil, err
		}
		if err := in(CommitmentActive); err != nil {
			return nil, err
		}
		to = CommitmentFulfillmentClaimed
	case ActionConfirm:
		if err := party(); err != nil {
			return nil, err
		}
		if err := in(CommitmentFulfillmentClaimed); err != nil {
			return nil, err
		}
		if claim := c.claimOf(ObligationKeyDelivery); claim != nil && claim.Actor == a.Actor {
			return nil, fmt.Errorf("%w: the claimant cannot confirm its own claim", ErrOwnOffer)
		}
		to = CommitmentFulfilled
	case ActionDispute:
		if err := party(); err != nil {
			return nil, err
		}
		if err := in(CommitmentActive, CommitmentFulfillmentClaimed, CommitmentExpired); err != nil {
			return nil, err
		}
		to = CommitmentDisputed
	case ActionResolve:
		if err := in(CommitmentDisputed); err != nil {
			return nil, err
		}
		arb := c.Terms.Arbiter
		byArbiter := arb != "" && a.Actor == arb
		byBoth := signed(c.Proposer) && signed(c.Acceptor)
		if !byArbiter && !byBoth {
			if arb == "" || c.IsParty(a.Actor) {
				return nil, fmt.Errorf("%w: a ruling needs the arbiter's or both parties' signatures", ErrMissingSignature)
			}
			return nil, fmt.Errorf("%w: %s", ErrNotArbiter, a.Actor)
		}
		if a.Outcome == CommitmentBreached && !c.IsParty(a.Breacher) {
			return nil, fmt.Errorf("%w: breacher %s is not a party", ErrNotParty, a.Breacher)
		}
		to = a.Outcome
	case ActionCancel:
		if err := party(); err != nil {
			return nil, err
		}
		if err := in(CommitmentPending, CommitmentActive, CommitmentFulfillmentClaimed, CommitmentExpired); err != nil {
			return nil, err
		}
		if !signed(c.Proposer) || !signed(c.Acceptor) {
			return nil, fmt.Errorf("%w: cancellation needs both parties' signatures", ErrMissingSignature)
		}
		to = CommitmentCancelled
	}
	n := c.clone()
	n.Actions = append(n.Actions, a)
	n.State = to
	n.Updated = a.Time
	return n, nil
}

// applyObligation applies a claim or confirm of an obligation other than
// the delivery: it records the action and changes no state. A claim is
// signed by the obligor, once; a confirm by the obligee, once, after the
// claim. Both are refused once the commitment is cancelled or ruled on.
func (c *Commitment) applyObligation(a *Action) (*Commitment, error) {
	d, ok := c.Obligation(a.Obligation)
	if !ok {
		return nil, fmt.Errorf("%w: %q in %s", ErrNoObligation, a.Obligation, c.ID)
	}
	switch c.State {
	case CommitmentPending, CommitmentCancelled, CommitmentResolved, CommitmentBreached:
		return nil, fmt.Errorf("%w: %s of %s in %s", ErrCommitmentState, a.Kind, d.Key, c.State)
	}
	switch a.Kind {
	case ActionClaim:
		if a.Actor != d.Obligor {
			return nil, fmt.Errorf("%w: %s does not owe %s", ErrNotParty, a.Actor, d.Key)
		}
		if c.claimOf(d.Key) != nil {
			return nil, fmt.Errorf("%w: %s already claimed", ErrCommitmentState, d.Key)
		}
	case ActionConfirm:
		if a.Actor != d.Obligee {
			return nil, fmt.Errorf("%w: %s is not owed %s", ErrNotParty, a.Actor, d.Key)
		}
		if c.claimOf(d.Key) == nil {
			return nil, fmt.Errorf("%w: confirm of %s before its claim", ErrCommitmentState, d.Key)
		}
		if c.confirmOf(d.Key) != nil {
			return nil, fmt.Errorf("%w: %s already confirmed", ErrCommitmentState, d.Key)
		}
	}
	n := c.clone()
	n.Actions = append(n.Actions, a)
	n.Updated = a.Time
	return n, nil
}

// claimOf returns the first claim of the obligation key (for the
// delivery: the claim that moved the commitment to FULFILLMENT_CLAIMED).
func (c *Commitment) claimOf(key string) *Action { return c.firstOf(ActionClaim, key) }

// confirmOf returns the confirmation of the obligation key, if any.
func (c *Commitment) confirmOf(key string) *Action { return c.firstOf(ActionConfirm, key) }

func (c *Commitment) firstOf(k ActionKind, key string) *Action {
	for _, a := range c.Actions {
		if a.Kind == k && (a.Obligation == key || isDelivery(key) && isDelivery(a.Obligation)) {
			return a
		}
	}
	return nil
}
