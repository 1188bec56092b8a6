package node

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
	"github.com/aspnode/asp/registry"
)

// certValidity is how long an agent certificate is valid.
const certValidity = 365 * 24 * time.Hour

// agentStore holds the agents this node hosts: in memory by agent id and by
// token hash, their keys and tokens in the secret store.
type agentStore struct {
	change  sync.Mutex // serialises adding and removing agents
	mu      sync.RWMutex
	byID    map[string]*localAgent
	byToken map[string]*localAgent // by hex(sha256(token))
	secrets *secretStore
}

func newAgentStore() *agentStore {
	return &agentStore{byID: make(map[string]*localAgent), byToken: make(map[string]*localAgent)}
}

func (s *agentStore) get(id string) *localAgent {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byID[id]
}

func (s *agentStore) withToken(hash []byte) *localAgent {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byToken[hex.EncodeToString(hash)]
}

func (s *agentStore) list() []*localAgent {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*localAgent, 0, len(s.byID))
	for _, a := range s.byID {
		out = append(out, a)
	}
	return out
}

func (s *agentStore) insert(a *localAgent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byID[a.id.String()] = a
	s.byToken[hex.EncodeToString(a.rec.TokenHash)] = a
}

func (s *agentStore) remove(a *localAgent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, a.id.String())
	delete(s.byToken, hex.EncodeToString(a.rec.TokenHash))
}

// localAgent is an agent hosted by this node, held in memory.
type localAgent struct {
	rec  *agentRecord
	id   protocol.AgentID
	key  ed25519.PrivateKey
	cert *protocol.Certificate
	// mandate is what the agent may commit the organisation to (nil:
	// anything), mandate.go.
	mandate atomic.Pointer[api.Mandate]
}

func (n *Node) loadAgents() error {
	recs, err := n.agents.secrets.agents()
	if err != nil {
		return err
	}
	for _, r := range recs {
		a, err := n.hydrate(r)
		if err != nil {
			return err
		}
		n.agents.insert(a)
	}
	return nil
}

func (n *Node) hydrate(r *agentRecord) (*localAgent, error) {
	var c protocol.Certificate
	if err := c.UnmarshalCBOR(r.Certificate); err != nil {
		return nil, fmt.Errorf("agent %s: certificate: %w", r.Name, err)
	}
	a := &localAgent{
		rec:  r,
		id:   protocol.AgentID{Org: n.peerID, Name: r.Name},
		key:  r.key(),
		cert: &c,
	}
	if len(r.Mandate) > 0 {
		var m api.Mandate
		if err := json.Unmarshal(r.Mandate, &m); err != nil {
			return nil, fmt.Errorf("agent %s: mandate: %w", r.Name, err)
		}
		a.mandate.Store(&m)
	}
	return a, nil
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
	a := n.agents.withToken(h)
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
	n.agents.change.Lock()
	defer n.agents.change.Unlock()
	if err := n.agents.secrets.putAgent(rec); err != nil {
		if err == errDuplicate {
			return api.CreateAgentResponse{}, errorf(protocol.CodeDuplicate, "agent %s exists", id)
		}
		return api.CreateAgentResponse{}, err
	}
	ev := ledger.KeyEvent{Op: ledger.KeyAdded, AgentID: id.String(), PublicKey: pub, Certificate: certBytes, Capabilities: rec.Capabilities}
	if _, err := n.record(ctx, "key event", ledger.KeyEventRecord(now, ev)); err != nil {
		_ = n.agents.secrets.deleteAgent(rec)
		return api.CreateAgentResponse{}, fmt.Errorf("record agent key: %w", err)
	}
	a := &localAgent{rec: rec, id: id, key: priv, cert: cert}
	n.agents.insert(a)
	n.onAgentAdded(a)
	n.log.Info("agent added", "agent", id.String(), "capabilities", req.Capabilities)
	return api.CreateAgentResponse{AgentID: id.String(), Token: token}, nil
}

// ListAgents implements api.Backend.
func (n *Node) ListAgents(ctx context.Context) ([]api.AgentInfo, error) {
	list := n.agents.list()
	out := make([]api.AgentInfo, 0, len(list))
	for _, a := range list {
		out = append(out, agentInfo(a))
	}
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
	n.agents.change.Lock()
	defer n.agents.change.Unlock()
	a := n.agents.get(agentID)
	if a == nil {
		return notFound("agent", agentID)
	}
	ev := ledger.KeyEvent{Op: ledger.KeyRemoved, AgentID: agentID}
	if _, err := n.record(ctx, "key event", ledger.KeyEventRecord(n.now(), ev)); err != nil {
		return err
	}
	if err := n.agents.secrets.deleteAgent(a.rec); err != nil {
		return err
	}
	n.agents.remove(a)
	n.bus.closeAgent(agentID)
	n.onAgentRemoved(a)
	n.log.Info("agent removed", "agent", agentID)
	return nil
}

func (n *Node) localAgent(id string) *localAgent { return n.agents.get(id) }
