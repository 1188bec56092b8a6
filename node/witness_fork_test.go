package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/ledger/witness"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
)

// dealBetween plays the seed deal between two agents and waits until it is
// ACTIVE on both nodes.
func dealBetween(t *testing.T, a, b *Node, buyer, vendor string) string {
	t.Helper()
	id := seedDeal(t, &pair{buyerNode: a, vendorNode: b, buyer: buyer, vendor: vendor})
	awaitActive(t, a, id)
	awaitActive(t, b, id)
	return id
}

// pad appends filler entries to n's ledger until it holds size entries.
func pad(t *testing.T, n *Node, size uint64) {
	t.Helper()
	for n.led.Size() < size {
		if _, err := n.led.Append(context.Background(), ledger.Record{Kind: 200, Time: time.Now(), Body: []byte("filler")}); err != nil {
			t.Fatal(err)
		}
	}
	if n.led.Size() != size {
		t.Fatalf("ledger at %d, want %d", n.led.Size(), size)
	}
}

// roundIdle reports whether n has no round in flight with org's witness
// and has ended one since since.
func roundIdle(n *Node, org string, since time.Time) bool {
	n.wit.mu.Lock()
	defer n.wit.mu.Unlock()
	p := n.wit.rounds[org]
	return p != nil && !p.running && !p.tried.Before(since)
}

// TestForkedLedgerIsCaught: a node whose ledger is replaced by an older
// copy of itself and made to record other entries signs a second root for
// a size its counterparty cosigned. The counterparty refuses to cosign,
// builds the equivocation proof and gossips it; a third node verifies it,
// scores the organisation 0 and refuses its invitations with equivocation.
func TestForkedLedgerIsCaught(t *testing.T) {
	if testing.Short() {
		t.Skip("three real nodes and a restart")
	}
	ctx := context.Background()
	dir := t.TempDir()
	homeA := filepath.Join(dir, "forker-org")
	a := startNode(t, homeA)
	b := startNode(t, filepath.Join(dir, "witness-org"))
	c := startNode(t, filepath.Join(dir, "observer-org"))
	t.Cleanup(func() { b.Close(); c.Close() })
	connect(t, a, b)
	connect(t, c, b)
	p := withAgents(t, a, b)
	rc, err := c.CreateAgent(ctx, api.CreateAgentRequest{Name: "seller", Capabilities: []string{"compute.gpu-hours"}})
	if err != nil {
		t.Fatal(err)
	}

	// The older copy of A's ledger, taken while A is stopped.
	a.Close()
	saved := filepath.Join(dir, "saved-ledger")
	if err := os.CopyFS(saved, os.DirFS(filepath.Join(homeA, LedgerDir))); err != nil {
		t.Fatal(err)
	}
	a = startNode(t, homeA)
	connect(t, a, b)
	connect(t, a, c)

	// The history B witnesses: a deal, and more entries after it.
	dealBetween(t, a, b, p.buyer, p.vendor)
	pad(t, a, a.led.Size()+40)
	a.witnessSoon(b.peerID)
	awaitf(t, "B to cosign A's whole ledger", func() bool {
		s := cosignedBy(t, a, b.peerID)
		return s > 0 && s >= a.led.Size()-2 && !onlyLater(a, s)
	})
	forkSize := cosignedBy(t, a, b.peerID)

	// A is stopped, its ledger replaced by the older copy, restarted, and
	// made to record a different deal.
	a.Close()
	if err := os.RemoveAll(filepath.Join(homeA, LedgerDir)); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(homeA, LedgerDir), os.DirFS(saved)); err != nil {
		t.Fatal(err)
	}
	a = startNodeWith(t, homeA, func(cfg *Config) { cfg.AllowRollback = true })
	t.Cleanup(func() { a.Close() })
	connect(t, a, b)
	connect(t, a, c)
	since := time.Now()
	dealBetween(t, a, b, p.buyer, p.vendor)
	awaitf(t, "A's round after the second deal", func() bool { return roundIdle(a, b.peerID, since) })
	if a.led.Size() >= forkSize {
		t.Fatalf("the fork reached %d entries before padding, B cosigned %d", a.led.Size(), forkSize)
	}
	if b.equivocated(a.peerID) {
		t.Fatal("B holds a proof before A signed a second root")
	}

	// C finds A's agent by discovery (it is in the registry).
	awaitf(t, "C to discover A's agent", func() bool { return discovers(ctx, c, p.buyer) })

	events, stop := c.Subscribe(rc.AgentID)
	defer stop()

	// A signs its own checkpoint for the size B cosigned: a second root.
	pad(t, a, forkSize)
	a.witnessSoon(b.peerID)
	awaitf(t, "B to hold the proof", func() bool { return b.equivocated(a.peerID) })
	if s := cosignedBy(t, a, b.peerID); s != forkSize {
		t.Fatalf("A's latest cosignature by B is of size %d, want %d (B refused)", s, forkSize)
	}
	// The proof is held before the refusal is counted (the handler
	// records it, then answers): wait for the count.
	awaitf(t, "B to count the refusal", func() bool {
		return metric(t, b, "asp_witness_requests_total", "code", protocol.CodeEquivocation) >= 1
	})

	// The proof reaches C by gossip.
	awaitf(t, "C to hold the proof", func() bool { return c.equivocated(a.peerID) })
	ents, err := c.led.ByKind(ledger.KindEquivocation, 0, 10)
	if err != nil || len(ents) != 1 {
		t.Fatalf("C recorded %d proofs (%v)", len(ents), err)
	}
	proof, err := witness.DecodeEquivocation(ents[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	if origin, err := witness.VerifyEquivocation(proof, nil); err != nil || origin != ledger.OriginFor(a.peerID) {
		t.Fatalf("C's proof: %q %v", origin, err)
	}
	for _, n := range []*Node{b, c} {
		tr, err := n.Trust(ctx, p.buyer)
		if err != nil || tr.Score != 0 {
			t.Fatalf("A's agent's trust at %s: %+v %v", n.cfg.Org, tr, err)
		}
	}
	// C's agents are told.
	timeout := time.After(20 * time.Second)
	for told := false; !told; {
		select {
		case ev := <-events:
			if ev.Type == "equivocation" {
				if d, _ := ev.Data.(map[string]any); d["org"] != a.peerID {
					t.Fatalf("equivocation event %+v", ev)
				}
				told = true
			}
		case <-timeout:
			t.Fatal("no equivocation event at C")
		}
	}
	// Counted once accepted, just after the event: wait for the count.
	awaitf(t, "C to count the proof", func() bool {
		return metric(t, c, "asp_equivocation_proofs_total", "outcome", "accepted") >= 1
	})
	if n := metric(t, c, "asp_equivocation_proofs_total", "outcome", "accepted"); n != 1 {
		t.Fatalf("C accepted %v proofs", n)
	}
	// C no longer offers A's agent in discovery.
	if discovers(ctx, c, p.buyer) {
		t.Fatal("C still discovers A's agent")
	}
	// C's agents open no session with A's.
	if _, err := c.OpenSession(ctx, rc.AgentID, api.OpenSessionRequest{To: p.buyer}); codeOf(err) != protocol.CodeEquivocation {
		t.Fatalf("C's invitation to A: %v, want %s", err, protocol.CodeEquivocation)
	}
	// C refuses A's invitations.
	_, err = a.OpenSession(ctx, p.buyer, api.OpenSessionRequest{To: rc.AgentID})
	var d *Declined
	if !errors.As(err, &d) || d.Code != protocol.CodeEquivocation {
		t.Fatalf("A's invitation to C: %v, want declined with %s", err, protocol.CodeEquivocation)
	}
}

// onlyLater reports whether n's ledger holds entries after size other than
// anchors (a round is still due).
func onlyLater(n *Node, size uint64) bool {
	return size < n.led.Size() && !n.onlyAnchorsSince(size, n.led.Size())
}

// discovers reports whether n's discovery of agent's capability finds it.
func discovers(ctx context.Context, n *Node, agent string) bool {
	res, err := n.Discover(ctx, api.DiscoverQuery{Capability: "procurement", Limit: 100})
	if err != nil {
		return false
	}
	for _, a := range res.Agents {
		if a.AgentID == agent {
			return true
		}
	}
	return false
}
