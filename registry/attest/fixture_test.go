package attest

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/aspnode/asp/protocol"
	"github.com/aspnode/asp/protocol/protocoltest"
)

// t0 is the start of the fixture deal; attestations are made an hour later.
var t0 = time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)

// fixture is a signed deal between a buyer and a vendor of two
// organisations, plus an outsider of a third organisation.
type fixture struct {
	buyer, vendor, outsider protocoltest.Party
	buyerCert, vendorCert   *protocol.Certificate
	outsiderCert            *protocol.Certificate
	deal                    *protocoltest.Deal
	c                       *protocol.Commitment
}

func newFixture(t testing.TB, label string) *fixture {
	t.Helper()
	return newFixtureAt(t, label, t0)
}

// newFixtureAt is newFixture with the deal starting at start.
func newFixtureAt(t testing.TB, label string, start time.Time) *fixture {
	t.Helper()
	f := &fixture{
		buyer:    protocoltest.FixtureParty(label+" buyer org", "buyer"),
		vendor:   protocoltest.FixtureParty(label+" vendor org", "vendor"),
		outsider: protocoltest.FixtureParty(label+" outsider org", "outsider"),
	}
	var err error
	if f.deal, err = protocoltest.SeedDeal(f.buyer, f.vendor, start); err != nil {
		t.Fatal(err)
	}
	f.c = f.deal.Commitment
	// Both organisations recorded the commitment: their receipts.
	for i, p := range []protocoltest.Party{f.buyer, f.vendor} {
		r, err := protocol.SignCommitmentReceipt(p.OrgKey, f.c, uint64(10+i), []byte("checkpoint\n"))
		if err != nil {
			t.Fatal(err)
		}
		if f.c, err = f.c.AddReceipt(r); err != nil {
			t.Fatal(err)
		}
	}
	f.buyerCert, f.vendorCert = f.deal.BuyerCert, f.deal.VendorCert
	if f.outsiderCert, err = f.outsider.Certificate(nil, t0.AddDate(1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	return f
}

// attest makes and signs the buyer's attestation about the vendor.
func (f *fixture) attest(t testing.TB, o Outcome, at time.Time) *Attestation {
	t.Helper()
	a, err := FromCommitment(f.c, o, at, f.buyer.AgentKey, f.buyerCert)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustEncode(t testing.TB, a *Attestation) []byte {
	t.Helper()
	b, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// resign signs a with key and cert, after the caller changed it.
func resign(t testing.TB, a *Attestation, key ed25519.PrivateKey, cert *protocol.Certificate) {
	t.Helper()
	a.Certificate = cert
	a.Attester = cert.AgentID
	if err := a.Sign(key); err != nil {
		t.Fatal(err)
	}
}
