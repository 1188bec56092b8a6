package node

import (
	"sync/atomic"

	"github.com/aspnode/asp/protocol"
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
// a session our agent opened with one of its agents that has not ended, or
// a commitment between our agents and its that is not settled
// (settledState). The p2p layer serves such peers' streams beyond the
// budget that all other peers share, and never cools them off
// (p2p.WithProtected); the bound on open inbound sessions admits their
// invitations beyond the node-wide bound (admitInbound). A session the peer
// opened does not count: anyone can open one, so it would let any identity
// buy protection. Business that is over does not count either: one deal
// settled long ago must not protect a peer for good.
//
// It scans the sessions and commitments in memory (O(sessions +
// commitments) under the read lock, reading only atomics), and is asked
// only for a stream beyond the shared budget, or an invitation beyond the
// node-wide bound.
func (n *Node) hasBusiness(p peer.ID) bool {
	n.sessions.mu.RLock()
	defer n.sessions.mu.RUnlock()
	return n.hasBusinessLocked(p.String())
}

// REQUIRES: n.sessions.mu (read or write).
func (n *Node) hasBusinessLocked(org string) bool {
	if n.commitments.any(func(c *commitment) bool { return c.remote.Org == org && !c.settled.Load() }) {
		return true
	}
	for _, s := range n.sessions.byID {
		if s.initiator && s.remote.Org == org && sessionOpen(s) {
			return true
		}
	}
	return false
}

// settledState reports whether a commitment in state st is settled for
// protection: final, or EXPIRED. An EXPIRED commitment may still be
// disputed or cancelled, but a peer whose deal lapsed is no longer served
// ahead of others for it; a dispute makes it DISPUTED, live again.
func settledState(st protocol.CommitmentState) bool {
	return st.Final() || st == protocol.CommitmentExpired
}
