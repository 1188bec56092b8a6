package protocol

import (
	"bytes"
	"fmt"
	"slices"
	"time"
)

// DisputeState is the rung of the escalation ladder a dispute is on.
type DisputeState string

// Dispute states (docs/disputes.md draws the ladder):
//
//	FILED           --accept(respondent)-->                 RESOLVED
//	FILED           --counter(respondent)-->                REMEDY_OFFERED
//	REMEDY_OFFERED  --accept(the party not offering)-->     RESOLVED
//	REMEDY_OFFERED  --counter(the party not offering)-->    REMEDY_OFFERED
//	FILED | REMEDY_OFFERED --reject | escalate, or respondWithin (FILED) / negotiateFor passes-->
//	                ESCALATED if the terms name an arbiter, else HUMAN
//	ESCALATED       --ruling(the named arbiter)-->          RULED
//	ESCALATED       --ruleWithin passes-->                  HUMAN
//	HUMAN           --ruling signed by both parties-->      RULED
//	ESCALATED | HUMAN --counter, accept (a settlement)-->   REMEDY_OFFERED stays on the rung; accept → RESOLVED
//
// RESOLVED and RULED are closed: every later record is refused.
const (
	DisputeFiled         DisputeState = "FILED"
	DisputeRemedyOffered DisputeState = "REMEDY_OFFERED"
	DisputeResolved      DisputeState = "RESOLVED"
	DisputeEscalated     DisputeState = "ESCALATED"
	DisputeHuman         DisputeState = "HUMAN"
	DisputeRuled         DisputeState = "RULED"
)

// Closed reports whether the dispute is over.
func (s DisputeState) Closed() bool { return s == DisputeResolved || s == DisputeRuled }

// DisputeRules are what a node passes to the dispute machine besides the
// records: its policy's windows, the bound of a record's time around the
// receiver's clock (DefaultFreshnessWindow when zero), and the verifier
// of ledger inclusion proofs.
type DisputeRules struct {
	Windows     DisputeWindows
	Bound       time.Duration
	VerifyProof ProofVerifier
}

func (r DisputeRules) fresh(t, now time.Time) error {
	b := r.Bound
	if b <= 0 {
		b = DefaultFreshnessWindow
	}
	if d := t.Sub(now); d > b || -d > b {
		return fmt.Errorf("%w: record at %s, now %s", ErrNotFresh, FormatTime(t), FormatTime(now))
	}
	return nil
}

// DisputeCase is one dispute and everything that happened to it. Values
// are immutable: Step, Rule and Tick return a new case, or an error and
// no change.
type DisputeCase struct {
	ID           string
	Dispute      *Dispute
	CommitmentID string
	Filer        string // Dispute.FiledBy
	Respondent   string // Dispute.Against
	Arbiter      string // the commitment's terms' arbiter at filing; "" for none
	State        DisputeState
	Filed        time.Time // the filing's time
	EscalatedAt  time.Time // when it left direct negotiation, zero before
	Steps        []*DisputeStep
	Ruling       *Ruling
	Table        [32]byte // digest of the remedy on the table: the filing, or the last counter
	TableBy      string   // who put it there
	TableRemedy  string   // what it asks
	Resolution   string   // the remedy accepted or ruled, once closed
	Updated      time.Time
	Reason       string // why the last change happened
}

// OpenDispute checks a filing against its commitment and the disputes
// already filed on it, and opens its case. It refuses, with a typed
// error: a filing that does not verify (Dispute.Verify) or whose entries'
// proofs do not (ErrBadEvidence); one naming another commitment
// (ErrWrongDispute); a filer who is not a party or a respondent who is
// not the other party (ErrNotParty); an unknown obligation
// (ErrNoObligation); a commitment PENDING or CANCELLED
// (ErrCommitmentState); a time outside the bound of now (ErrNotFresh) or
// before the commitment (ErrTimeRegressed); and a second filing on the
// same obligation and grounds, by either party (ErrDuplicateDispute).
func OpenDispute(c *Commitment, d *Dispute, prior []*Dispute, now time.Time, r DisputeRules) (*DisputeCase, error) {
	if c == nil || d == nil {
		return nil, fmt.Errorf("%w: no commitment or dispute", ErrMalformed)
	}
	if err := d.Verify(); err != nil {
		return nil, err
	}
	if d.CommitmentID != c.ID {
		return nil, fmt.Errorf("%w: dispute on %s, not %s", ErrWrongDispute, d.CommitmentID, c.ID)
	}
	if !c.IsParty(d.FiledBy) {
		return nil, fmt.Errorf("%w: %s is not a party of %s", ErrNotParty, d.FiledBy, c.ID)
	}
	if d.Against != c.other(d.FiledBy) {
		return nil, fmt.Errorf("%w: %s is not the other party", ErrNotParty, d.Against)
	}
	if d.Obligation != "" {
		if _, ok := c.Obligation(d.Obligation); !ok {
			return nil, fmt.Errorf("%w: %q in %s", ErrNoObligation, d.Obligation, c.ID)
		}
	}
	if c.State == CommitmentPending || c.State == CommitmentCancelled {
		return nil, fmt.Errorf("%w: dispute in %s", ErrCommitmentState, c.State)
	}
	if err := r.fresh(d.Time, now); err != nil {
		return nil, err
	}
	if d.Time.Before(c.Created) {
		return nil, fmt.Errorf("%w: dispute before the commitment", ErrTimeRegressed)
	}
	for _, p := range prior {
		if p != nil && p.CommitmentID == d.CommitmentID && p.Obligation == d.Obligation && p.Grounds == d.Grounds {
			return nil, fmt.Errorf("%w: %s on %q, %s", ErrDuplicateDispute, p.ID(), d.Obligation, d.Grounds)
		}
	}
	if err := d.VerifyEvidence(r.VerifyProof); err != nil {
		return nil, err
	}
	dg, err := d.Digest()
	if err != nil {
		return nil, err
	}
	return &DisputeCase{ID: d.ID(), Dispute: d, CommitmentID: c.ID, Filer: d.FiledBy, Respondent: d.Against,
		Arbiter: c.Terms.Arbiter, State: DisputeFiled, Filed: d.Time, Table: dg, TableBy: d.FiledBy,
		TableRemedy: d.Claim, Updated: d.Time, Reason: "filed"}, nil
}

func (k *DisputeCase) clone() *DisputeCase {
	x := *k
	x.Steps = slices.Clone(k.Steps)
	return &x
}

// Deadline returns when the case next changes by time alone under w
// (zero if it does not): the respondent's window in FILED, the end of
// negotiation in REMEDY_OFFERED, the arbiter's window in ESCALATED.
func (k *DisputeCase) Deadline(w DisputeWindows) time.Time {
	w = w.WithDefaults()
	switch k.State {
	case DisputeFiled:
		a, b := k.Filed.Add(w.RespondWithin), k.Filed.Add(w.NegotiateFor)
		if b.Before(a) {
			return b
		}
		return a
	case DisputeRemedyOffered:
		return k.Filed.Add(w.NegotiateFor)
	case DisputeEscalated:
		return k.EscalatedAt.Add(w.RuleWithin)
	}
	return time.Time{}
}

// Tick returns the case with every time effect due at now applied, and
// whether it changed. Each effect takes effect at its deadline, not at
// now, so every node that ticks reaches the same state and times.
func (k *DisputeCase) Tick(now time.Time, w DisputeWindows) (*DisputeCase, bool) {
	n, changed := k, false
	for {
		d := n.Deadline(w)
		if d.IsZero() || now.Before(d) {
			return n, changed
		}
		if !changed {
			n = n.clone()
			changed = true
		}
		switch n.State {
		case DisputeFiled:
			n.escalate(d, "no response within respondWithin")
		case DisputeRemedyOffered:
			n.escalate(d, "no agreement within negotiateFor")
		case DisputeEscalated:
			n.State, n.Updated, n.Reason = DisputeHuman, d, "the arbiter did not rule within ruleWithin"
		}
	}
}

// escalate moves n to the arbiter named in the terms, or to the humans.
func (n *DisputeCase) escalate(at time.Time, why string) {
	n.EscalatedAt, n.Updated, n.Reason = at, at, why
	if n.Arbiter != "" {
		n.State = DisputeEscalated
	} else {
		n.State = DisputeHuman
	}
}

// at checks a record's identity and time, and returns the case ticked to
// that time.
func (k *DisputeCase) at(disputeID, commitmentID string, t, now time.Time, r DisputeRules) (*DisputeCase, error) {
	if k.State.Closed() {
		return nil, fmt.Errorf("%w: %s is %s", ErrDisputeClosed, k.ID, k.State)
	}
	if disputeID != k.ID || commitmentID != k.CommitmentID {
		return nil, fmt.Errorf("%w: record for %s on %s, not %s on %s", ErrWrongDispute, disputeID, commitmentID,
			k.ID, k.CommitmentID)
	}
	if err := r.fresh(t, now); err != nil {
		return nil, err
	}
	if t.Before(k.Updated) {
		return nil, fmt.Errorf("%w: record at %s, dispute changed at %s", ErrTimeRegressed, FormatTime(t), FormatTime(k.Updated))
	}
	n, _ := k.Tick(t, r.Windows)
	return n.clone(), nil
}

// Step applies a party's signed step, judged at now (the receiver's
// clock) and at the step's own time for the ladder's windows. Refusals:
// ErrDisputeClosed after RESOLVED or RULED; ErrWrongDispute for another
// dispute; ErrNotParty for anyone but the two parties; ErrNotFresh,
// ErrTimeRegressed for its time; ErrOwnOffer to accept or counter one's
// own remedy; ErrBadReference for an accept of a remedy no longer on the
// table; ErrDisputeStep for a step the rung does not allow (a reject or
// escalate once escalated).
func (k *DisputeCase) Step(s *DisputeStep, now time.Time, r DisputeRules) (*DisputeCase, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: no step", ErrMalformed)
	}
	if err := s.Verify(); err != nil {
		return nil, err
	}
	n, err := k.at(s.DisputeID, s.CommitmentID, s.Time, now, r)
	if err != nil {
		return nil, err
	}
	if s.By != n.Filer && s.By != n.Respondent {
		return nil, fmt.Errorf("%w: %s in %s", ErrNotParty, s.By, k.ID)
	}
	if n.State.Closed() {
		return nil, fmt.Errorf("%w: %s is %s", ErrDisputeClosed, k.ID, n.State)
	}
	negotiating := n.State == DisputeFiled || n.State == DisputeRemedyOffered
	switch s.Kind {
	case StepAccept, StepCounter:
		if s.By == n.TableBy {
			return nil, fmt.Errorf("%w: %s cannot %s its own remedy", ErrOwnOffer, s.By, s.Kind)
		}
		if s.Kind == StepAccept {
			if !bytes.Equal(s.Reference, n.Table[:]) {
				return nil, fmt.Errorf("%w: the accept names a remedy no longer on the table", ErrBadReference)
			}
			n.State, n.Resolution, n.Reason = DisputeResolved, n.TableRemedy, "remedy accepted"
			break
		}
		d, err := s.Digest()
		if err != nil {
			return nil, err
		}
		n.Table, n.TableBy, n.TableRemedy, n.Reason = d, s.By, s.Remedy, "remedy offered"
		if negotiating {
			n.State = DisputeRemedyOffered
		}
	case StepReject:
		if !negotiating {
			return nil, fmt.Errorf("%w: reject in %s", ErrDisputeStep, n.State)
		}
		if s.By == n.TableBy {
			return nil, fmt.Errorf("%w: %s cannot reject its own remedy", ErrOwnOffer, s.By)
		}
		n.escalate(s.Time, "remedy rejected")
	case StepEscalate:
		if !negotiating {
			return nil, fmt.Errorf("%w: escalate in %s", ErrDisputeStep, n.State)
		}
		n.escalate(s.Time, "escalated by "+s.By)
	}
	n.Steps = append(n.Steps, s)
	n.Updated = s.Time
	return n, nil
}

// Rule applies a ruling. In ESCALATED only the arbiter named in the
// commitment's terms rules (else ErrNotArbiter); in HUMAN, a ruling
// signed by both parties (Arbiter empty) — the arbiter's time is over
// (ErrDisputeStep); before escalation nobody rules (ErrDisputeStep).
// Once ruled the case is closed: a second ruling is ErrDisputeClosed.
// The breacher must be a party, and an upheld dispute names the
// respondent.
func (k *DisputeCase) Rule(ru *Ruling, now time.Time, r DisputeRules) (*DisputeCase, error) {
	if ru == nil {
		return nil, fmt.Errorf("%w: no ruling", ErrMalformed)
	}
	n, err := k.at(ru.DisputeID, ru.CommitmentID, ru.Time, now, r)
	if err != nil {
		return nil, err
	}
	if n.State.Closed() {
		return nil, fmt.Errorf("%w: %s is %s", ErrDisputeClosed, k.ID, n.State)
	}
	if n.State == DisputeHuman && ru.Arbiter == "" {
		if err := ru.Verify(n.Filer, n.Respondent); err != nil {
			return nil, err
		}
	} else {
		if n.Arbiter == "" || ru.Arbiter != n.Arbiter {
			return nil, fmt.Errorf("%w: %q for %s", ErrNotArbiter, ru.Arbiter, k.ID)
		}
		if err := ru.Verify(); err != nil {
			return nil, err
		}
		if n.State != DisputeEscalated {
			return nil, fmt.Errorf("%w: the arbiter rules only while escalated, not in %s", ErrDisputeStep, n.State)
		}
	}
	if ru.Breacher != "" && ru.Breacher != n.Filer && ru.Breacher != n.Respondent {
		return nil, fmt.Errorf("%w: breacher %s", ErrNotParty, ru.Breacher)
	}
	if ru.Outcome == RulingUpheld && ru.Breacher != n.Respondent {
		return nil, fmt.Errorf("%w: an upheld dispute names the respondent as breacher", ErrMalformed)
	}
	n.State, n.Ruling, n.Resolution, n.Updated, n.Reason = DisputeRuled, ru, ru.Remedy, ru.Time, "ruled "+string(ru.Outcome)
	return n, nil
}

// RebuildDispute recomputes a case from its signed records alone: the
// filing opened against the commitment and the disputes filed before it
// (prior), then each step, then the ruling (nil if none), each judged at
// its own time, with the windows of r. A third party checks a ruling this
// way, with the windows of the policy the parties' ledgers recorded.
func RebuildDispute(c *Commitment, d *Dispute, prior []*Dispute, steps []*DisputeStep, ruling *Ruling, r DisputeRules) (*DisputeCase, error) {
	if d == nil {
		return nil, fmt.Errorf("%w: no filing", ErrMalformed)
	}
	k, err := OpenDispute(c, d, prior, d.Time, r)
	if err != nil {
		return nil, err
	}
	for i, s := range steps {
		if s == nil {
			return nil, fmt.Errorf("%w: step %d missing", ErrMalformed, i)
		}
		if k, err = k.Step(s, s.Time, r); err != nil {
			return nil, fmt.Errorf("step %d: %w", i, err)
		}
	}
	if ruling != nil {
		if k, err = k.Rule(ruling, ruling.Time, r); err != nil {
			return nil, fmt.Errorf("ruling: %w", err)
		}
	}
	return k, nil
}
