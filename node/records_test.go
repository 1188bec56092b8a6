package node

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
)

// verifiedKinds checks every entry of n's ledger with
// ledger.VerifyProtocolBody, as an auditor of its bundle would, and counts
// the entries of each kind. The same entry with a trailing byte on a
// refusal's or reconciliation's body must be refused.
func verifiedKinds(t *testing.T, n *Node) map[ledger.Kind]int {
	t.Helper()
	ents, err := n.led.Entries(0, n.led.Size())
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[ledger.Kind]int{}
	for _, e := range ents {
		if err := ledger.VerifyProtocolBody(e); err != nil {
			t.Fatalf("%s entry %d (%s): %v", n.peerID, e.Index, e.Kind, err)
		}
		kinds[e.Kind]++
		if e.Kind == ledger.KindMessageRefused || e.Kind == ledger.KindReconciled {
			e.Body = append(e.Body[:len(e.Body):len(e.Body)], 0)
			if err := ledger.VerifyProtocolBody(e); err == nil {
				t.Fatalf("%s entry %d (%s) with a byte appended verifies", n.peerID, e.Index, e.Kind)
			}
		}
	}
	return kinds
}

// The refusals and reconciliations a node records pass the offline
// verifier: a session ended on the vendor's side (kind 33) and the buyer's
// move the vendor then refused (kind 32).
func TestRefusalAndReconciliationRecordsVerify(t *testing.T) {
	p, _ := endedOnVendorSide(t)
	if k := verifiedKinds(t, p.vendorNode); k[ledger.KindReconciled] == 0 {
		t.Fatalf("vendor ledger holds no reconciliation: %v", k)
	}
	if k := verifiedKinds(t, p.buyerNode); k[ledger.KindMessageRefused] == 0 {
		t.Fatalf("buyer ledger holds no refusal: %v", k)
	}
}

// The key events a node records pass the offline verifier: an agent
// created (with the certificate the node issued for its key) and removed.
// The same entries with a trailing byte are refused.
func TestKeyEventRecordsVerify(t *testing.T) {
	n := startNode(t, filepath.Join(t.TempDir(), "org"))
	ctx := context.Background()
	for _, caps := range [][]string{{"compute.gpu-hours", "procurement"}, nil} {
		ra, err := n.CreateAgent(ctx, api.CreateAgentRequest{Name: "agent" + string(rune('a'+len(caps))), Capabilities: caps})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.DeleteAgent(ctx, ra.AgentID); err != nil {
			t.Fatal(err)
		}
	}
	if k := verifiedKinds(t, n); k[ledger.KindKeyEvent] != 4 {
		t.Fatalf("ledger holds %d key events, want 4: %v", k[ledger.KindKeyEvent], k)
	}
	ents, err := n.led.ByKind(ledger.KindKeyEvent, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		e.Body = append(e.Body[:len(e.Body):len(e.Body)], 0)
		if err := ledger.VerifyProtocolBody(e); err == nil {
			t.Fatalf("key event %d with a byte appended verifies", e.Index)
		}
	}
}
