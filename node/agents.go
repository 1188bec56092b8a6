package node

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
	"github.com/aspnode/asp/registry"
)

// certValidity is how long an agent certificate is valid.
const certValidity = 365 * 24 * time.Hour

// localAgent is an agent hosted by this node, held in memory.
type localAgent struct {
	rec  *agentRecord
	id   protocol.AgentID
	key  ed25519.PrivateKey
	cert *protocol.Certificate
}

func (n *Node) loadAgents() error {
	recs, err := n.st.agents()
	if err != nil {
		return err
	}
	for _, r := range recs {
		a, err := n.hydrate(r)
		if err != nil {
			return err
		}
		n.agents[a.id.String()] = a
		n.tokens[hex.EncodeToString(r.TokenHash)] = a
	}
	return nil
}

func (n *Node) hydrate(r *agentRecord) (*localAgent, error) {
	var c protocol.Certificate
	if err := c.UnmarshalCBOR(r.Certificate); err != nil {
		return nil, fmt.Errorf("agent %s: certificate: %w", r.Name, err)
	}
	return &localAgent{
		rec:  r,
		id:   protocol.AgentID{Org: n.peerID, Name: r.Name},
		key:  r.key(),
		cert: &c,
	}, nil
}

// Authenticate implements api.Backend.
func (n *Node) Authenticate(token string) (api.Principal, error) {
	if token == "" {
		return api.Principal{}, errorf(protocol.CodeUnauthorized, "missing token")
	}
	h := tokenHash(token)
	if tokenMatches(h, n.adminHash) {
		return api.Principal{Admin: true}, nil
	}
	n.mu.RLock()
	a := n.tokens[hex.EncodeToString(h)]
	n.mu.RUnlock()
	if a == nil {
		return api.Principal{}, errorf(protocol.CodeUnauthorized, "unknown token")
	}
	return api.Principal{Agent: a.id.String()}, nil
}

// CreateAgent implements api.Backend.
func (n *Node) CreateAgent(ctx context.Context, req api.CreateAgentRequest) (api.CreateAgentResponse, error) {
	id := protocol.AgentID{Org: n.peerID, Name: req.Name}
	if err := id.Validate(); err != nil {
		return api.CreateAgentResponse{}, badRequest("agent name %q: letters, digits, '.', '_' or '-', at most 64", req.Name)
	}
	// Certificates and cards carry capabilities in one normal form.
	caps, err := registry.NormalizeCapabilities(req.Capabilities)
	if err != nil {
		return api.CreateAgentResponse{}, badRequest("%v", err)
	}
	req.Capabilities = caps
	pub, priv, err := ed25519.GenerateKey(n.opts.rand)
	if err != nil {
		return api.CreateAgentResponse{}, err
	}
	now := n.now()
	cert, err := protocol.IssueCertificate(n.orgKey, id, pub, req.Capabilities, now.Add(certValidity))
	if err != nil {
		return api.CreateAgentResponse{}, err
	}
	// A card over the limit is refused by every peer: such an agent could
	// never be discovered, so it is not created.
	if err := registry.CheckAgent(n.peerID, registry.Agent{Name: req.Name, Description: req.Description,
		Capabilities: req.Capabilities, PublicKey: pub, Certificate: cert}); err != nil {
		return api.CreateAgentResponse{}, &Error{Code: protocol.CodeBadRequest, Message: err.Error(), Err: err}
	}
	certBytes, err := cert.MarshalCBOR()
	if err != nil {
		return api.CreateAgentResponse{}, err
	}
	tok := make([]byte, 32)
	if _, err := io.ReadFull(n.opts.rand, tok); err != nil {
		return api.CreateAgentResponse{}, err
	}
	token := hex.EncodeToString(tok)
	rec := &agentRecord{
		Name:         req.Name,
		Capabilities: append([]string{}, req.Capabilities...),
		Description:  req.Description,
		Seed:         priv.Seed(),
		Certificate:  certBytes,
		TokenHash:    tokenHash(token),
		Created:      now,
	}
	n.agentMu.Lock()
	defer n.agentMu.Unlock()
	if err := n.st.putAgent(rec); err != nil {
		if err == errDuplicate {
			return api.CreateAgentResponse{}, errorf(protocol.CodeDuplicate, "agent %s exists", id)
		}
		return api.CreateAgentResponse{}, err
	}
	ev := ledger.KeyEvent{Op: ledger.KeyAdded, AgentID: id.String(), PublicKey: pub, Certificate: certBytes, Capabilities: rec.Capabilities}
	if _, err := n.record(ctx, "key event", ledger.KeyEventRecord(now, ev)); err != nil {
		_ = n.st.deleteAgent(rec)
		return api.CreateAgentResponse{}, fmt.Errorf("record agent key: %w", err)
	}
	a := &localAgent{rec: rec, id: id, key: priv, cert: cert}
	n.mu.Lock()
	n.agents[id.String()] = a
	n.tokens[hex.EncodeToString(rec.TokenHash)] = a
	n.mu.Unlock()
	n.onAgentAdded(a)
	n.log.Info("agent added", "agent", id.String(), "capabilities", req.Capabilities)
	return api.CreateAgentResponse{AgentID: id.String(), Token: token}, nil
}

// ListAgents implements api.Backend.
func (n *Node) ListAgents(ctx context.Context) ([]api.AgentInfo, error) {
	n.mu.RLock()
	out := make([]api.AgentInfo, 0, len(n.agents))
	for _, a := range n.agents {
		out = append(out, agentInfo(a))
	}
	n.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].AgentID < out[j].AgentID })
	return out, nil
}

func agentInfo(a *localAgent) api.AgentInfo {
	return api.AgentInfo{
		AgentID:      a.id.String(),
		Name:         a.rec.Name,
		Capabilities: append([]string{}, a.rec.Capabilities...),
		Description:  a.rec.Description,
		PublicKey:    base64.StdEncoding.EncodeToString(a.key.Public().(ed25519.PublicKey)),
		CreatedAt:    a.rec.Created,
	}
}

// DeleteAgent implements api.Backend.
func (n *Node) DeleteAgent(ctx context.Context, agentID string) error {
	n.agentMu.Lock()
	defer n.agentMu.Unlock()
	n.mu.RLock()
	a := n.agents[agentID]
	n.mu.RUnlock()
	if a == nil {
		return notFound("agent", agentID)
	}
	ev := ledger.KeyEvent{Op: ledger.KeyRemoved, AgentID: agentID}
	if _, err := n.record(ctx, "key event", ledger.KeyEventRecord(n.now(), ev)); err != nil {
		return err
	}
	if err := n.st.deleteAgent(a.rec); err != nil {
		return err
	}
	n.mu.Lock()
	delete(n.agents, agentID)
	delete(n.tokens, hex.EncodeToString(a.rec.TokenHash))
	n.mu.Unlock()
	n.bus.closeAgent(agentID)
	n.onAgentRemoved(a)
	n.log.Info("agent removed", "agent", agentID)
	return nil
}

func (n *Node) localAgent(id string) *localAgent {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.agents[id]
}
