package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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

// Receipt proves that an organisation recorded a commitment in its ledger:
// its node's signature over the commitment's full offer and acceptance
// hashes (and the id derived from them), the ledger index of the entry and
// the signed checkpoint that covers it.
//
// Receipt format asp/1.1: the signature is made under the domain
// "asp/1.1 receipt", so no asp/1.0 receipt (which signed only the 128-bit
// commitment id) verifies as one.
type Receipt struct {
	CommitmentID   string
	Org            string   // peer id of the organisation (its node)
	OfferHash      [32]byte // integrity hash of the offer accepted
	AcceptanceHash [32]byte // integrity hash of the ACCEPT
	LedgerIndex    uint64   // index of the commitment's entry in Org's ledger
	Checkpoint     []byte   // Org's signed checkpoint covering LedgerIndex
	Signature      []byte   // by Org's key, over the other fields
}

type wireReceipt struct {
	CommitmentID   string `cbor:"commitmentId" json:"commitmentId"`
	Org            string `cbor:"org" json:"org"`
	OfferHash      b64    `cbor:"offerHash" json:"offerHash"`
	AcceptanceHash b64    `cbor:"acceptanceHash" json:"acceptanceHash"`
	LedgerIndex    uint64 `cbor:"ledgerIndex" json:"ledgerIndex"`
	Checkpoint     b64    `cbor:"checkpoint" json:"checkpoint"`
	Signature      b64    `cbor:"signature,omitempty" json:"signature,omitempty"`
}

func (r *Receipt) wire(signing bool) wireReceipt {
	w := wireReceipt{r.CommitmentID, r.Org, slices.Clone(r.OfferHash[:]), slices.Clone(r.AcceptanceHash[:]),
		r.LedgerIndex, r.Checkpoint, r.Signature}
	if w.Checkpoint == nil {
		w.Checkpoint = b64{}
	}
	if signing {
		w.Signature = nil
	}
	return w
}

func (w *wireReceipt) receipt() (*Receipt, error) {
	if len(w.OfferHash) != sha256.Size || len(w.AcceptanceHash) != sha256.Size {
		return nil, fmt.Errorf("%w: receipt hashes of %d and %d bytes, want %d", ErrMalformed,
			len(w.OfferHash), len(w.AcceptanceHash), sha256.Size)
	}
	r := &Receipt{CommitmentID: w.CommitmentID, Org: w.Org, LedgerIndex: w.LedgerIndex, Checkpoint: w.Checkpoint,
		Signature: w.Signature}
	copy(r.OfferHash[:], w.OfferHash)
	copy(r.AcceptanceHash[:], w.AcceptanceHash)
	return r, nil
}

// SignReceipt makes org's receipt for the commitment formed by the offer
// and the acceptance of the given integrity hashes, recorded at
// ledgerIndex, covered by checkpoint.
func SignReceipt(org ed25519.PrivateKey, offerHash, acceptanceHash [32]byte, ledgerIndex uint64, checkpoint []byte) (*Receipt, error) {
	if len(org) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: organisation key", ErrBadKey)
	}
	r := &Receipt{
		CommitmentID:   CommitmentID(offerHash, acceptanceHash),
		Org:            PeerIDFromPublicKey(org.Public().(ed25519.PublicKey)),
		OfferHash:      offerHash,
		AcceptanceHash: acceptanceHash,
		LedgerIndex:    ledgerIndex,
		Checkpoint:     slices.Clone(checkpoint),
	}
	d, _, err := digest(r.wire(true))
	if err != nil {
		return nil, err
	}
	if r.Signature, err = signDigest(org, domainReceipt, d); err != nil {
		return nil, err
	}
	return r, nil
}

// SignCommitmentReceipt is SignReceipt for c.
func SignCommitmentReceipt(org ed25519.PrivateKey, c *Commitment, ledgerIndex uint64, checkpoint []byte) (*Receipt, error) {
	return SignReceipt(org, c.OfferHash, c.Head, ledgerIndex, checkpoint)
}

// Verify checks that the receipt's commitment id is the one its hashes
// derive (ErrWrongCommitment) and its signature against the key in its Org
// peer id (ErrBadSignature).
func (r *Receipt) Verify() error {
	if id := CommitmentID(r.OfferHash, r.AcceptanceHash); r.CommitmentID != id {
		return fmt.Errorf("%w: receipt names %s, its hashes form %s", ErrWrongCommitment, r.CommitmentID, id)
	}
	pub, err := PublicKeyFromPeerID(r.Org)
	if err != nil {
		return err
	}
	d, _, err := digest(r.wire(true))
	if err != nil {
		return err
	}
	if !verifyDigest(pub, domainReceipt, d, r.Signature) {
		return fmt.Errorf("%w: receipt of %s for %s", ErrBadSignature, r.Org, r.CommitmentID)
	}
	return nil
}

// EncodeReceipt returns the canonical CBOR of a receipt.
func EncodeReceipt(r *Receipt) ([]byte, error) { return canonical(r.wire(false)) }

// DecodeReceipt decodes canonical CBOR; it does not verify the signature.
func DecodeReceipt(b []byte) (*Receipt, error) {
	var w wireReceipt
	if err := decodeCanonical(b, &w); err != nil {
		return nil, fmt.Errorf("receipt: %w", err)
	}
	return w.receipt()
}

// MarshalJSON encodes the receipt's JSON form.
func (r *Receipt) MarshalJSON() ([]byte, error) { return json.Marshal(r.wire(false)) }

// UnmarshalJSON decodes the receipt's JSON form strictly.
func (r *Receipt) UnmarshalJSON(b []byte) error {
	var w wireReceipt
	if err := strictJSON(b, &w); err != nil {
		return err
	}
	x, err := w.receipt()
	if err != nil {
		return err
	}
	*r = *x
	return nil
}

// CheckReceipt checks that r is a valid receipt for c: it names c, by id
// and by the full hashes of c's offer and acceptance (ErrWrongCommitment),
// it is from a party organisation (ErrReceiptOrg) and its signature
// verifies (ErrBadSignature). It does not look at c's other receipts.
func (c *Commitment) CheckReceipt(r *Receipt) error {
	if r == nil {
		return fmt.Errorf("%w: no receipt", ErrMalformed)
	}
	if r.CommitmentID != c.ID {
		return fmt.Errorf("%w: receipt for %s, not %s", ErrWrongCommitment, r.CommitmentID, c.ID)
	}
	if r.OfferHash != c.OfferHash || r.AcceptanceHash != c.Head {
		return fmt.Errorf("%w: receipt for %s names another offer or acceptance", ErrWrongCommitment, c.ID)
	}
	if !slices.Contains(c.Orgs(), r.Org) {
		return fmt.Errorf("%w: %s", ErrReceiptOrg, r.Org)
	}
	return r.Verify()
}

// Receipted reports whether c holds every party organisation's receipt:
// both organisations recorded it.
func (c *Commitment) Receipted() bool { return c.hasAllReceipts() }

// AddReceipt returns c with r added. r must be for c (CheckReceipt: its id
// and both full hashes), from a party organisation not already holding a
// receipt, and correctly signed. When
// every party organisation's receipt is held, a PENDING commitment becomes
// ACTIVE.
func (c *Commitment) AddReceipt(r *Receipt) (*Commitment, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: no receipt", ErrMalformed)
	}
	if r.CommitmentID != c.ID {
		return nil, fmt.Errorf("%w: receipt for %s, not %s", ErrWrongCommitment, r.CommitmentID, c.ID)
	}
	if !slices.Contains(c.Orgs(), r.Org) {
		return nil, fmt.Errorf("%w: %s", ErrReceiptOrg, r.Org)
	}
	for _, x := range c.Receipts {
		if x.Org == r.Org {
			if bytes.Equal(x.Signature, r.Signature) {
				return nil, fmt.Errorf("%w: receipt of %s", ErrDuplicate, r.Org)
			}
			return nil, fmt.Errorf("%w: second receipt of %s", ErrReplay, r.Org)
		}
	}
	if err := c.CheckReceipt(r); err != nil {
		return nil, err
	}
	n := c.clone()
	n.Receipts = append(n.Receipts, r)
	if n.State == CommitmentPending && n.hasAllReceipts() {
		n.State = CommitmentActive
	}
	return n, nil
}

func (c *Commitment) hasAllReceipts() bool {
	for _, o := range c.Orgs() {
		if !slices.ContainsFunc(c.Receipts, func(r *Receipt) bool { return r.Org == o }) {
			return false
		}
	}
	return true
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

// ActionKind names a commitment action.
type ActionKind string

// Commitment actions.
const (
	ActionClaim   ActionKind = "claim"   // a party claims fulfilment: ACTIVE → FULFILLMENT_CLAIMED
	ActionConfirm ActionKind = "confirm" // the other party confirms: FULFILLMENT_CLAIMED → FULFILLED
	ActionDispute ActionKind = "dispute" // a party disputes: ACTIVE|FULFILLMENT_CLAIMED|EXPIRED → DISPUTED
	ActionResolve ActionKind = "resolve" // the arbiter, or both parties, rule: DISPUTED → RESOLVED|BREACHED
	ActionCancel  ActionKind = "cancel"  // both parties cancel: PENDING|ACTIVE|FULFILLMENT_CLAIMED|EXPIRED → CANCELLED
)

// Action is a signed change to a commitment.
type Action struct {
	CommitmentID string
	Kind         ActionKind
	Actor        string          // agent id taking the action; must sign it
	Time         time.Time       // UTC, millisecond precision
	Reason       string          // free text
	Severity     string          // dispute: a token such as "low", "high"
	Outcome      CommitmentState // resolve: CommitmentResolved or CommitmentBreached
	Breacher     string          // resolve with BREACHED: agent id of the party in breach
	Evidence     []byte          // opaque evidence (signed messages, proofs), at most 64 KiB
	Signatures   []ActionSignature
}

// ActionSignature is one signer's signature of an action, with the
// signer's certificate.
type ActionSignature struct {
	Certificate *Certificate
	Signature   []byte
}

const maxEvidence = 64 << 10

type wireActionSignature struct {
	Certificate *wireCertificate `cbor:"certificate" json:"certificate"`
	Signature   b64              `cbor:"signature" json:"signature"`
}

type wireAction struct {
	CommitmentID string                `cbor:"commitmentId" json:"commitmentId"`
	Kind         string                `cbor:"kind" json:"kind"`
	Actor        string                `cbor:"actor" json:"actor"`
	Time         string                `cbor:"time" json:"time"`
	Reason       string                `cbor:"reason,omitempty" json:"reason,omitempty"`
	Severity     string                `cbor:"severity,omitempty" json:"severity,omitempty"`
	Outcome      string                `cbor:"outcome,omitempty" json:"outcome,omitempty"`
	Breacher     string                `cbor:"breacher,omitempty" json:"breacher,omitempty"`
	Evidence     b64                   `cbor:"evidence,omitempty" json:"evidence,omitempty"`
	Signatures   []wireActionSignature `cbor:"signatures,omitempty" json:"signatures,omitempty"`
}

func (a *Action) wire(signing bool) *wireAction {
	w := &wireAction{a.CommitmentID, string(a.Kind), a.Actor, FormatTime(a.Time), a.Reason, a.Severity,
		string(a.Outcome), a.Breacher, a.Evidence, nil}
	if !signing {
		for _, s := range a.Signatures {
			ws := wireActionSignature{Signature: s.Signature}
			if s.Certificate != nil {
				c := s.Certificate.wire()
				ws.Certificate = &c
			}
			w.Signatures = append(w.Signatures, ws)
		}
	}
	return w
}

func (w *wireAction) action() (*Action, error) {
	t, err := ParseTime(w.Time)
	if err != nil {
		return nil, fmt.Errorf("action time: %w", err)
	}
	a := &Action{CommitmentID: w.CommitmentID, Kind: ActionKind(w.Kind), Actor: w.Actor, Time: t, Reason: w.Reason,
		Severity: w.Severity, Outcome: CommitmentState(w.Outcome), Breacher: w.Breacher,
		Evidence: nilIfEmpty([]byte(w.Evidence))}
	for _, s := range w.Signatures {
		as := ActionSignature{Signature: s.Signature}
		if s.Certificate != nil {
			if as.Certificate, err = s.Certificate.cert(); err != nil {
				return nil, err
			}
		}
		a.Signatures = append(a.Signatures, as)
	}
	return a, a.check()
}

// Digest returns SHA-256 of the action's canonical payload (everything
// but the signatures): what each signer signs.
func (a *Action) Digest() ([32]byte, error) {
	d, _, err := digest(a.wire(true))
	return d, err
}

func (a *Action) check() error {
	switch a.Kind {
	case ActionClaim, ActionConfirm, ActionDispute, ActionResolve, ActionCancel:
	default:
		return fmt.Errorf("%w: action kind %q", ErrMalformed, a.Kind)
	}
	if err := checkText("commitmentId", a.CommitmentID, maxShort, true); err != nil {
		return err
	}
	if err := checkAgent("actor", a.Actor, true); err != nil {
		return err
	}
	if a.Time.IsZero() || !a.Time.Equal(Millis(a.Time)) {
		return fmt.Errorf("%w: action time must be set, in milliseconds", ErrMalformed)
	}
	if err := checkText("reason", a.Reason, maxText, false); err != nil {
		return err
	}
	if err := checkToken("severity", a.Severity, false); err != nil {
		return err
	}
	if len(a.Evidence) > maxEvidence {
		return fmt.Errorf("%w: evidence over %d bytes", ErrTooLarge, maxEvidence)
	}
	switch {
	case a.Kind == ActionResolve:
		if a.Outcome != CommitmentResolved && a.Outcome != CommitmentBreached {
			return fmt.Errorf("%w: resolve outcome %q", ErrMalformed, a.Outcome)
		}
		if a.Outcome == CommitmentBreached {
			if err := checkAgent("breacher", a.Breacher, true); err != nil {
				return err
			}
		} else if a.Breacher != "" {
			return fmt.Errorf("%w: breacher without breach", ErrMalformed)
		}
	case a.Outcome != "" || a.Breacher != "":
		return fmt.Errorf("%w: outcome belongs to resolve", ErrMalformed)
	}
	if len(a.Signatures) > 4 {
		return fmt.Errorf("%w: too many signatures", ErrMalformed)
	}
	return nil
}

// Sign adds the signature of key, certified by cert, to the action. Set
// every other field first.
func (a *Action) Sign(key ed25519.PrivateKey, cert *Certificate) error {
	if err := a.check(); err != nil {
		return err
	}
	if cert == nil || !key.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(cert.PublicKey)) {
		return fmt.Errorf("%w: key does not match the certificate", ErrBadKey)
	}
	d, err := a.Digest()
	if err != nil {
		return err
	}
	sig, err := signDigest(key, domainAction, d)
	if err != nil {
		return err
	}
	a.Signatures = append(a.Signatures, ActionSignature{cert, sig})
	return nil
}

// Verify checks the action's form and every signature: each certificate
// valid at the action's time and issued by the signer's organisation, no
// signer twice, and the actor among the signers.
func (a *Action) Verify() error {
	if err := a.check(); err != nil {
		return err
	}
	d, err := a.Digest()
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, s := range a.Signatures {
		if err := s.Certificate.Verify(a.Time); err != nil {
			return err
		}
		if seen[s.Certificate.AgentID] {
			return fmt.Errorf("%w: %s", ErrDuplicateSignature, s.Certificate.AgentID)
		}
		seen[s.Certificate.AgentID] = true
		if !verifyDigest(ed25519.PublicKey(s.Certificate.PublicKey), domainAction, d, s.Signature) {
			return fmt.Errorf("%w: %s action by %s", ErrBadSignature, a.Kind, s.Certificate.AgentID)
		}
	}
	if !seen[a.Actor] {
		return fmt.Errorf("%w: the actor %s did not sign", ErrMissingSignature, a.Actor)
	}
	return nil
}

// Signers returns the agent ids that signed the action (not verified).
func (a *Action) Signers() []string {
	var out []string
	for _, s := range a.Signatures {
		if s.Certificate != nil {
			out = append(out, s.Certificate.AgentID)
		}
	}
	return out
}

// EncodeAction returns the canonical CBOR of an action.
func EncodeAction(a *Action) ([]byte, error) { return canonical(a.wire(false)) }

// DecodeAction decodes canonical CBOR and checks the form; it does not
// verify signatures.
func DecodeAction(b []byte) (*Action, error) {
	var w wireAction
	if err := decodeCanonical(b, &w); err != nil {
		return nil, fmt.Errorf("action: %w", err)
	}
	return w.action()
}

// MarshalJSON encodes the action's JSON form.
func (a *Action) MarshalJSON() ([]byte, error) { return json.Marshal(a.wire(false)) }

// UnmarshalJSON decodes the action's JSON form strictly.
func (a *Action) UnmarshalJSON(b []byte) error {
	var w wireAction
	if err := strictJSON(b, &w); err != nil {
		return err
	}
	x, err := w.action()
	if err != nil {
		return err
	}
	*a = *x
	return nil
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
	var to CommitmentState
	switch a.Kind {
	case ActionClaim:
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
		if claim := c.lastOf(ActionClaim); claim != nil && claim.Actor == a.Actor {
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

func (c *Commitment) lastOf(k ActionKind) *Action {
	for i := len(c.Actions) - 1; i >= 0; i-- {
		if c.Actions[i].Kind == k {
			return c.Actions[i]
		}
	}
	return nil
}

// ---- encoding and verification ----

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
	c := newCommitment(offer.SessionID, offer, oh, terms, amends, acc, ah)
	for _, r := range receipts {
		n, err := c.AddReceipt(r)
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
