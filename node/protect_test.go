package node

import (
	"testing"

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
