package node

import (
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/peer"
)

// protection returns the function for p2p.WithProtected, and the call that
// arms it once recover has filled the maps of sessions and commitments
// (until then it vouches for nobody).
func (n *Node) protection() (protected func(peer.ID) bool, recovered func()) {
	var ready atomic.Bool
	return func(p peer.ID) bool { return ready.Load() && n.hasBusiness(p) }, func() { ready.Store(true) }
}

// hasBusiness reports whether the node has live business with the node p:
// a session our agent opened with one of its agents, or a commitment
// between our agents and its. The p2p layer serves such peers' streams
// beyond the budget that all other peers share, and never cools them off
// (p2p.WithProtected). A session the peer opened does not count: anyone
// can open one, so it would let any identity buy protection.
//
// It scans the sessions and commitments in memory, and is asked only for a
// stream beyond the shared budget.
func (n *Node) hasBusiness(p peer.ID) bool {
	org := p.String()
	n.sessMu.RLock()
	defer n.sessMu.RUnlock()
	for _, c := range n.commitments {
		if c.remote.Org == org {
			return true
		}
	}
	for _, s := range n.sessions {
		if s.initiator && s.remote.Org == org {
			return true
		}
	}
	return false
}
