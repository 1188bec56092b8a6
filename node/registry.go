package node

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"time"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
	"github.com/aspnode/asp/registry"
)

// wiring connects the node to the network beyond sessions:
// the registry (cards and discovery on the DHT) and trust (attestations
// gossiped, scores).
type wiring struct {
	reg      *registry.Registry
	validate *registry.Validator
	trust    *trustState
}

// registryValidator is built before the host so the DHT checks card records
// with it.
func (n *Node) registryValidator() *registry.Validator {
	m, err := registry.NewMetrics(n.reg)
	if err != nil {
		m = nil
	}
	n.ext.validate = registry.NewValidator(m, n.opts.clock)
	return n.ext.validate
}

func (n *Node) startExtensions() error {
	if err := n.startTrust(); err != nil {
		return err
	}
	r, err := registry.New(registry.Config{
		Host:      n.host.Host(),
		Wire:      n.host,
		Routing:   n.host.DHT(),
		Key:       n.orgKey,
		Validator: n.ext.validate,
		Trust:     n.trustView,
		Clock:     n.opts.clock,
		Logger:    n.log,
	})
	if err != nil {
		return err
	}
	n.ext.reg = r
	for _, a := range n.agents.list() {
		n.publishCard(a)
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := r.Run(n.ctx); err != nil && !errors.Is(err, context.Canceled) {
			n.log.Warn("registry", "err", err)
		}
	}()
	return nil
}

func (n *Node) stopExtensions() {
	if n.ext.reg != nil {
		n.ext.reg.Close()
	}
	n.stopTrust()
}

func (n *Node) publishCard(a *localAgent) {
	if n.ext.reg == nil {
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	defer cancel()
	_, err := n.ext.reg.Publish(ctx, registry.Agent{
		Name:         a.rec.Name,
		Description:  a.rec.Description,
		Capabilities: a.rec.Capabilities,
		PublicKey:    a.key.Public().(ed25519.PublicKey),
		Certificate:  a.cert,
	})
	if err != nil && !errors.Is(err, registry.ErrNotAnnounced) {
		n.log.Warn("publish card", "agent", a.id.String(), "err", err)
	}
}

func (n *Node) onAgentAdded(a *localAgent) { n.publishCard(a) }

func (n *Node) onAgentRemoved(a *localAgent) {
	if n.ext.reg == nil {
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	defer cancel()
	if err := n.ext.reg.Withdraw(ctx, a.id.String()); err != nil && !errors.Is(err, registry.ErrNotAnnounced) {
		n.log.Warn("withdraw card", "agent", a.id.String(), "err", err)
	}
}

// AgentCard implements api.Backend: the signed card of a local agent, or of
// a remote one fetched from its organisation (or the DHT). With format
// "a2a" in the context the A2A document is returned instead.
func (n *Node) AgentCard(ctx context.Context, agentID string) (json.RawMessage, error) {
	if _, err := protocol.ParseAgentID(agentID); err != nil {
		return nil, badRequest("agent id: %v", err)
	}
	if n.ext.reg == nil {
		return nil, notFound("agent", agentID) // no registry (the node harness)
	}
	if c, ok := n.ext.reg.Card(agentID); ok {
		return json.Marshal(c)
	}
	c, err := n.ext.reg.Lookup(ctx, agentID)
	if err != nil {
		if errors.Is(err, registry.ErrNotFound) {
			return nil, notFound("agent", agentID)
		}
		return nil, err
	}
	return json.Marshal(c)
}

// Discover implements api.Backend.
func (n *Node) Discover(ctx context.Context, q api.DiscoverQuery) (api.DiscoverResult, error) {
	if n.ext.reg == nil {
		// No registry (the node harness): nothing to search.
		return api.DiscoverResult{Agents: []api.DiscoveredAgent{}, Partial: true}, nil
	}
	res, err := n.ext.reg.Discover(ctx, q.Capability, q.MinTrust, q.Limit)
	if err != nil {
		if errors.Is(err, registry.ErrBadCapability) {
			return api.DiscoverResult{}, badRequest("%v", err)
		}
		return api.DiscoverResult{}, err
	}
	out := api.DiscoverResult{Agents: []api.DiscoveredAgent{}, Partial: res.Partial}
	for _, m := range res.Agents {
		if n.equivocated(m.Card.Org) {
			continue // proven to equivocate: never offered again
		}
		out.Agents = append(out.Agents, api.DiscoveredAgent{
			AgentID:      m.Card.AgentID,
			Org:          m.Card.Org,
			Capabilities: m.Card.Capabilities,
			Trust:        api.TrustSummary{Score: m.Trust.Score, Level: m.Trust.Level, Completed: m.Trust.Completed},
		})
	}
	return out, nil
}
