package node

import (
	"fmt"
	"time"

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
// invitation until it ends, a commitment is formed in it, or it has seen
// no move for inboundIdle (an hour): an unanswered invitation fails after
// the invite timeout and an open offer lapses at its validUntil (tick), but
// a session left INTRODUCED or CONVERSING stays open until a party closes
// it; it stops counting once idle, so that a partner's forgotten sessions
// never lock it out. Memory for such sessions is then bounded by the rate
// at which the bounds admit new ones.

// sessionOpen reports whether s has not ended, from its published view: a
// session not yet holding its invitation is open.
func sessionOpen(s *session) bool {
	v := s.view.Load()
	return v == nil || (v.ended == "" && !v.state.Terminal())
}

// inboundIdle is how long a session without a deal may go without a move
// before it stops counting toward the bounds on inbound sessions.
const inboundIdle = time.Hour

// inboundCounts reports whether s, a session the counterparty opened,
// counts toward the bounds: it is open, no commitment was formed in it
// (a deal made is business, whatever its number), and its last move is
// less than inboundIdle old at now. A session idle longer, or with a
// deal, stops counting for good: an honest partner's forgotten or
// finished sessions never lock it out.
func inboundCounts(s *session, now time.Time) bool {
	v := s.view.Load()
	if v == nil {
		return true
	}
	if v.ended != "" || v.state.Terminal() || len(v.cs) > 0 {
		return false
	}
	if k := len(v.tr); k > 0 && now.Sub(v.tr[k-1].Timestamp) > inboundIdle {
		return false
	}
	return true
}

// admitInbound inserts s, a session the remote organisation opens with its
// invitation, and counts it; it returns the session already held under s's
// id instead if there is one. An invitation beyond a bound is refused with
// protocol.ErrCapacityUnavailable and s is not kept.
func (n *Node) admitInbound(s *session) (*session, error) {
	org := s.remote.Org
	t := n.sessions
	t.mu.Lock()
	defer t.mu.Unlock()
	if old := t.byID[s.id]; old != nil {
		return old, nil
	}
	now := n.now()
	// Sessions that stopped counting are dropped from the count only when
	// it reaches the bound: the common invitation costs no scan.
	held := len(t.inbound[org])
	if held >= n.cfg.MaxInboundSessionsPerOrg {
		held = t.pruneInboundLocked(org, now)
	}
	if held >= n.cfg.MaxInboundSessionsPerOrg {
		n.m.sessionsRefused.WithLabelValues("org").Inc()
		return nil, fmt.Errorf("%w: %d sessions opened by %s are open here, the most this node keeps per organisation; close one or retry later",
			protocol.ErrCapacityUnavailable, n.cfg.MaxInboundSessionsPerOrg, org)
	}
	if t.inboundN >= n.cfg.MaxInboundSessions {
		// Drop what has ended since it was counted, then look again. This
		// scans every inbound session, but only at the bound.
		for o := range t.inbound {
			t.pruneInboundLocked(o, now)
		}
		if t.inboundN >= n.cfg.MaxInboundSessions && !n.hasBusinessLocked(org) {
			n.m.sessionsRefused.WithLabelValues("node").Inc()
			return nil, fmt.Errorf("%w: %d sessions opened by other organisations are open here, the most this node keeps; retry later",
				protocol.ErrCapacityUnavailable, n.cfg.MaxInboundSessions)
		}
	}
	t.byID[s.id] = s
	t.trackInboundLocked(s, now)
	return s, nil
}

// trackInbound counts s if the counterparty opened it and it is open.
func (n *Node) trackInbound(s *session, now time.Time) {
	n.sessions.mu.Lock()
	defer n.sessions.mu.Unlock()
	n.sessions.trackInboundLocked(s, now)
}

// REQUIRES: t.mu held for writing.
func (t *sessionTable) trackInboundLocked(s *session, now time.Time) {
	if s.initiator || !inboundCounts(s, now) {
		return
	}
	if t.inbound == nil {
		t.inbound = make(map[string]map[*session]struct{})
	}
	set := t.inbound[s.remote.Org]
	if set == nil {
		set = make(map[*session]struct{})
		t.inbound[s.remote.Org] = set
	}
	if _, ok := set[s]; !ok {
		set[s] = struct{}{}
		t.inboundN++
	}
}

// pruneInboundLocked forgets org's sessions that no longer count (ended,
// a deal made, idle) or were dropped (an invitation refused), and returns
// how many still count.
// REQUIRES: t.mu held for writing.
func (t *sessionTable) pruneInboundLocked(org string, now time.Time) int {
	set := t.inbound[org]
	for s := range set {
		if t.byID[s.id] != s || !inboundCounts(s, now) {
			delete(set, s)
			t.inboundN--
		}
	}
	if len(set) == 0 {
		delete(t.inbound, org)
	}
	return len(set)
}
