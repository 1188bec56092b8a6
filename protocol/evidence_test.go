package protocol

import (
	"errors"
	"testing"
	"time"
)

// A short negotiation: buyer invites vendor (at t0), vendor accepts the
// invitation, buyer offers terms valid for 60 s (at t0+2s). It returns the
// session (the offer open), the parties' certificates and a source of
// message ids.
func offerSession(t *testing.T) (s *Session, buyer, vendor Party, bc, vc *Certificate, offer *Envelope) {
	t.Helper()
	buyer, vendor = FixtureParty("buyer", "buyer"), FixtureParty("vendor", "vendor")
	bc, _ = buyer.Certificate(nil, t0.AddDate(1, 0, 0))
	vc, _ = vendor.Certificate(nil, t0.AddDate(1, 0, 0))
	s = NewSession(Config{}, "deadline-session", buyer.Agent(), vendor.Agent(), t0)
	rnd := FixtureRand("deadline session")
	terms := Terms{Resource: "gpu-hours", Quantity: "10", Unit: "hour", UnitPrice: "2.55", Currency: "USD"}
	for i, m := range []struct {
		p    Party
		c    *Certificate
		perf Performative
		body Body
	}{
		{buyer, bc, Propose, nil},
		{vendor, vc, Accept, nil},
		{buyer, bc, Propose, &ProposeBody{Terms: &terms, ValidUntil: t0.Add(62 * time.Second)}},
	} {
		at := t0.Add(time.Duration(i) * time.Second)
		env, err := s.Prepare(m.p.Agent(), m.perf, m.body, at, rnd)
		if err != nil {
			t.Fatal(err)
		}
		if err := env.Seal(m.p.AgentKey, m.c); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Step(env, at); err != nil {
			t.Fatal(err)
		}
		offer = env
	}
	return s, buyer, vendor, bc, vc, offer
}

// sealedMove prepares and seals p's move in s at the instant at.
func sealedMove(t *testing.T, s *Session, p Party, c *Certificate, perf Performative, body Body, at time.Time) *Envelope {
	t.Helper()
	env, err := s.Prepare(p.Agent(), perf, body, at, FixtureRand(string(perf)+FormatTime(at)))
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Seal(p.AgentKey, c); err != nil {
		t.Fatal(err)
	}
	return env
}

// An offer valid for 60 s cannot be accepted four minutes late by the
// receiver's clock, even when the ACCEPT's own timestamp (the sender's
// choice, inside the freshness window) is in time.
func TestStepJudgesOfferDeadlineByReceiverClock(t *testing.T) {
	s, _, vendor, _, vc, offer := offerSession(t)
	at := offer.Timestamp.Add(30 * time.Second) // the ACCEPT claims to be in time
	acc := sealedMove(t, s, vendor, vc, Accept, nil, at)
	late := offer.Timestamp.Add(4 * time.Minute) // when it arrives
	if _, err := s.Clone().Step(acc, late); !errors.Is(err, ErrStaleOffer) {
		t.Fatalf("ACCEPT received 4 min after a 60 s offer: %v, want ErrStaleOffer", err)
	}
	if st, _ := s.Offer(offer.MessageID); st != OfferOpen {
		t.Fatalf("a refused ACCEPT changed the offer to %s", st)
	}
	eff, err := s.Step(acc, at.Add(time.Second))
	if err != nil || eff.Commitment == nil {
		t.Fatalf("ACCEPT received in time: %v", err)
	}
}

// An invitation is judged the same way: accepted after InviteTimeout by
// the receiver's clock, it is refused.
func TestStepJudgesInvitationDeadlineByReceiverClock(t *testing.T) {
	buyer, vendor := FixtureParty("buyer", "buyer"), FixtureParty("vendor", "vendor")
	bc, _ := buyer.Certificate(nil, t0.AddDate(1, 0, 0))
	vc, _ := vendor.Certificate(nil, t0.AddDate(1, 0, 0))
	s := NewSession(Config{}, "invite-deadline", buyer.Agent(), vendor.Agent(), t0)
	inv := sealedMove(t, s, buyer, bc, Propose, nil, t0)
	if _, err := s.Step(inv, t0); err != nil {
		t.Fatal(err)
	}
	acc := sealedMove(t, s, vendor, vc, Accept, nil, t0.Add(10*time.Second))
	if _, err := s.Clone().Step(acc, t0.Add(4*time.Minute)); !errors.Is(err, ErrTimeout) {
		t.Fatalf("invitation accepted 4 min late by the receiver's clock: %v, want ErrTimeout", err)
	}
	if _, err := s.Step(acc, t0.Add(11*time.Second)); err != nil {
		t.Fatalf("invitation accepted in time: %v", err)
	}
}

// Within a session one offer forms at most one commitment: a second ACCEPT
// of an accepted offer, and an ACCEPT of a countered, rejected or
// withdrawn offer, are refused.
func TestStepOneCommitmentPerOffer(t *testing.T) {
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	t.Run("accepted twice", func(t *testing.T) {
		s, _, vendor, _, vc, offer := offerSession(t)
		acc := sealedMove(t, s, vendor, vc, Accept, nil, at(3))
		if _, err := s.Step(acc, at(3)); err != nil {
			t.Fatal(err)
		}
		// The buyer's node has moved on; the vendor signs a second ACCEPT
		// of the same offer, chained to the head.
		again := buildAccept(t, s, vendor, vc, offer, at(4))
		if _, err := s.Step(again, at(4)); !errors.Is(err, ErrAlreadyAccepted) {
			t.Fatalf("second ACCEPT of an accepted offer: %v, want ErrAlreadyAccepted", err)
		}
		if n := len(s.Commitments()); n != 1 {
			t.Fatalf("%d commitments from one offer", n)
		}
	})
	for _, answer := range []Performative{Counter, Reject, Withdraw} {
		t.Run("after "+string(answer), func(t *testing.T) {
			s, buyer, vendor, bc, vc, offer := offerSession(t)
			var env *Envelope
			if answer == Withdraw {
				env = sealedMove(t, s, buyer, bc, Withdraw, nil, at(3))
			} else {
				var body Body
				if answer == Counter {
					body = &CounterBody{Terms: Terms{UnitPrice: "2.80"}}
				}
				env = sealedMove(t, s, vendor, vc, answer, body, at(3))
			}
			if _, err := s.Step(env, at(3)); err != nil {
				t.Fatal(err)
			}
			acc := buildAccept(t, s, vendor, vc, offer, at(4))
			if _, err := s.Step(acc, at(4)); !errors.Is(err, ErrStaleOffer) {
				t.Fatalf("ACCEPT of a %s offer: %v, want ErrStaleOffer", answer, err)
			}
		})
	}
}

// buildAccept signs an ACCEPT of offer by p, chained to s's head, without
// asking s whether the move is legal (as a cheating party would).
func buildAccept(t *testing.T, s *Session, p Party, c *Certificate, offer *Envelope, at time.Time) *Envelope {
	t.Helper()
	h := offer.Hash()
	env := &Envelope{Version: Version, MessageID: mustMessageID(t, at), SessionID: s.ID(), Sender: p.Agent().String(),
		Recipient: offer.Sender, Timestamp: at, SequenceNumber: s.NextSequence(p.Agent()), Performative: Accept,
		Body: &AcceptBody{ReferenceID: offer.MessageID, ReferenceHash: h[:]}}
	env.Integrity.PreviousHash = s.Head()
	if err := env.Seal(p.AgentKey, c); err != nil {
		t.Fatal(err)
	}
	return env
}

func mustMessageID(t *testing.T, at time.Time) string {
	t.Helper()
	id, err := NewMessageID(at, FixtureRand("message "+FormatTime(at)))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// The evidence check judges the acceptance against the offer's validity:
// an ACCEPT signed after validUntil does not form a commitment, whoever
// holds it.
func TestRebuildRefusesAcceptanceAfterValidUntil(t *testing.T) {
	s, _, vendor, _, vc, offer := offerSession(t)
	late := buildAccept(t, s, vendor, vc, offer, offer.Timestamp.Add(61*time.Second))
	if _, err := RebuildCommitment(offer, late, nil, nil, time.Time{}); !errors.Is(err, ErrStaleOffer) {
		t.Fatalf("ACCEPT after validUntil: %v, want ErrStaleOffer", err)
	}
	inTime := buildAccept(t, s, vendor, vc, offer, offer.Timestamp.Add(59*time.Second))
	if _, err := RebuildCommitment(offer, inTime, nil, nil, time.Time{}); err != nil {
		t.Fatalf("ACCEPT before validUntil: %v", err)
	}
}

// A receipt names the commitment by the full hashes of its offer and
// acceptance: a receipt for another acceptance of the same offer does not
// count, a receipt whose id is not the one its hashes derive does not
// verify, and a receipt signed in the asp/1.0 form (over the id alone)
// does not verify.
func TestReceiptNamesFullHashes(t *testing.T) {
	s, buyer, vendor, _, vc, offer := offerSession(t)
	acc1 := buildAccept(t, s, vendor, vc, offer, offer.Timestamp.Add(time.Second))
	acc2 := buildAccept(t, s, vendor, vc, offer, offer.Timestamp.Add(2*time.Second))
	c1, err := RebuildCommitment(offer, acc1, nil, nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := RebuildCommitment(offer, acc2, nil, nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if c1.ID == c2.ID {
		t.Fatal("two acceptances, one id")
	}
	r1, err := SignCommitmentReceipt(buyer.OrgKey, c1, 5, []byte("cp"))
	if err != nil {
		t.Fatal(err)
	}
	if r1.OfferHash != offer.Hash() || r1.AcceptanceHash != acc1.Hash() {
		t.Fatal("receipt does not carry the full hashes")
	}
	// The offerer's receipt for the first acceptance does not receipt the
	// second.
	if _, err := RebuildCommitment(offer, acc2, []*Receipt{r1}, nil, time.Time{}); !errors.Is(err, ErrWrongCommitment) {
		t.Fatalf("receipt of another acceptance: %v, want ErrWrongCommitment", err)
	}
	// A receipt claiming c2's id over c1's hashes, correctly signed.
	forgedID := *r1
	forgedID.CommitmentID = c2.ID
	d, _, _ := digest(forgedID.wire(true))
	forgedID.Signature, _ = signDigest(buyer.OrgKey, domainReceipt, d)
	if err := forgedID.Verify(); !errors.Is(err, ErrWrongCommitment) {
		t.Fatalf("receipt whose id is not its hashes': %v, want ErrWrongCommitment", err)
	}
	if err := c2.CheckReceipt(&forgedID); !errors.Is(err, ErrWrongCommitment) {
		t.Fatalf("receipt naming c2 by id, c1 by hashes: %v, want ErrWrongCommitment", err)
	}
	// The same fields signed under the asp/1.0 receipt domain.
	old := *r1
	old.Signature, _ = signDigest(buyer.OrgKey, "asp/1.0 receipt", d)
	if err := old.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("asp/1.0 receipt signature: %v, want ErrBadSignature", err)
	}
	// Both receipts make c1 Receipted; one does not.
	c, err := RebuildCommitment(offer, acc1, []*Receipt{r1}, nil, time.Time{})
	if err != nil || c.Receipted() {
		t.Fatalf("one receipt: %v, receipted %v", err, c.Receipted())
	}
	r2, _ := SignCommitmentReceipt(vendor.OrgKey, c1, 9, []byte("cp"))
	if c, err = c.AddReceipt(r2); err != nil || !c.Receipted() || c.State != CommitmentActive {
		t.Fatalf("both receipts: %v", err)
	}
}

// An asp/1.0 receipt (no hashes) does not decode.
func TestDecodeReceiptWithoutHashes(t *testing.T) {
	type v10 struct {
		CommitmentID string `cbor:"commitmentId"`
		Org          string `cbor:"org"`
		LedgerIndex  uint64 `cbor:"ledgerIndex"`
		Checkpoint   b64    `cbor:"checkpoint"`
		Signature    b64    `cbor:"signature,omitempty"`
	}
	b, err := canonical(v10{"cmt_fe0f5b25c7801ea9f1396849a4e6c39b", FixtureParty("buyer", "buyer").Agent().Org, 1, b64{}, make(b64, 64)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeReceipt(b); !errors.Is(err, ErrNonCanonical) && !errors.Is(err, ErrMalformed) {
		t.Fatalf("asp/1.0 receipt: %v, want ErrNonCanonical or ErrMalformed", err)
	}
	// Hashes present but short.
	w := wireReceipt{CommitmentID: "cmt_fe0f5b25c7801ea9f1396849a4e6c39b", Org: FixtureParty("buyer", "buyer").Agent().Org,
		OfferHash: make(b64, 16), AcceptanceHash: make(b64, 32), Checkpoint: b64{}, Signature: make(b64, 64)}
	if b, err = canonical(w); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeReceipt(b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("receipt with a 16-byte offer hash: %v, want ErrMalformed", err)
	}
}
