package protocol

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// ObligationKind is the source of an obligation.
type ObligationKind string

// Obligation kinds.
const (
	ObligationDelivery ObligationKind = "delivery" // terms.deliverBy, owed by the provider
	ObligationPayment  ObligationKind = "payment"  // terms.payBy or payWithin, owed by the buyer
	ObligationCommit   ObligationKind = "commit"   // an obligation written in the COMMIT body
)

// Obligation keys: "delivery", "payment", and "commit.<i>" for the i-th
// obligation of the COMMIT body (from 0).
const (
	ObligationKeyDelivery = "delivery"
	ObligationKeyPayment  = "payment"
)

var obligationKeyRE = regexp.MustCompile(`^(delivery|payment|commit\.(0|[1-9][0-9]{0,2}))$`)

func checkObligationKey(field, s string, required bool) error {
	if s == "" && !required {
		return nil
	}
	if !obligationKeyRE.MatchString(s) {
		return fmt.Errorf("%w: %s %q is not delivery, payment or commit.<n>", ErrMalformed, field, s)
	}
	return nil
}

func isDelivery(key string) bool { return key == "" || key == ObligationKeyDelivery }

// Duty is one obligation of a commitment, derived from its signed terms
// (and COMMIT body): nothing in it is chosen after both parties signed.
type Duty struct {
	ID           string         // "<commitmentId>/<key>": stable, derived
	Key          string         // "delivery", "payment", "commit.<i>"
	Kind         ObligationKind //
	Obligor      string         // agent id of the party that owes it
	Obligee      string         // agent id of the party it is owed to
	What         string         // what is owed, e.g. "deliver 1000 hour of gpu-hours"
	Deadline     time.Time      // zero: no deadline
	Verification string         // COMMIT obligations: how fulfilment is verified
}

// Provider returns the agent id of the party that delivers: the terms'
// provider if named, else the acceptor (in the seed deal the buyer's
// offer is accepted by the vendor). Agents whose final offer comes from
// the provider must name the provider in the terms.
func (c *Commitment) Provider() string {
	if c.Terms.Provider != "" {
		return c.Terms.Provider
	}
	return c.Acceptor
}

// Buyer returns the party that is not the provider: the one that pays.
func (c *Commitment) Buyer() string {
	if c.Provider() == c.Proposer {
		return c.Acceptor
	}
	return c.Proposer
}

func (c *Commitment) other(agent string) string {
	if agent == c.Proposer {
		return c.Acceptor
	}
	return c.Proposer
}

// Obligations returns the commitment's obligations, in key order:
// the delivery (always; its deadline is terms.deliverBy), the payment
// (always; its deadline is terms.payBy, or the acceptance time plus
// terms.payWithin, or none), then each obligation of the COMMIT body (its
// deadline, or deliverBy when it gives none).
func (c *Commitment) Obligations() []Duty {
	t := c.Terms
	prov, buyer := c.Provider(), c.Buyer()
	total, err := t.Total()
	if err != nil {
		total = "?"
	}
	pay := t.PayBy
	if pay.IsZero() && t.PayWithin > 0 {
		pay = Millis(c.Created.Add(t.PayWithin))
	}
	out := []Duty{
		{Key: ObligationKeyDelivery, Kind: ObligationDelivery, Obligor: prov, Obligee: buyer,
			What: "deliver " + t.Quantity + " " + t.Unit + " of " + t.Resource, Deadline: t.DeliverBy},
		{Key: ObligationKeyPayment, Kind: ObligationPayment, Obligor: buyer, Obligee: prov,
			What: "pay " + total + " " + t.Currency, Deadline: pay},
	}
	if c.Commit != nil {
		for i, o := range c.Commit.Obligations {
			d := o.Deadline
			if d.IsZero() {
				d = t.DeliverBy
			}
			out = append(out, Duty{Key: "commit." + strconv.Itoa(i), Kind: ObligationCommit, Obligor: o.Party,
				Obligee: c.other(o.Party), What: o.Action, Deadline: d, Verification: o.Verification})
		}
	}
	for i := range out {
		out[i].ID = c.ID + "/" + out[i].Key
	}
	return out
}

// Obligation returns the obligation with the key ("" is the delivery).
func (c *Commitment) Obligation(key string) (Duty, bool) {
	if key == "" {
		key = ObligationKeyDelivery
	}
	for _, d := range c.Obligations() {
		if d.Key == key {
			return d, true
		}
	}
	return Duty{}, false
}

// ApplyAt is Apply judged by the receiver's clock: the action's time must
// be within bound of now in both directions (DefaultFreshnessWindow when
// bound ≤ 0), else ErrNotFresh. A claim of an obligation whose deadline
// has passed by now must be dated after that deadline: nobody can
// backdate a claim into time once the receiver has seen the deadline
// pass. Certificates are checked at the action's time, which is now
// within bound, so an expired certificate cannot sign a backdated action.
// Nodes call ApplyAt for every action they receive or make; Apply alone
// is for rebuilding the record from signed facts.
func (c *Commitment) ApplyAt(a *Action, now time.Time, bound time.Duration) (*Commitment, error) {
	if a == nil {
		return nil, fmt.Errorf("%w: no action", ErrMalformed)
	}
	if bound <= 0 {
		bound = DefaultFreshnessWindow
	}
	if d := a.Time.Sub(now); d > bound || -d > bound {
		return nil, fmt.Errorf("%w: action at %s, now %s", ErrNotFresh, FormatTime(a.Time), FormatTime(now))
	}
	if a.Kind == ActionClaim {
		if d, ok := c.Obligation(a.Obligation); ok && !d.Deadline.IsZero() && now.After(d.Deadline) &&
			!a.Time.After(d.Deadline) {
			return nil, fmt.Errorf("%w: claim of %s dated %s, at or before its missed deadline %s", ErrNotFresh,
				d.Key, FormatTime(a.Time), FormatTime(d.Deadline))
		}
	}
	return c.Apply(a)
}

// DisputeWindows are the time windows of an organisation's dispute
// policy, passed to the pure functions that need them. A zero window
// takes its default.
type DisputeWindows struct {
	ConfirmWithin time.Duration // a claim not confirmed or disputed within it is confirmed automatically (default 72h)
	RespondWithin time.Duration // the respondent's time to answer a filing (default 72h)
	NegotiateFor  time.Duration // from filing, the time to agree on a remedy before escalation (default 7 days)
	RuleWithin    time.Duration // from escalation, the arbiter's time to rule before the humans (default 7 days)
}

// Default dispute windows.
const (
	DefaultConfirmWithin = 72 * time.Hour
	DefaultRespondWithin = 72 * time.Hour
	DefaultNegotiateFor  = 7 * 24 * time.Hour
	DefaultRuleWithin    = 7 * 24 * time.Hour
)

// WithDefaults returns w with every zero window set to its default.
func (w DisputeWindows) WithDefaults() DisputeWindows {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&w.ConfirmWithin, DefaultConfirmWithin)
	def(&w.RespondWithin, DefaultRespondWithin)
	def(&w.NegotiateFor, DefaultNegotiateFor)
	def(&w.RuleWithin, DefaultRuleWithin)
	return w
}

// DutyStatus is where an obligation stands at a given time.
type DutyStatus string

// Obligation statuses.
const (
	DutyPending   DutyStatus = "pending"   // not claimed, deadline not passed (or none)
	DutyClaimed   DutyStatus = "claimed"   // claimed by the obligor in time, not yet confirmed
	DutyMet       DutyStatus = "met"       // claimed in time and confirmed (or auto-confirmed)
	DutyLate      DutyStatus = "late"      // claimed after its deadline
	DutyBreached  DutyStatus = "breached"  // deadline passed, no claim
	DutyDisputed  DutyStatus = "disputed"  // the commitment is disputed, ruled on or cancelled: not watched
	DutyCancelled DutyStatus = "cancelled" // the commitment was cancelled by both parties
	DutySuspended DutyStatus = "suspended" // the payment, past its deadline while the delivery is in breach
)

// DutyState is an obligation as seen at a given time.
type DutyState struct {
	Duty
	Status     DutyStatus
	Claim      *Action       // the obligor's first claim, if any
	Confirm    *Action       // its confirmation, if any
	Lateness   time.Duration // how late the claim was, or how late it is now (breached)
	Penalty    string        // amount owed for the lateness, "" if none, in Currency
	Currency   string        // currency of Penalty
	PenaltyErr error         // why the terms' penalty could not be computed, if it could not
	AutoAt     time.Time     // when the claim is confirmed automatically (claimed, not yet confirmed)
	AutoDue    bool          // AutoAt is not after now: the claim is to be confirmed automatically
}

// Watch returns every obligation's state at now: breached (its deadline
// passed with no claim by its obligor), claimed and due for automatic
// confirmation (no confirmation or dispute within w.ConfirmWithin of the
// claim), late, met or pending. Only the obligor's claims count. The
// terms' penalty applies to the delivery: its amount is computed for the
// lateness (PenaltyRule.Owed on the terms' total). A commitment cancelled
// or ruled on has nothing left to watch; a disputed one is watched by
// its dispute (DisputeCase). Watch is pure: the same commitment, now and
// windows give the same answer on every node.
func (c *Commitment) Watch(now time.Time, w DisputeWindows) []DutyState {
	w = w.WithDefaults()
	var out []DutyState
	for _, d := range c.Obligations() {
		s := DutyState{Duty: d, Status: DutyPending}
		switch c.State {
		case CommitmentCancelled:
			s.Status = DutyCancelled
			out = append(out, s)
			continue
		case CommitmentDisputed, CommitmentResolved, CommitmentBreached:
			s.Status = DutyDisputed
			out = append(out, s)
			continue
		}
		if cl := c.claimOf(d.Key); cl != nil && cl.Actor == d.Obligor {
			s.Claim = cl
		}
		s.Confirm = c.confirmOf(d.Key)
		late := !d.Deadline.IsZero()
		switch {
		case s.Claim != nil && late && s.Claim.Time.After(d.Deadline):
			s.Status, s.Lateness = DutyLate, s.Claim.Time.Sub(d.Deadline)
		case s.Claim != nil && s.Confirm != nil:
			s.Status = DutyMet
		case s.Claim != nil:
			s.Status = DutyClaimed
		case late && now.After(d.Deadline) && d.Kind == ObligationPayment && len(out) > 0 && out[0].Status == DutyBreached:
			// Nobody owes payment for a delivery that is itself in breach:
			// the provider's breach comes first.
			s.Status = DutySuspended
		case late && now.After(d.Deadline):
			s.Status, s.Lateness = DutyBreached, now.Sub(d.Deadline)
		}
		if s.Claim != nil && s.Confirm == nil {
			s.AutoAt = s.Claim.Time.Add(w.ConfirmWithin)
			s.AutoDue = !s.AutoAt.After(now)
		}
		if s.Lateness > 0 && d.Kind == ObligationDelivery && c.Terms.Penalty != "" {
			s.Penalty, s.Currency, s.PenaltyErr = c.PenaltyOwed(s.Lateness)
		}
		out = append(out, s)
	}
	return out
}

// Breaches returns the obligations Watch finds breached at now.
func (c *Commitment) Breaches(now time.Time, w DisputeWindows) []DutyState {
	var out []DutyState
	for _, s := range c.Watch(now, w) {
		if s.Status == DutyBreached {
			out = append(out, s)
		}
	}
	return out
}

// PenaltyOwed computes the terms' penalty for a delivery late by
// lateness: the amount and its currency, or an error wrapping
// ErrBadPenalty when the penalty text is not one ParsePenaltyRule reads.
func (c *Commitment) PenaltyOwed(lateness time.Duration) (string, string, error) {
	r, err := ParsePenaltyRule(c.Terms.Penalty)
	if err != nil {
		return "", "", err
	}
	total, err := c.Terms.Total()
	if err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrBadPenalty, err)
	}
	return r.Owed(total, c.Terms.Currency, lateness)
}
