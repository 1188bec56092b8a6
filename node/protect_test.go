package node

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/aspnode/asp/node/api"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestProtectedPeers: the p2p layer keeps room for the streams of peers with
// live business (a commitment, or a session our agent opened), not for a
// peer that merely opened a session with us.
func TestProtectedPeers(t *testing.T) {
	p := newPair(t)
	buyer, vendor := p.buyerNode.host.ID(), p.vendorNode.host.ID()
	stranger := newHostilePeer(t, "stranger", p.vendorNode)
	protected, recovered := p.vendorNode.protection()

	stranger.invite(t, p.vendorNode, p.vendor)
	if p.vendorNode.hasBusiness(stranger.h.ID()) {
		t.Fatal("a peer that opened a session is protected")
	}
	id := seedDeal(t, p)
	awaitActive(t, p.vendorNode, id)
	awaitActive(t, p.buyerNode, id)
	for _, c := range []struct {
		n    *Node
		peer peer.ID
	}{{p.vendorNode, buyer}, {p.buyerNode, vendor}} {
		if !c.n.hasBusiness(c.peer) {
			t.Fatalf("%s: counterparty %s not protected", c.n.peerID, c.peer)
		}
	}
	if protected(buyer) {
		t.Fatal("protected before recovery")
	}
	recovered()
	if !protected(buyer) || protected(stranger.h.ID()) {
		t.Fatal("protection after recovery")
	}
}

// TestProtectionEnds: protection lasts while business is live. A peer whose
// only commitment is settled, and whose sessions with us are closed, is no
// longer protected.
func TestProtectionEnds(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	buyer, vendor := p.buyerNode.host.ID(), p.vendorNode.host.ID()
	id := seedDeal(t, p)
	awaitActive(t, p.vendorNode, id)
	c := awaitActive(t, p.buyerNode, id)
	if _, err := p.vendorNode.CommitmentAction(ctx, p.vendor, id, "fulfill", json.RawMessage(`{"evidence":{"hours":1000}}`)); err != nil {
		t.Fatal(err)
	}
	if !p.vendorNode.hasBusiness(buyer) {
		t.Fatal("a commitment with a claim pending is not live business")
	}
	if _, err := p.buyerNode.CommitmentAction(ctx, p.buyer, id, "confirm", nil); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{p.vendorNode, p.buyerNode} {
		if c, _ := n.Commitment(ctx, api.Principal{Admin: true}, id); c.State != "FULFILLED" {
			t.Fatalf("%s: commitment %s", n.peerID, c.State)
		}
	}
	// The vendor's only business with the buyer was the commitment (the
	// buyer opened the session).
	if p.vendorNode.hasBusiness(buyer) {
		t.Error("a peer whose only commitment is FULFILLED is protected")
	}
	// The buyer's agent opened the session: business until it ends.
	if !p.buyerNode.hasBusiness(vendor) {
		t.Fatal("the counterparty of an open session of ours is not protected")
	}
	if _, err := p.buyerNode.SendMessage(ctx, p.buyer, c.SessionID, api.SendMessageRequest{Performative: "CLOSE", Body: []byte(`{"reason":"done"}`)}); err != nil {
		t.Fatal(err)
	}
	if p.buyerNode.hasBusiness(vendor) {
		t.Error("the counterparty of a closed session and a settled commitment is protected")
	}
}
