package node

import (
	"context"
	"encoding/json"

	"github.com/aspnode/asp/node/api"
)

// extensions are the node's optional parts: the registry (cards and
// discovery on the DHT) and the trust model.
type extensions struct{}

func (n *Node) startExtensions() error { return nil }
func (n *Node) stopExtensions()        {}

func (n *Node) onAgentAdded(a *localAgent)   {}
func (n *Node) onAgentRemoved(a *localAgent) {}

// AgentCard implements api.Backend.
func (n *Node) AgentCard(ctx context.Context, agentID string) (json.RawMessage, error) {
	a := n.localAgent(agentID)
	if a == nil {
		return nil, notFound("agent", agentID)
	}
	return json.Marshal(map[string]any{
		"agentId": a.id.String(), "org": n.peerID, "name": a.rec.Name, "description": a.rec.Description,
		"capabilities": a.rec.Capabilities, "protocols": []string{"asp/1.0"}, "certificate": a.cert,
	})
}

// Discover implements api.Backend.
func (n *Node) Discover(ctx context.Context, q api.DiscoverQuery) (api.DiscoverResult, error) {
	return api.DiscoverResult{}, unsupported("discovery")
}

// Trust implements api.Backend.
func (n *Node) Trust(ctx context.Context, agentID string) (api.TrustInfo, error) {
	return api.TrustInfo{AgentID: agentID, Level: "L0", Components: map[string]float64{}}, nil
}

func (n *Node) onCommitmentSettled(c *commitment) {}
