package attest

import (
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/aspnode/asp/protocol"
	"github.com/aspnode/asp/protocol/protocoltest"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
)

// offlineAccept is an ACCEPT of offer signed by p alone, never sent: what
// a party that once received an offer can make on its own.
func offlineAccept(t testing.TB, p protocoltest.Party, cert *protocol.Certificate, offer *protocol.Envelope, at time.Time) *protocol.Envelope {
	t.Helper()
	id, err := protocol.NewMessageID(at, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h := offer.Hash()
	env := &protocol.Envelope{Version: protocol.Version, MessageID: id, SessionID: offer.SessionID,
		Sender: p.Agent().String(), Recipient: offer.Sender, Timestamp: protocol.Millis(at), SequenceNumber: 9,
		Performative: protocol.Accept, Body: &protocol.AcceptBody{ReferenceID: offer.MessageID, ReferenceHash: h[:]}}
	env.Integrity.PreviousHash = h
	if err := env.Seal(p.AgentKey, cert); err != nil {
		t.Fatal(err)
	}
	return env
}

// receipt is org's encoded receipt for the commitment of offer and acc.
func receipt(t testing.TB, org protocoltest.Party, offer, acc *protocol.Envelope) []byte {
	t.Helper()
	r, err := protocol.SignReceipt(org.OrgKey, offer.Hash(), acc.Hash(), 3, []byte("checkpoint\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := protocol.EncodeReceipt(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fabricated is the vendor's attestation BREACHED about the buyer on the
// commitment formed by offer and the vendor's offline ACCEPT acc, with the
// given receipts, signed.
func (f *fixture) fabricated(t testing.TB, offer, acc *protocol.Envelope, receipts [][]byte, at time.Time) *Attestation {
	t.Helper()
	ob, _ := protocol.EncodeEnvelope(offer)
	ab, _ := protocol.EncodeEnvelope(acc)
	a := &Attestation{Attester: f.vendor.Agent().String(), Subject: f.buyer.Agent().String(),
		CommitmentID: protocol.CommitmentID(offer.Hash(), acc.Hash()), Outcome: Breached, Time: at,
		Offer: ob, Acceptance: ab, Receipts: receipts, Certificate: f.vendorCert}
	if err := a.Sign(f.vendor.AgentKey); err != nil {
		t.Fatal(err)
	}
	return a
}

// The evidence of an attestation counts only with every party
// organisation's receipt, each naming the commitment by its full hashes.
func TestVerifyNeedsBothReceipts(t *testing.T) {
	f := newFixture(t, "receipts")
	now := t0.Add(time.Hour)
	offer, acc := f.c.Offer, f.c.Acceptance
	buyerR, vendorR := receipt(t, f.buyer, offer, acc), receipt(t, f.vendor, offer, acc)
	other := offlineAccept(t, f.vendor, f.vendorCert, offer, acc.Timestamp.Add(time.Second))
	// The vendor's organisation signs, but names itself the buyer's.
	posing, err := protocol.SignReceipt(f.vendor.OrgKey, offer.Hash(), acc.Hash(), 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	posing.Org = f.buyer.Agent().Org
	posingB, _ := protocol.EncodeReceipt(posing)

	cases := []struct {
		name     string
		receipts [][]byte
		want     error
		reason   string
	}{
		{"both", [][]byte{buyerR, vendorR}, nil, "ok"},
		{"none", nil, ErrUnreceipted, "unreceipted"},
		{"only the attester's own", [][]byte{vendorR}, ErrUnreceipted, "unreceipted"},
		{"the attester's twice", [][]byte{vendorR, vendorR}, ErrUnreceipted, "unreceipted"},
		{"the counterparty's for another acceptance of the offer",
			[][]byte{receipt(t, f.buyer, offer, other), vendorR}, ErrUnreceipted, "unreceipted"},
		{"an outsider organisation's", [][]byte{receipt(t, f.outsider, offer, acc), vendorR}, ErrUnreceipted, "unreceipted"},
		{"the counterparty's signed by the attester's organisation", [][]byte{posingB, vendorR}, ErrForged, "forged"},
		{"three", [][]byte{buyerR, vendorR, vendorR}, ErrMalformed, "malformed"},
		{"garbage", [][]byte{buyerR, {0xa0}}, ErrMalformed, "malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := f.attest(t, Breached, now)
			a.Receipts = tc.receipts
			resign(t, a, f.buyer.AgentKey, f.buyerCert)
			err := a.Verify(now)
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			if tc.want != nil && !Provable(err) {
				t.Fatalf("%v is not provable", err)
			}
			if got := reason(err); got != tc.reason {
				t.Fatalf("reason %q, want %q", got, tc.reason)
			}
			s := newService(t, Config{Clock: fixedClock(now)})
			want := pubsub.ValidationAccept
			if tc.want != nil {
				want = pubsub.ValidationReject
			}
			if r, err := s.judge(message(mustEncode(t, a), "origin")); r != want {
				t.Fatalf("validator: %v, %v; want %v", r, err, want)
			}
		})
	}
}

// A party that once received an offer signs an ACCEPT the other side never
// saw and attests BREACHED on it: refused, whatever receipts it attaches.
func TestFabricatedAcceptanceRefused(t *testing.T) {
	f := newFixture(t, "fabricated")
	now := t0.Add(time.Hour)
	// The buyer's first offer (2.40), which the vendor countered.
	countered := f.deal.Transcript[2]
	acc := offlineAccept(t, f.vendor, f.vendorCert, countered, countered.Timestamp.Add(10*time.Second))
	real := f.c
	realBuyer := receipt(t, f.buyer, real.Offer, real.Acceptance)
	for name, receipts := range map[string][][]byte{
		"with only its own receipt":                       {receipt(t, f.vendor, countered, acc)},
		"with the buyer's receipt of the real commitment": {realBuyer, receipt(t, f.vendor, countered, acc)},
		"with no receipt":                                 nil,
	} {
		t.Run(name, func(t *testing.T) {
			a := f.fabricated(t, countered, acc, receipts, now)
			if err := a.Verify(now); !errors.Is(err, ErrUnreceipted) {
				t.Fatalf("Verify = %v, want ErrUnreceipted", err)
			}
		})
	}

	// An ACCEPT signed after the offer's validUntil is no acceptance, even
	// were both organisations to receipt it.
	rnd := protocoltest.FixtureRand("late offer")
	s := f.deal.Session.Clone()
	terms := protocol.Terms{UnitPrice: "2.50"}
	at := f.c.Acceptance.Timestamp.Add(time.Second)
	offer, err := s.Prepare(f.buyer.Agent(), protocol.Propose,
		&protocol.ProposeBody{Terms: &terms, ValidUntil: at.Add(time.Minute)}, at, rnd)
	if err != nil {
		t.Fatal(err)
	}
	if err := offer.Seal(f.buyer.AgentKey, f.buyerCert); err != nil {
		t.Fatal(err)
	}
	late := offlineAccept(t, f.vendor, f.vendorCert, offer, at.Add(4*time.Minute))
	a := f.fabricated(t, offer, late, [][]byte{receipt(t, f.buyer, offer, late), receipt(t, f.vendor, offer, late)}, now)
	err = a.Verify(now)
	if !errors.Is(err, ErrMismatch) || !errors.Is(err, protocol.ErrStaleOffer) || reason(err) != "late_acceptance" {
		t.Fatalf("ACCEPT after validUntil: %v (%s), want ErrMismatch, late_acceptance", err, reason(err))
	}
}
