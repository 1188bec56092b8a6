package node

import (
	"fmt"

	"github.com/aspnode/asp/protocol"
)

// Bounds on the sessions other organisations open with this node.
//
// Anyone who can reach the node can invite its agents, and each invitation
// costs the node a session in memory and entries in its ledger. So the
// sessions other organisations opened are counted while they are open (not
// CLOSED or FAILED, not ended by reconciliation):
//
//   - at most Config.MaxInboundSessionsPerOrg from one organisation: a peer
//     that floods invitations fills its own allowance only;
//   - at most Config.MaxInboundSessions from all of them together, beyond
//     which only organisations with live business (hasBusiness) may open
//     more: many identities together cannot lock out a partner.
//
// An invitation beyond a bound is refused on the wire with
// capacity_unavailable before anything is recorded or kept; the inviting
// node reports it to its agent as retryable. A session counts from its
// invitation to its end: an unanswered invitation fails after the invite
// timeout and an open offer lapses at its validUntil (tick), but a session
// left INTRODUCED, CONVERSING or EXECUTING stays open, and counts, until a
// party closes it.

// sessionOpen reports whether s has not ended, from its published view: a
// session not yet holding its invitation is open.
func sessionOpen(s *session) bool {
	v := s.view.Load()
	return v == nil || (v.ended == "" && !v.state.Terminal())
}

// admitInbound inserts s, a session the remote organisation opens with its
// invitation, and counts it; it returns the session already held under s's
// id instead if there is one. An invitation beyond a bound is refused with
// protocol.ErrCapacityUnavailable and s is not kept.
func (n *Node) admitInbound(s *session) (*session, error) {
	org := s.remote.Org
	n.sessMu.Lock()
	defer n.sessMu.Unlock()
	if old := n.sessions[s.id]; old != nil {
		return old, nil
	}
	if n.pruneInboundLocked(org) >= n.cfg.MaxInboundSessionsPerOrg {
		n.m.sessionsRefused.WithLabelValues("org").Inc()
		return nil, fmt.Errorf("%w: %d sessions opened by %s are open here, the most this node keeps per organisation; close one or retry later",
			protocol.ErrCapacityUnavailable, n.cfg.MaxInboundSessionsPerOrg, org)
	}
	if n.inboundN >= n.cfg.MaxInboundSessions {
		// Drop what has ended since it was counted, then look again. This
		// scans every inbound session, but only at the bound.
		for o := range n.inbound {
			n.pruneInboundLocked(o)
		}
		if n.inboundN >= n.cfg.MaxInboundSessions && !n.hasBusinessLocked(org) {
			n.m.sessionsRefused.WithLabelValues("node").Inc()
			return nil, fmt.Errorf("%w: %d sessions opened by other organisations are open here, the most this node keeps; retry later",
				protocol.ErrCapacityUnavailable, n.cfg.MaxInboundSessions)
		}
	}
	n.sessions[s.id] = s
	n.trackInboundLocked(s)
	return s, nil
}

// trackInboundLocked counts s if the counterparty opened it and it is open.
// REQUIRES: n.sessMu held for writing.
func (n *Node) trackInboundLocked(s *session) {
	if s.initiator || !sessionOpen(s) {
		return
	}
	if n.inbound == nil {
		n.inbound = make(map[string]map[*session]struct{})
	}
	set := n.inbound[s.remote.Org]
	if set == nil {
		set = make(map[*session]struct{})
		n.inbound[s.remote.Org] = set
	}
	if _, ok := set[s]; !ok {
		set[s] = struct{}{}
		n.inboundN++
	}
}

// pruneInboundLocked forgets org's sessions that have ended or were dropped
// (an invitation refused), and returns how many remain open.
// REQUIRES: n.sessMu held for writing.
func (n *Node) pruneInboundLocked(org string) int {
	set := n.inbound[org]
	for s := range set {
		if n.sessions[s.id] != s || !sessionOpen(s) {
			delete(set, s)
			n.inboundN--
		}
	}
	if len(set) == 0 {
		delete(n.inbound, org)
	}
	return len(set)
}
