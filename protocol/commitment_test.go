package protocol

import (
	"errors"
	"testing"
	"time"
)

type dealKit struct {
	d                    *Deal
	buyer, vendor, judge Party
	judgeCert            *Certificate
}

func newDealKit(t testing.TB, withArbiter bool) *dealKit {
	t.Helper()
	k := &dealKit{buyer: FixtureParty("buyer", "buyer"), vendor: FixtureParty("vendor", "vendor"),
		judge: FixtureParty("arbiter", "arbiter")}
	var err error
	if k.judgeCert, err = k.judge.Certificate([]string{"arbitrate"}, t0.AddDate(1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if !withArbiter {
		k.d = seedDeal(t)
		return k
	}
	// The seed deal with an arbiter named in the terms, built by hand.
	b, v := k.buyer, k.vendor
	bc, _ := b.Certificate(nil, t0.AddDate(1, 0, 0))
	vc, _ := v.Certificate(nil, t0.AddDate(1, 0, 0))
	s := NewSession(Config{}, "arb-session", b.Agent(), v.Agent(), t0)
	rnd := FixtureRand("arbiter deal")
	terms := Terms{Resource: "gpu-hours", Quantity: "1000", Unit: "hour", UnitPrice: "2.55", Currency: "USD",
		DeliverBy: t0.Add(48 * time.Hour), Arbiter: k.judge.Agent().String()}
	d := &Deal{Session: s, Buyer: b.Agent(), Vendor: v.Agent(), BuyerCert: bc, VendorCert: vc}
	for i, m := range []struct {
		p    Party
		c    *Certificate
		perf Performative
		body Body
	}{
		{b, bc, Propose, nil}, {v, vc, Accept, nil}, {b, bc, Propose, &ProposeBody{Terms: &terms}}, {v, vc, Accept, nil},
	} {
		at := t0.Add(time.Duration(i) * time.Second)
		env, err := s.Prepare(m.p.Agent(), m.perf, m.body, at, rnd)
		if err != nil {
			t.Fatal(err)
		}
		if err := env.Seal(m.p.AgentKey, m.c); err != nil {
			t.Fatal(err)
		}
		eff, err := s.Step(env, at)
		if err != nil {
			t.Fatal(err)
		}
		d.Transcript = append(d.Transcript, env)
		if eff.Commitment != nil {
			d.Commitment = eff.Commitment
		}
	}
	k.d = d
	return k
}

func (k *dealKit) receipts(t testing.TB) *Commitment {
	t.Helper()
	c := k.d.Commitment
	for i, p := range []Party{k.buyer, k.vendor} {
		r, err := SignCommitmentReceipt(p.OrgKey, c, uint64(10+i), []byte("checkpoint\n"))
		if err != nil {
			t.Fatal(err)
		}
		if c, err = c.AddReceipt(r); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (k *dealKit) action(t testing.TB, kind ActionKind, actor string, at time.Time, signers ...string) *Action {
	t.Helper()
	a := &Action{CommitmentID: k.d.Commitment.ID, Kind: kind, Time: at}
	a.Actor = k.party(actor).Agent().String()
	switch kind {
	case ActionResolve:
		a.Outcome = CommitmentBreached
		a.Breacher = k.vendor.Agent().String()
	case ActionDispute:
		a.Reason, a.Severity = "nothing delivered", "high"
	case ActionClaim:
		a.Evidence = []byte(`{"usageReport":"1000 hours"}`)
	}
	for _, s := range signers {
		p := k.party(s)
		if err := a.Sign(p.AgentKey, k.cert(s)); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

func (k *dealKit) party(n string) Party {
	switch n {
	case "buyer":
		return k.buyer
	case "vendor":
		return k.vendor
	}
	return k.judge
}

func (k *dealKit) cert(n string) *Certificate {
	switch n {
	case "buyer":
		return k.d.BuyerCert
	case "vendor":
		return k.d.VendorCert
	}
	return k.judgeCert
}

func TestCommitmentReceipts(t *testing.T) {
	k := newDealKit(t, false)
	c := k.d.Commitment
	if c.State != CommitmentPending || c.Terms.UnitPrice != "2.55" || c.Proposer != k.d.Buyer.String() {
		t.Fatalf("%+v", c)
	}
	if want := CommitmentID(c.Offer.Hash(), c.Acceptance.Hash()); c.ID != want {
		t.Fatal("id")
	}
	r1, _ := SignCommitmentReceipt(k.buyer.OrgKey, c, 7, []byte("cp"))
	c1, err := c.AddReceipt(r1)
	if err != nil || c1.State != CommitmentPending || c.State != CommitmentPending || len(c.Receipts) != 0 {
		t.Fatalf("after one receipt: %v %s", err, c1.State)
	}
	if _, err := c1.AddReceipt(r1); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate receipt: %v", err)
	}
	other, _ := SignCommitmentReceipt(k.judge.OrgKey, c, 1, nil)
	if _, err := c1.AddReceipt(other); !errors.Is(err, ErrReceiptOrg) {
		t.Fatalf("stranger's receipt: %v", err)
	}
	wrong, _ := SignReceipt(k.vendor.OrgKey, c.Head, c.OfferHash, 1, nil)
	if _, err := c1.AddReceipt(wrong); !errors.Is(err, ErrWrongCommitment) {
		t.Fatalf("wrong commitment: %v", err)
	}
	r2, _ := SignCommitmentReceipt(k.vendor.OrgKey, c, 9, []byte("cp2"))
	forged := *r2
	forged.LedgerIndex = 10
	if _, err := c1.AddReceipt(&forged); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged receipt: %v", err)
	}
	c2, err := c1.AddReceipt(r2)
	if err != nil || c2.State != CommitmentActive {
		t.Fatalf("after both receipts: %v %s", err, c2.State)
	}
	// Receipts round trip in CBOR and JSON.
	b, _ := EncodeReceipt(r2)
	r3, err := DecodeReceipt(b)
	if err != nil || r3.Verify() != nil || r3.LedgerIndex != 9 {
		t.Fatalf("receipt round trip: %v", err)
	}
	j, _ := r2.MarshalJSON()
	var r4 Receipt
	if err := r4.UnmarshalJSON(j); err != nil || r4.Verify() != nil {
		t.Fatalf("receipt JSON: %v", err)
	}
}

func TestCommitmentLifecycle(t *testing.T) {
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	t.Run("fulfilled", func(t *testing.T) {
		k := newDealKit(t, false)
		c := k.receipts(t)
		if _, err := c.Apply(k.action(t, ActionConfirm, "buyer", at(1), "buyer")); !errors.Is(err, ErrCommitmentState) {
			t.Fatalf("confirm before claim: %v", err)
		}
		c, err := c.Apply(k.action(t, ActionClaim, "vendor", at(2), "vendor"))
		if err != nil || c.State != CommitmentFulfillmentClaimed {
			t.Fatal(err)
		}
		if _, err := c.Apply(k.action(t, ActionConfirm, "vendor", at(3), "vendor")); !errors.Is(err, ErrOwnOffer) {
			t.Fatalf("claimant confirming: %v", err)
		}
		if _, err := c.Apply(k.action(t, ActionConfirm, "buyer", at(1), "buyer")); !errors.Is(err, ErrTimeRegressed) {
			t.Fatalf("back in time: %v", err)
		}
		c, err = c.Apply(k.action(t, ActionConfirm, "buyer", at(3), "buyer"))
		if err != nil || c.State != CommitmentFulfilled || !c.State.Final() {
			t.Fatal(err)
		}
		if _, err := c.Apply(k.action(t, ActionDispute, "buyer", at(4), "buyer")); !errors.Is(err, ErrCommitmentState) {
			t.Fatalf("dispute after fulfilment: %v", err)
		}
		roundTrip(t, c)
	})
	t.Run("refusals", func(t *testing.T) {
		k := newDealKit(t, false)
		c := k.receipts(t)
		// Actor who did not sign; signer who is not the actor; a stranger.
		a := k.action(t, ActionClaim, "vendor", at(1), "buyer")
		if _, err := c.Apply(a); !errors.Is(err, ErrMissingSignature) {
			t.Fatalf("unsigned actor: %v", err)
		}
		if _, err := c.Apply(k.action(t, ActionClaim, "arbiter", at(1), "arbiter")); !errors.Is(err, ErrNotParty) {
			t.Fatalf("stranger: %v", err)
		}
		a = k.action(t, ActionClaim, "vendor", at(1), "vendor")
		a.Reason = "changed after signing"
		if _, err := c.Apply(a); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("tampered: %v", err)
		}
		a = k.action(t, ActionClaim, "vendor", at(1), "vendor")
		a.CommitmentID = "cmt_x"
		if _, err := c.Apply(a); !errors.Is(err, ErrWrongCommitment) {
			t.Fatalf("other commitment: %v", err)
		}
		a = k.action(t, ActionClaim, "vendor", at(1), "vendor")
		a.Signatures = append(a.Signatures, a.Signatures[0])
		if _, err := c.Apply(a); !errors.Is(err, ErrDuplicateSignature) {
			t.Fatalf("signed twice: %v", err)
		}
		if _, err := k.d.Commitment.Apply(k.action(t, ActionClaim, "vendor", at(1), "vendor")); !errors.Is(err, ErrCommitmentState) {
			t.Fatalf("claim while pending: %v", err)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		k := newDealKit(t, false)
		c := k.receipts(t)
		if _, err := c.Apply(k.action(t, ActionCancel, "buyer", at(1), "buyer")); !errors.Is(err, ErrMissingSignature) {
			t.Fatalf("one-sided cancel: %v", err)
		}
		c, err := c.Apply(k.action(t, ActionCancel, "buyer", at(1), "buyer", "vendor"))
		if err != nil || c.State != CommitmentCancelled {
			t.Fatal(err)
		}
		roundTrip(t, c)
		// Pending commitments can be cancelled too.
		p, err := k.d.Commitment.Apply(k.action(t, ActionCancel, "vendor", at(1), "vendor", "buyer"))
		if err != nil || p.State != CommitmentCancelled {
			t.Fatal(err)
		}
	})
	t.Run("dispute-arbiter", func(t *testing.T) {
		k := newDealKit(t, true)
		c := k.receipts(t)
		if _, err := c.Apply(k.action(t, ActionResolve, "arbiter", at(1), "arbiter")); !errors.Is(err, ErrCommitmentState) {
			t.Fatalf("ruling without dispute: %v", err)
		}
		c, err := c.Apply(k.action(t, ActionDispute, "buyer", at(1), "buyer"))
		if err != nil || c.State != CommitmentDisputed {
			t.Fatal(err)
		}
		if _, err := c.Apply(k.action(t, ActionResolve, "buyer", at(2), "buyer")); !errors.Is(err, ErrMissingSignature) {
			t.Fatalf("one party ruling: %v", err)
		}
		c, err = c.Apply(k.action(t, ActionResolve, "arbiter", at(2), "arbiter"))
		if err != nil || c.State != CommitmentBreached {
			t.Fatal(err)
		}
		roundTrip(t, c)
	})
	t.Run("dispute-no-arbiter", func(t *testing.T) {
		k := newDealKit(t, false)
		c := k.receipts(t)
		c, _ = c.Apply(k.action(t, ActionDispute, "buyer", at(1), "buyer"))
		if _, err := c.Apply(k.action(t, ActionResolve, "arbiter", at(2), "arbiter")); !errors.Is(err, ErrNotArbiter) && !errors.Is(err, ErrMissingSignature) {
			t.Fatalf("self-appointed arbiter: %v", err)
		}
		c, err := c.Apply(k.action(t, ActionResolve, "buyer", at(2), "buyer", "vendor"))
		if err != nil || c.State != CommitmentBreached {
			t.Fatal(err)
		}
	})
	t.Run("expire", func(t *testing.T) {
		k := newDealKit(t, true) // deliverBy t0+48h
		c := k.receipts(t)
		if _, moved := c.Expire(at(48)); moved {
			t.Fatal("expired at the deadline")
		}
		e, moved := c.Expire(at(49))
		if !moved || e.State != CommitmentExpired || c.State != CommitmentActive {
			t.Fatal("not expired")
		}
		if _, err := e.Apply(k.action(t, ActionClaim, "vendor", at(50), "vendor")); !errors.Is(err, ErrCommitmentState) {
			t.Fatalf("claim after expiry: %v", err)
		}
		e, err := e.Apply(k.action(t, ActionDispute, "buyer", at(50), "buyer"))
		if err != nil || e.State != CommitmentDisputed {
			t.Fatal(err)
		}
		roundTrip(t, e)
	})
}

func roundTrip(t *testing.T, c *Commitment) {
	t.Helper()
	if err := VerifyCommitment(c); err != nil {
		t.Fatal(err)
	}
	b, err := EncodeCommitment(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeCommitment(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != c.ID || back.State != c.State || len(back.Actions) != len(c.Actions) || len(back.Receipts) != len(c.Receipts) {
		t.Fatalf("round trip: %s %s", back.ID, back.State)
	}
	b2, _ := EncodeCommitment(back)
	if string(b2) != string(b) {
		t.Fatal("re-encoding differs")
	}
	// A forged state is caught.
	x := *c
	x.State = CommitmentFulfilled
	if c.State != CommitmentFulfilled && VerifyCommitment(&x) == nil {
		t.Fatal("forged state verified")
	}
}

func TestReplay(t *testing.T) {
	d := seedDeal(t)
	s, err := Replay(Config{}, d.Transcript, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Head() != d.Session.Head() || s.State() != StateExecuting || len(s.Commitments()) != 1 ||
		s.Commitments()[0].ID != d.Commitment.ID {
		t.Fatal("replay differs")
	}
	if err := VerifyCommitment(s.Commitments()[0]); err != nil {
		t.Fatal(err)
	}
	// Any single flipped bit anywhere in any encoded envelope is refused.
	enc := make([][]byte, len(d.Transcript))
	for i, e := range d.Transcript {
		enc[i], _ = EncodeEnvelope(e)
	}
	if _, err := ReplayEncoded(Config{}, enc, time.Time{}); err != nil {
		t.Fatal(err)
	}
	for i := range enc {
		for _, pos := range []int{0, len(enc[i]) / 3, len(enc[i]) / 2, len(enc[i]) - 1} {
			mut := make([][]byte, len(enc))
			copy(mut, enc)
			mut[i] = append([]byte{}, enc[i]...)
			mut[i][pos] ^= 0x10
			_, err := ReplayEncoded(Config{}, mut, time.Time{})
			var re *ReplayError
			if !errors.As(err, &re) || re.Index != i {
				t.Fatalf("bit flip in envelope %d at %d: %v", i, pos, err)
			}
		}
	}
	// Dropping or reordering messages breaks the chain.
	if _, err := Replay(Config{}, append(append([]*Envelope{}, d.Transcript[:2]...), d.Transcript[3:]...), time.Time{}); err == nil {
		t.Fatal("gap accepted")
	}
	sw := append([]*Envelope{}, d.Transcript...)
	sw[2], sw[3] = sw[3], sw[2]
	if _, err := Replay(Config{}, sw, time.Time{}); err == nil {
		t.Fatal("reorder accepted")
	}
	// Replaying later ticks: an open invitation fails.
	s2, err := Replay(Config{}, d.Transcript[:1], t0.Add(time.Hour))
	if err != nil || s2.State() != StateFailed {
		t.Fatalf("%v %s", err, s2.State())
	}
	if _, err := Replay(Config{}, nil, time.Time{}); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	if _, err := Replay(Config{}, d.Transcript[1:], time.Time{}); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("transcript without its invitation: %v", err)
	}
}

func TestSeedDealDeterministic(t *testing.T) {
	a, b := seedDeal(t), seedDeal(t)
	if a.Session.Head() != b.Session.Head() || a.Commitment.ID != b.Commitment.ID {
		t.Fatal("SeedDeal is not deterministic")
	}
	if a.Commitment.Terms.UnitPrice != "2.55" || a.Commitment.Terms.Quantity != "1000" ||
		a.Commitment.Proposer != a.Buyer.String() || a.Commitment.Acceptor != a.Vendor.String() {
		t.Fatalf("%+v", a.Commitment)
	}
	prices := []string{}
	for _, e := range a.Transcript {
		switch b := e.Body.(type) {
		case *ProposeBody:
			if b.Terms != nil {
				prices = append(prices, string(e.Performative)+" "+b.Terms.UnitPrice)
			}
		case *CounterBody:
			prices = append(prices, string(e.Performative)+" "+b.Terms.UnitPrice)
		}
	}
	if got := len(prices); got != 3 || prices[0] != "PROPOSE 2.40" || prices[1] != "COUNTER 2.80" || prices[2] != "PROPOSE 2.55" {
		t.Fatalf("%v", prices)
	}
}
