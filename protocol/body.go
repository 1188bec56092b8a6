package protocol

import (
	"fmt"
	"slices"
	"time"
)

// Performative is the communicative act of an envelope.
type Performative string

// The 13 performatives of ASP.
const (
	Propose  Performative = "PROPOSE"
	Counter  Performative = "COUNTER"
	Accept   Performative = "ACCEPT"
	Reject   Performative = "REJECT"
	Withdraw Performative = "WITHDRAW"
	Query    Performative = "QUERY"
	Clarify  Performative = "CLARIFY"
	Inform   Performative = "INFORM"
	Commit   Performative = "COMMIT"
	Delegate Performative = "DELEGATE"
	Escalate Performative = "ESCALATE"
	Observe  Performative = "OBSERVE"
	Close    Performative = "CLOSE"
)

// Performatives lists all performatives in a fixed order.
var Performatives = []Performative{Propose, Counter, Accept, Reject, Withdraw, Query, Clarify, Inform,
	Commit, Delegate, Escalate, Observe, Close}

// Valid reports whether p is one of the 13 performatives.
func (p Performative) Valid() bool { return slices.Contains(Performatives, p) }

// ParsePerformative accepts the upper-case name of a performative.
func ParsePerformative(s string) (Performative, error) {
	p := Performative(s)
	if !p.Valid() {
		return "", fmt.Errorf("%w: unknown performative %q", ErrMalformed, s)
	}
	return p, nil
}

// Proposal types carried by ProposeBody.Type.
const (
	InvitationType = "session-invitation" // the first message of every session
	OfferType      = "offer"              // default type of an offer with terms
)

// InformResume is the InformBody.InformType that resumes an escalated session.
const InformResume = "resume"

// Body is the typed content of an envelope; each performative has its own
// body type (*ProposeBody for PROPOSE, …). Only pointer types implement it.
type Body interface {
	// Performative is the performative this body belongs to.
	Performative() Performative
	// Validate checks the body's grammar (not its legality in a session).
	Validate() error
	wire() any
}

// ProposeBody opens a session (Type InvitationType) or makes an offer.
type ProposeBody struct {
	Type       string    // InvitationType, or the offer's type (OfferType by default)
	Subject    string    // human-readable summary
	Terms      *Terms    // required for an offer; absent from an invitation
	Schemas    []string  // invitation: the schemas the initiator speaks
	ValidUntil time.Time // the offer cannot be accepted after this instant; zero for no limit
	Amends     string    // id of a commitment of this session that this offer amends
}

// CounterBody answers an open offer with different terms; it becomes the
// open offer.
type CounterBody struct {
	ReferenceID string    // messageId of the offer countered (default: the open offer)
	Subject     string    // human-readable summary
	Terms       Terms     // the complete counter terms
	ValidUntil  time.Time // zero for no limit
	Amends      string    // id of the commitment the countered offer amends (filled by Prepare)
}

// AcceptBody accepts the invitation, an open offer, or a COMMIT.
type AcceptBody struct {
	ReferenceID   string // messageId accepted (default: the open offer or invitation)
	ReferenceHash []byte // integrity hash of that envelope (filled by Prepare)
}

// RejectBody refuses the invitation or an open offer.
type RejectBody struct {
	ReferenceID string // messageId refused (default: the open offer or invitation)
	Code        string // an ASP error code, e.g. "budget_exceeded"
	Reason      string // human-readable
}

// WithdrawBody takes back the sender's own open offer or invitation.
type WithdrawBody struct {
	ReferenceID string // messageId withdrawn (default: the sender's open offer)
	Reason      string
}

// QueryBody asks the counterparty for information.
type QueryBody struct {
	Question string   // required
	Fields   []string // optional: names of the facts wanted
}

// ClarifyBody answers a query or explains an earlier message.
type ClarifyBody struct {
	ReferenceID string // messageId clarified, optional
	Text        string // required
}

// InformBody shares information; InformType InformResume ends an escalation.
type InformBody struct {
	InformType string            // e.g. "status", "error", "resume"
	Text       string            // human-readable
	Data       map[string]string // structured facts, at most 64
}

// CommitBody is a formal, binding offer: terms plus obligations, penalties
// and optional escrow. An ACCEPT of it yields a commitment.
type CommitBody struct {
	ReferenceID string       // messageId of the offer it formalises, optional
	Terms       Terms        // required
	Obligations []Obligation // who does what by when
	Penalties   []Penalty
	Escrow      *Escrow
	ValidUntil  time.Time // zero for no limit
	Amends      string    // id of a commitment this amends, optional
}

// Obligation is one party's duty under a COMMIT.
type Obligation struct {
	Party        string    // agent id (required, a party of the session)
	Action       string    // what is to be done (required)
	Deadline     time.Time // zero for the terms' deliverBy
	Verification string    // how fulfilment is verified, e.g. "usage-report"
}

// Penalty is an amount owed under a condition.
type Penalty struct {
	Condition string // e.g. "late-delivery"
	Amount    string // decimal
	Currency  string
}

// Escrow names funds held until release.
type Escrow struct {
	Amount   string // decimal
	Currency string
	Holder   string // agent id of the holder, optional
	Release  string // release condition, free text
}

// DelegateBody hands a task to another agent; in a two-party session it is
// recorded and changes nothing else.
type DelegateBody struct {
	Delegate string // agent id (required)
	Scope    string
	Reason   string
}

// EscalateBody pauses the session until an INFORM with InformType
// InformResume.
type EscalateBody struct {
	Reason   string // required
	Severity string // token, e.g. "low", "high"
	To       string // agent id of the human's or arbiter's agent, optional
}

// ObserveBody records an observation; it changes no state.
type ObserveBody struct {
	Subject string // required
	Data    map[string]string
}

// CloseBody ends the session.
type CloseBody struct {
	Reason  string
	Outcome string // token, e.g. "completed", "abandoned"
}

// Performative implementations.
func (*ProposeBody) Performative() Performative  { return Propose }
func (*CounterBody) Performative() Performative  { return Counter }
func (*AcceptBody) Performative() Performative   { return Accept }
func (*RejectBody) Performative() Performative   { return Reject }
func (*WithdrawBody) Performative() Performative { return Withdraw }
func (*QueryBody) Performative() Performative    { return Query }
func (*ClarifyBody) Performative() Performative  { return Clarify }
func (*InformBody) Performative() Performative   { return Inform }
func (*CommitBody) Performative() Performative   { return Commit }
func (*DelegateBody) Performative() Performative { return Delegate }
func (*EscalateBody) Performative() Performative { return Escalate }
func (*ObserveBody) Performative() Performative  { return Observe }
func (*CloseBody) Performative() Performative    { return Close }

// IsInvitation reports whether b is a session invitation.
func (b *ProposeBody) IsInvitation() bool { return b.Type == InvitationType }

// Validate implements Body.
func (b *ProposeBody) Validate() error {
	if err := checkToken("type", b.Type, true); err != nil {
		return err
	}
	if err := checkText("subject", b.Subject, maxText, false); err != nil {
		return err
	}
	if len(b.Schemas) > maxList {
		return fmt.Errorf("%w: too many schemas", ErrMalformed)
	}
	for _, s := range b.Schemas {
		if err := checkText("schemas", s, maxShort, true); err != nil {
			return err
		}
	}
	if b.IsInvitation() {
		if b.Terms != nil || b.Amends != "" {
			return fmt.Errorf("%w: an invitation carries no terms", ErrMalformed)
		}
		return nil
	}
	if len(b.Schemas) > 0 {
		return fmt.Errorf("%w: schemas belong to an invitation", ErrMalformed)
	}
	if b.Terms == nil {
		return fmt.Errorf("%w: an offer carries terms", ErrMalformed)
	}
	if err := checkText("amends", b.Amends, maxShort, false); err != nil {
		return err
	}
	return b.Terms.Validate()
}

// Validate implements Body.
func (b *CounterBody) Validate() error {
	if err := checkText("referenceId", b.ReferenceID, maxShort, false); err != nil {
		return err
	}
	if err := checkText("subject", b.Subject, maxText, false); err != nil {
		return err
	}
	if err := checkText("amends", b.Amends, maxShort, false); err != nil {
		return err
	}
	return b.Terms.Validate()
}

// Validate implements Body.
func (b *AcceptBody) Validate() error {
	if err := checkText("referenceId", b.ReferenceID, maxShort, false); err != nil {
		return err
	}
	if len(b.ReferenceHash) != 0 && len(b.ReferenceHash) != 32 {
		return fmt.Errorf("%w: referenceHash is %d bytes", ErrMalformed, len(b.ReferenceHash))
	}
	return nil
}

// Validate implements Body.
func (b *RejectBody) Validate() error {
	if err := checkText("referenceId", b.ReferenceID, maxShort, false); err != nil {
		return err
	}
	if err := checkToken("code", b.Code, false); err != nil {
		return err
	}
	return checkText("reason", b.Reason, maxText, false)
}

// Validate implements Body.
func (b *WithdrawBody) Validate() error {
	if err := checkText("referenceId", b.ReferenceID, maxShort, false); err != nil {
		return err
	}
	return checkText("reason", b.Reason, maxText, false)
}

// Validate implements Body.
func (b *QueryBody) Validate() error {
	if err := checkText("question", b.Question, maxText, true); err != nil {
		return err
	}
	if len(b.Fields) > maxList {
		return fmt.Errorf("%w: too many fields", ErrMalformed)
	}
	for _, f := range b.Fields {
		if err := checkText("fields", f, maxShort, true); err != nil {
			return err
		}
	}
	return nil
}

// Validate implements Body.
func (b *ClarifyBody) Validate() error {
	if err := checkText("referenceId", b.ReferenceID, maxShort, false); err != nil {
		return err
	}
	return checkText("text", b.Text, maxText, true)
}

// Validate implements Body.
func (b *InformBody) Validate() error {
	if err := checkToken("informType", b.InformType, false); err != nil {
		return err
	}
	if err := checkText("text", b.Text, maxText, false); err != nil {
		return err
	}
	if b.InformType == "" && b.Text == "" && len(b.Data) == 0 {
		return fmt.Errorf("%w: an INFORM carries informType, text or data", ErrMalformed)
	}
	return checkMap("data", b.Data)
}

// Validate implements Body.
func (b *CommitBody) Validate() error {
	if err := checkText("referenceId", b.ReferenceID, maxShort, false); err != nil {
		return err
	}
	if err := checkText("amends", b.Amends, maxShort, false); err != nil {
		return err
	}
	if err := b.Terms.Validate(); err != nil {
		return err
	}
	if len(b.Obligations) > maxList || len(b.Penalties) > maxList {
		return fmt.Errorf("%w: too many obligations or penalties", ErrMalformed)
	}
	for i, o := range b.Obligations {
		if err := checkAgent(fmt.Sprintf("obligations[%d].party", i), o.Party, true); err != nil {
			return err
		}
		if err := checkText("obligations.action", o.Action, maxText, true); err != nil {
			return err
		}
		if err := checkText("obligations.verification", o.Verification, maxText, false); err != nil {
			return err
		}
	}
	for _, p := range b.Penalties {
		if err := checkText("penalties.condition", p.Condition, maxText, true); err != nil {
			return err
		}
		if err := checkDecimal("penalties.amount", p.Amount, true); err != nil {
			return err
		}
		if !currencyRE.MatchString(p.Currency) {
			return fmt.Errorf("%w: penalties.currency %q", ErrMalformed, p.Currency)
		}
	}
	if e := b.Escrow; e != nil {
		if err := checkDecimal("escrow.amount", e.Amount, true); err != nil {
			return err
		}
		if !currencyRE.MatchString(e.Currency) {
			return fmt.Errorf("%w: escrow.currency %q", ErrMalformed, e.Currency)
		}
		if err := checkAgent("escrow.holder", e.Holder, false); err != nil {
			return err
		}
		if err := checkText("escrow.release", e.Release, maxText, false); err != nil {
			return err
		}
	}
	return nil
}

// Validate implements Body.
func (b *DelegateBody) Validate() error {
	if err := checkAgent("delegate", b.Delegate, true); err != nil {
		return err
	}
	if err := checkText("scope", b.Scope, maxText, false); err != nil {
		return err
	}
	return checkText("reason", b.Reason, maxText, false)
}

// Validate implements Body.
func (b *EscalateBody) Validate() error {
	if err := checkText("reason", b.Reason, maxText, true); err != nil {
		return err
	}
	if err := checkToken("severity", b.Severity, false); err != nil {
		return err
	}
	return checkAgent("to", b.To, false)
}

// Validate implements Body.
func (b *ObserveBody) Validate() error {
	if err := checkText("subject", b.Subject, maxText, true); err != nil {
		return err
	}
	return checkMap("data", b.Data)
}

// Validate implements Body.
func (b *CloseBody) Validate() error {
	if err := checkText("reason", b.Reason, maxText, false); err != nil {
		return err
	}
	return checkToken("outcome", b.Outcome, false)
}
