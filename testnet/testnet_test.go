package testnet_test

import (
	"testing"

	"github.com/aspnode/asp/testnet"
	"github.com/aspnode/asp/testnet/scenario"
)

// TestSeedDealInProcess closes the seed deal between two in-process nodes
// and checks both ledgers; then restarts the vendor's node and checks that
// it recovers the commitment from its ledger.
func TestSeedDealInProcess(t *testing.T) {
	net := testnet.New(t, 2)
	buyer := net.CreateAgent(0, "buyer")
	vendor := net.CreateAgent(1, "vendor", "compute.gpu-hours")

	ctx, cancel := net.Context()
	defer cancel()
	deal, err := scenario.PlaySeedDeal(ctx, buyer, vendor, nil)
	if err != nil {
		t.Fatal(err)
	}
	views := net.AwaitCommitment(deal.CommitmentID, "ACTIVE")
	for i, v := range views {
		if len(v.Signatures) != 2 || len(v.Receipts) != 2 {
			t.Errorf("node-%d: %d signatures, %d receipts; want 2 and 2", i, len(v.Signatures), len(v.Receipts))
		}
	}
	for _, nd := range net.Nodes {
		entries, err := nd.Ledger().ByCommitment(deal.CommitmentID)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) < 2 {
			t.Errorf("%s: %d ledger entries for the commitment, want the commitment and a receipt", nd.Name, len(entries))
		}
		if err := nd.Ledger().Check(ctx); err != nil {
			t.Errorf("%s: %v", nd.Name, err)
		}
	}

	net.Nodes[1].Restart()
	net.AwaitCommitment(deal.CommitmentID, "ACTIVE", 1)
}
