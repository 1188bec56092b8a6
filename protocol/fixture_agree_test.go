package protocol_test

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/aspnode/asp/protocol"
	"github.com/aspnode/asp/protocol/protocoltest"
)

// TestFixtureCopiesAgree: the internal tests' copy of the fixtures
// (fixture_test.go) and package protocoltest derive the same keys, the same
// random stream and the same seed deal, envelope for envelope.
func TestFixtureCopiesAgree(t *testing.T) {
	for _, label := range []string{"buyer", "vendor", "ledger buyer org"} {
		a, b := protocol.FixtureParty(label, "n"), protocoltest.FixtureParty(label, "n")
		if !a.OrgKey.Equal(b.OrgKey) || !a.AgentKey.Equal(b.AgentKey) || a.Agent() != b.Agent() {
			t.Fatalf("FixtureParty(%q): the copies derive different keys", label)
		}
		ra, rb := make([]byte, 64), make([]byte, 64)
		if _, err := io.ReadFull(protocol.FixtureRand(label), ra); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(protocoltest.FixtureRand(label), rb); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ra, rb) {
			t.Fatalf("FixtureRand(%q): the copies differ", label)
		}
	}
	start := time.Date(2027, 2, 1, 9, 0, 0, 0, time.UTC)
	a, err := protocol.SeedDeal(protocol.FixtureParty("buyer", "buyer"), protocol.FixtureParty("vendor", "vendor"), start)
	if err != nil {
		t.Fatal(err)
	}
	b, err := protocoltest.SeedDeal(protocoltest.FixtureParty("buyer", "buyer"), protocoltest.FixtureParty("vendor", "vendor"), start)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Transcript) != len(b.Transcript) {
		t.Fatalf("seed deal: %d envelopes against %d", len(a.Transcript), len(b.Transcript))
	}
	for i := range a.Transcript {
		ea, err := protocol.EncodeEnvelope(a.Transcript[i])
		if err != nil {
			t.Fatal(err)
		}
		eb, err := protocol.EncodeEnvelope(b.Transcript[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ea, eb) {
			t.Fatalf("seed deal envelope %d differs between the copies", i)
		}
	}
	if a.Commitment.ID != b.Commitment.ID || a.Buyer != b.Buyer || a.Vendor != b.Vendor {
		t.Fatal("seed deal: the copies give different commitments or parties")
	}
}
