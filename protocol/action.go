package protocol

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"time"
)

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
	// Obligation is the key of the obligation a claim or confirm is about
	// (Duty.Key: "delivery", "payment", "commit.0", …); empty means the
	// delivery, as before obligations were named.
	Obligation string
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
	Obligation   string                `cbor:"obligation,omitempty" json:"obligation,omitempty"`
}

func (a *Action) wire(signing bool) *wireAction {
	w := &wireAction{a.CommitmentID, string(a.Kind), a.Actor, FormatTime(a.Time), a.Reason, a.Severity,
		string(a.Outcome), a.Breacher, a.Evidence, nil, a.Obligation}
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
		Evidence: nilIfEmpty([]byte(w.Evidence)), Obligation: w.Obligation}
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
	if err := checkObligationKey("obligation", a.Obligation, false); err != nil {
		return err
	}
	if a.Obligation != "" && a.Kind != ActionClaim && a.Kind != ActionConfirm {
		return fmt.Errorf("%w: obligation belongs to claim and confirm", ErrMalformed)
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
