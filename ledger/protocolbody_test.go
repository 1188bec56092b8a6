package ledger_test

import (
	"errors"
	"testing"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/protocol"
	"github.com/aspnode/asp/protocol/protocoltest"
	"github.com/aspnode/asp/registry/attest"
	"github.com/fxamacker/cbor/v2"
)

// An attestation entry claims a commitment exists; VerifyProtocolBody
// passes it only when its evidence carries both organisations' receipts
// naming that commitment.
func TestVerifyProtocolBodyAttestationNeedsBothReceipts(t *testing.T) {
	buyer, vendor := protocoltest.FixtureParty("ledger buyer org", "buyer"), protocoltest.FixtureParty("ledger vendor org", "vendor")
	start := time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)
	deal, err := protocoltest.SeedDeal(buyer, vendor, start)
	if err != nil {
		t.Fatal(err)
	}
	c := deal.Commitment
	receipts := map[string]*protocol.Receipt{}
	for i, org := range []protocoltest.Party{buyer, vendor} {
		r, err := protocol.SignCommitmentReceipt(org.OrgKey, c, uint64(i+1), []byte("checkpoint\n"))
		if err != nil {
			t.Fatal(err)
		}
		receipts[org.Name] = r
		if c, err = c.AddReceipt(r); err != nil {
			t.Fatal(err)
		}
	}
	at := start.Add(time.Hour)
	a, err := attest.FromCommitment(c, attest.Breached, at, buyer.AgentKey, deal.BuyerCert)
	if err != nil {
		t.Fatal(err)
	}
	entry := func(a *attest.Attestation) ledger.Entry {
		t.Helper()
		b, err := a.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return ledger.Entry{Kind: ledger.KindAttestation, Time: at, Commitment: a.CommitmentID, Body: b}
	}
	if err := ledger.VerifyProtocolBody(entry(a)); err != nil {
		t.Fatalf("attestation with both receipts: %v", err)
	}
	// The buyer's own receipt only: the vendor's side is unproven.
	one := *a
	one.Receipts = a.Receipts[:1]
	if err := one.Sign(buyer.AgentKey); err != nil {
		t.Fatal(err)
	}
	if err := ledger.VerifyProtocolBody(entry(&one)); !errors.Is(err, protocol.ErrUnreceipted) {
		t.Fatalf("attestation with one receipt: %v, want ErrUnreceipted", err)
	}
	// The attestation with a second "receipts" key holding only one
	// receipt: readers that keep the first key and readers that keep the
	// last would see different evidence. attest.Decode refuses duplicate
	// keys, and so must the ledger.
	dup := entry(a)
	if dup.Body[0] < 0xa0 || dup.Body[0] >= 0xb7 {
		t.Fatalf("attestation map header %#x", dup.Body[0])
	}
	first, err := cbor.Marshal(a.Receipts[:1])
	if err != nil {
		t.Fatal(err)
	}
	key, _ := cbor.Marshal("receipts")
	dup.Body = append(append(append([]byte{dup.Body[0] + 1}, dup.Body[1:]...), key...), first...)
	if _, err := attest.Decode(dup.Body); err == nil {
		t.Fatal("attest.Decode took a duplicate key")
	}
	if err := ledger.VerifyProtocolBody(dup); err == nil {
		t.Fatal("attestation entry with a duplicate receipts key passed")
	}
	// Another commitment named.
	wrong := entry(a)
	wrong.Commitment = protocol.CommitmentID([32]byte{1}, [32]byte{2})
	if err := ledger.VerifyProtocolBody(wrong); err == nil {
		t.Fatal("attestation entry naming another commitment passed")
	}

	// A receipt whose id is not the one its hashes derive.
	r := *receipts["vendor"]
	r.CommitmentID = protocol.CommitmentID([32]byte{1}, r.AcceptanceHash)
	rb, err := protocol.EncodeReceipt(&r)
	if err != nil {
		t.Fatal(err)
	}
	if err := ledger.VerifyProtocolBody(ledger.Entry{Kind: ledger.KindReceipt, Body: rb}); !errors.Is(err, protocol.ErrWrongCommitment) {
		t.Fatalf("receipt naming another id: %v, want ErrWrongCommitment", err)
	}
}
