package node

import "github.com/aspnode/asp/registry/trust"

// unanchoredHint explains an unanchored trust answer.
const unanchoredHint = "this node has nothing to anchor trust on: no counterparty has settled a commitment with its agents and config.yaml names no preTrusted organisations, so only its own agents' evidence counts; name organisations you trust in preTrusted, or complete deals"

// knownAgent reports whether the node has heard of an agent: one of its
// own, one whose card it holds (registry), or one the trust model has
// evidence about, or a counterparty of one of its sessions.
func (n *Node) knownAgent(snap *trust.Snapshot, agentID string) bool {
	if n.localAgent(agentID) != nil || snap.Known(agentID) {
		return true
	}
	if n.ext.reg != nil && n.ext.reg.Seen(agentID) {
		return true
	}
	// A counterparty of one of our sessions.
	return len(n.sessions.list(func(s *session) bool { return s.remote.String() == agentID })) > 0
}
