package protocol

import (
	"errors"
	"testing"
	"time"
)

// signedAction builds and signs an action of the deal kit naming an
// obligation.
func (k *dealKit) obligationAction(t *testing.T, kind ActionKind, key, actor string, at time.Time) *Action {
	t.Helper()
	a := &Action{CommitmentID: k.d.Commitment.ID, Kind: kind, Time: at, Obligation: key,
		Actor: k.party(actor).Agent().String()}
	if err := a.Sign(k.party(actor).AgentKey, k.cert(actor)); err != nil {
		t.Fatal(err)
	}
	return a
}

func statusOf(t *testing.T, ss []DutyState, key string) DutyState {
	t.Helper()
	for _, s := range ss {
		if s.Key == key {
			return s
		}
	}
	t.Fatalf("no obligation %s in %+v", key, ss)
	return DutyState{}
}

func TestObligationsFromTerms(t *testing.T) {
	k := newDealKit(t, false)
	c := k.receipts(t)
	// The seed deal: the buyer's offer, accepted by the vendor; no
	// provider named, so the acceptor provides.
	if c.Provider() != k.vendor.Agent().String() || c.Buyer() != k.buyer.Agent().String() {
		t.Fatalf("provider %s buyer %s", c.Provider(), c.Buyer())
	}
	obs := c.Obligations()
	if len(obs) != 2 || obs[0].Key != "delivery" || obs[0].Obligor != c.Provider() || !obs[0].Deadline.Equal(c.Terms.DeliverBy) ||
		obs[1].Key != "payment" || obs[1].Obligor != c.Buyer() || !obs[1].Deadline.IsZero() || obs[0].ID != c.ID+"/delivery" {
		t.Fatalf("%+v", obs)
	}
	// payWithin counts from the acceptance; an explicit provider wins.
	c2 := *c
	c2.Terms.PayWithin = 10 * 24 * time.Hour
	c2.Terms.Provider = c.Proposer
	obs = c2.Obligations()
	if !obs[1].Deadline.Equal(c.Created.Add(10*24*time.Hour)) || obs[0].Obligor != c.Proposer || obs[1].Obligor != c.Acceptor {
		t.Fatalf("%+v", obs)
	}
	// COMMIT obligations, with their obligor and deadline (deliverBy when none).
	c2.Commit = &CommitBody{Obligations: []Obligation{
		{Party: c.Acceptor, Action: "install drivers", Deadline: t0.Add(time.Hour)},
		{Party: c.Proposer, Action: "open the firewall"}}}
	obs = c2.Obligations()
	if len(obs) != 4 || obs[2].Key != "commit.0" || !obs[2].Deadline.Equal(t0.Add(time.Hour)) || obs[3].Obligor != c.Proposer ||
		obs[3].Obligee != c.Acceptor || !obs[3].Deadline.Equal(c.Terms.DeliverBy) {
		t.Fatalf("%+v", obs)
	}
}

func TestBreachDetection(t *testing.T) {
	k := newDealKit(t, false)
	c := k.receipts(t)
	due := c.Terms.DeliverBy
	w := DisputeWindows{ConfirmWithin: time.Hour}
	if s := statusOf(t, c.Watch(due, w), "delivery"); s.Status != DutyPending || len(c.Breaches(due, w)) != 0 {
		t.Fatalf("at the deadline: %+v", s)
	}
	late := due.Add(49 * time.Hour)
	br := c.Breaches(late, w)
	if len(br) != 1 || br[0].Key != "delivery" || br[0].Obligor != k.vendor.Agent().String() || br[0].Lateness != 49*time.Hour {
		t.Fatalf("breaches: %+v", br)
	}
	// "5% per day late" on 2550.00: three started days.
	if br[0].Penalty != "382.50" || br[0].Currency != "USD" {
		t.Fatalf("penalty %s %s (%v)", br[0].Penalty, br[0].Currency, br[0].PenaltyErr)
	}
	// A claim by the buyer (a party, but not the obligor) fulfils nothing.
	byBuyer, err := c.Apply(k.action(t, ActionClaim, "buyer", due.Add(-time.Hour), "buyer"))
	if err != nil {
		t.Fatal(err)
	}
	if s := statusOf(t, byBuyer.Watch(late, w), "delivery"); s.Status != DutyBreached {
		t.Fatalf("claim by the wrong party: %+v", s)
	}
	// The vendor's claim in time: claimed, confirmed automatically an hour later.
	claimed, err := c.Apply(k.action(t, ActionClaim, "vendor", due.Add(-time.Hour), "vendor"))
	if err != nil {
		t.Fatal(err)
	}
	s := statusOf(t, claimed.Watch(due.Add(-time.Minute), w), "delivery")
	if s.Status != DutyClaimed || s.AutoDue || !s.AutoAt.Equal(due) {
		t.Fatalf("claimed: %+v", s)
	}
	if s := statusOf(t, claimed.Watch(due, w), "delivery"); !s.AutoDue {
		t.Fatalf("auto-confirm not due: %+v", s)
	}
	met, err := claimed.Apply(k.action(t, ActionConfirm, "buyer", due, "buyer"))
	if err != nil {
		t.Fatal(err)
	}
	if s := statusOf(t, met.Watch(late, w), "delivery"); s.Status != DutyMet || s.AutoDue {
		t.Fatalf("met: %+v", s)
	}
	// A cancelled commitment has nothing to watch.
	both := k.action(t, ActionCancel, "buyer", due.Add(-time.Hour), "buyer", "vendor")
	cancelled, err := c.Apply(both)
	if err != nil {
		t.Fatal(err)
	}
	if len(cancelled.Breaches(late, w)) != 0 {
		t.Fatal("breach on a cancelled commitment")
	}
}

func TestPaymentObligation(t *testing.T) {
	k := newDealKit(t, false)
	c := k.receipts(t)
	c.Terms.PayBy = c.Terms.DeliverBy.Add(24 * time.Hour)
	due := c.Terms.PayBy
	// Past both deadlines with nothing delivered: the delivery is
	// breached, the payment suspended, not the buyer's breach.
	br := c.Breaches(due.Add(time.Hour), DisputeWindows{})
	if len(br) != 1 || br[0].Key != "delivery" || statusOf(t, c.Watch(due.Add(time.Hour), DisputeWindows{}), "payment").Status != DutySuspended {
		t.Fatalf("breaches with nothing delivered: %+v", br)
	}
	delivered, err := c.Apply(k.action(t, ActionClaim, "vendor", c.Terms.DeliverBy, "vendor"))
	if err != nil {
		t.Fatal(err)
	}
	if br := delivered.Breaches(due.Add(time.Hour), DisputeWindows{}); len(br) != 1 || br[0].Key != "payment" || br[0].Obligor != k.buyer.Agent().String() {
		t.Fatalf("payment default: %+v", br)
	}
	if _, err := c.Apply(k.obligationAction(t, ActionClaim, "delivery", "buyer", due)); !errors.Is(err, ErrNotParty) {
		t.Fatalf("delivery claimed by the buyer: %v", err)
	}
	// The vendor cannot claim the buyer's payment; the buyer can, once.
	if _, err := c.Apply(k.obligationAction(t, ActionClaim, "payment", "vendor", due)); !errors.Is(err, ErrNotParty) {
		t.Fatalf("payment claimed by the payee: %v", err)
	}
	if _, err := c.Apply(k.obligationAction(t, ActionClaim, "commit.3", "buyer", due)); !errors.Is(err, ErrNoObligation) {
		t.Fatalf("unknown obligation: %v", err)
	}
	if _, err := c.Apply(k.obligationAction(t, ActionConfirm, "payment", "vendor", due)); !errors.Is(err, ErrCommitmentState) {
		t.Fatalf("confirm before claim: %v", err)
	}
	paid, err := c.Apply(k.obligationAction(t, ActionClaim, "payment", "buyer", due.Add(time.Hour)))
	if err != nil || paid.State != CommitmentActive {
		t.Fatalf("payment claim: %v %s", err, paid.State)
	}
	if _, err := paid.Apply(k.obligationAction(t, ActionClaim, "payment", "buyer", due.Add(2*time.Hour))); !errors.Is(err, ErrCommitmentState) {
		t.Fatalf("second claim: %v", err)
	}
	if s := statusOf(t, paid.Watch(due.Add(3*time.Hour), DisputeWindows{}), "payment"); s.Status != DutyLate || s.Lateness != time.Hour {
		t.Fatalf("late payment: %+v", s)
	}
	// The delivery can still be claimed and confirmed by the buyer: its
	// own payment claim does not count as the delivery claim.
	d, err := paid.Apply(k.action(t, ActionClaim, "vendor", due.Add(2*time.Hour), "vendor"))
	if err != nil {
		t.Fatal(err)
	}
	if d, err = d.Apply(k.action(t, ActionConfirm, "buyer", due.Add(3*time.Hour), "buyer")); err != nil || d.State != CommitmentFulfilled {
		t.Fatalf("delivery confirm after a payment claim: %v", err)
	}
	// The payee confirms the payment even after FULFILLED.
	if d, err = d.Apply(k.obligationAction(t, ActionConfirm, "payment", "vendor", due.Add(4*time.Hour))); err != nil || d.State != CommitmentFulfilled {
		t.Fatalf("payment confirm: %v", err)
	}
	roundTrip(t, d)
}

func TestApplyAtReceiverClock(t *testing.T) {
	k := newDealKit(t, false)
	c := k.receipts(t)
	due := c.Terms.DeliverBy
	bound := time.Minute
	// From the future (a claim dated 9999 would drag every later action forward).
	if _, err := c.ApplyAt(k.action(t, ActionClaim, "vendor", due.Add(-time.Hour), "vendor"), due.Add(-2*time.Hour), bound); !errors.Is(err, ErrNotFresh) {
		t.Fatalf("future action: %v", err)
	}
	// Backdated past a missed deadline, beyond the bound.
	if _, err := c.ApplyAt(k.action(t, ActionClaim, "vendor", due.Add(-time.Hour), "vendor"), due.Add(time.Hour), bound); !errors.Is(err, ErrNotFresh) {
		t.Fatalf("stale action: %v", err)
	}
	// Backdated before the missed deadline, within the bound.
	if _, err := c.ApplyAt(k.action(t, ActionClaim, "vendor", due.Add(-time.Second), "vendor"), due.Add(time.Second), bound); !errors.Is(err, ErrNotFresh) {
		t.Fatalf("claim backdated before the deadline: %v", err)
	}
	// In time, and late but honestly dated.
	if _, err := c.ApplyAt(k.action(t, ActionClaim, "vendor", due.Add(-time.Second), "vendor"), due, bound); err != nil {
		t.Fatal(err)
	}
	n, err := c.ApplyAt(k.action(t, ActionClaim, "vendor", due.Add(time.Second), "vendor"), due.Add(2*time.Second), bound)
	if err != nil {
		t.Fatal(err)
	}
	if s := statusOf(t, n.Watch(due.Add(time.Hour), DisputeWindows{}), "delivery"); s.Status != DutyLate || s.Penalty != "127.50" {
		t.Fatalf("late claim: %+v", s)
	}
	// A certificate that expired cannot sign an action dated inside its validity.
	old := k.d.VendorCert.NotAfter
	if _, err := c.ApplyAt(k.action(t, ActionClaim, "vendor", old.Add(-time.Hour), "vendor"), old.Add(time.Hour), bound); !errors.Is(err, ErrNotFresh) {
		t.Fatalf("expired certificate: %v", err)
	}
}

func TestPenaltyRules(t *testing.T) {
	day := 24 * time.Hour
	for _, c := range []struct {
		rule, total string
		late        time.Duration
		want, cur   string
	}{
		{"5% per day late", "2550.00", time.Minute, "127.50", "USD"},
		{"5% per day late", "2550.00", 3 * day, "382.50", "USD"},
		{"5% per day late", "2550.00", 30 * day, "2550.00", "USD"}, // never more than the total
		{"2% per week late", "1000", 8 * day, "40", "USD"},
		{"2.5% per week late", "1000", day, "25", "USD"},
		{"1% per hour late", "3.33", time.Hour, "0.0333", "USD"},
		{"100.00 USD", "2550.00", 10 * day, "100.00", "USD"},
		{"50 EUR per day late", "2550.00", 2*day + 1, "150", "EUR"},
		{"5% per day late", "2550.00", 0, "0", "USD"},
	} {
		r, err := ParsePenaltyRule(c.rule)
		if err != nil {
			t.Fatalf("%q: %v", c.rule, err)
		}
		got, cur, err := r.Owed(c.total, "USD", c.late)
		if err != nil || got != c.want || cur != c.cur {
			t.Errorf("%q on %s late %v = %s %s %v, want %s %s", c.rule, c.total, c.late, got, cur, err, c.want, c.cur)
		}
	}
	for _, bad := range []string{"", "5 % per day late", "5% per month late", "5% a day", "five percent", "-5% per day late",
		"100 usd", "1e3 USD", "5% per day late!", "100.00 USD per fortnight late", "01% per day late"} {
		if _, err := ParsePenaltyRule(bad); !errors.Is(err, ErrBadPenalty) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if ErrorCode(ErrBadPenalty) != CodeBadRequest {
		t.Fatal("code")
	}
}
