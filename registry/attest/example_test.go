package attest_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/aspnode/asp/protocol"
	"github.com/aspnode/asp/protocol/protocoltest"
	"github.com/aspnode/asp/registry/attest"
)

// The buyer of the seed deal attests that the vendor delivered; anyone can
// verify the attestation from its bytes alone. The evidence is the offer,
// the acceptance and both organisations' receipts: each organisation's
// signature that it recorded the commitment.
func ExampleFromCommitment() {
	buyer := protocoltest.FixtureParty("example buyer org", "buyer")
	vendor := protocoltest.FixtureParty("example vendor org", "vendor")
	start := time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)
	deal, err := protocoltest.SeedDeal(buyer, vendor, start)
	if err != nil {
		panic(err)
	}
	c := deal.Commitment
	for i, org := range []protocoltest.Party{buyer, vendor} {
		r, err := protocol.SignCommitmentReceipt(org.OrgKey, c, uint64(i+1), []byte("checkpoint\n"))
		if err != nil {
			panic(err)
		}
		if c, err = c.AddReceipt(r); err != nil {
			panic(err)
		}
	}
	at := start.Add(24 * time.Hour)
	a, err := attest.FromCommitment(c, attest.Fulfilled, at, buyer.AgentKey, deal.BuyerCert)
	if err != nil {
		panic(err)
	}
	b, err := a.Encode()
	if err != nil {
		panic(err)
	}

	got, err := attest.Decode(b)
	if err != nil {
		panic(err)
	}
	fmt.Println(got.Verify(at) == nil, got.Subject == vendor.Agent().String(), got.Outcome)

	got.Outcome = attest.Breached // not what the buyer signed
	fmt.Println(errors.Is(got.Verify(at), attest.ErrForged))
	// Output:
	// true true fulfilled
	// true
}
