package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const (
	adminToken  = "admin-token"
	buyerToken  = "buyer-token"
	vendorToken = "vendor-token"
	eveToken    = "eve-token"

	peer   = "12D3KooWFake"
	buyer  = "agent://12D3KooWFake/buyer"
	vendor = "agent://12D3KooWOther/vendor"
	eve    = "agent://12D3KooWFake/eve"
)

// codedErr is an error carrying an ASP code, as protocol errors do.
type codedErr struct{ code, msg string }

func (e codedErr) Error() string   { return e.msg }
func (e codedErr) ASPCode() string { return e.code }

// fake is an in-memory Backend.
type fake struct {
	reg *prometheus.Registry

	mu       sync.Mutex
	policy   DisputePolicy
	tokens   map[string]Principal
	agents   map[string]AgentInfo
	sessions map[string]*SessionInfo
	subs     map[string]chan Event
	lastFrom string
	lastAct  []string
	lastBody json.RawMessage
	discover DiscoverQuery
	nextID   int
	mandates map[string]Mandate
	consent  Consent

	subscribed chan string // agent id, on Subscribe
	cancelled  chan string // agent id, on cancel
}

var _ Backend = (*fake)(nil)
var _ SessionLister = (*fake)(nil)
var _ InvitationResponder = (*fake)(nil)

func newFake() *fake {
	return &fake{
		reg: prometheus.NewRegistry(),
		tokens: map[string]Principal{
			adminToken:  {Admin: true},
			buyerToken:  {Agent: buyer},
			vendorToken: {Agent: vendor},
			eveToken:    {Agent: eve},
		},
		agents: map[string]AgentInfo{
			buyer: {AgentID: buyer, Name: "buyer", Capabilities: []string{"buy"}},
			eve:   {AgentID: eve, Name: "eve", Capabilities: []string{}},
		},
		sessions:   map[string]*SessionInfo{},
		subs:       map[string]chan Event{},
		subscribed: make(chan string, 16),
		cancelled:  make(chan string, 16),
	}
}

func (f *fake) Authenticate(token string) (Principal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.tokens[token]
	if !ok {
		return Principal{}, errors.New("unknown token")
	}
	return p, nil
}

func (f *fake) NodeInfo(ctx context.Context) (NodeInfo, error) {
	return NodeInfo{PeerID: peer, Org: "acme", Addrs: []string{"/ip4/127.0.0.1/tcp/4001"}, Version: "test"}, nil
}

func (f *fake) CreateAgent(ctx context.Context, req CreateAgentRequest) (CreateAgentResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := "agent://" + peer + "/" + req.Name
	if _, ok := f.agents[id]; ok {
		return CreateAgentResponse{}, Conflict(CodeDuplicate, "agent %s exists", id)
	}
	f.agents[id] = AgentInfo{AgentID: id, Name: req.Name, Capabilities: req.Capabilities}
	tok := "tok-" + req.Name
	f.tokens[tok] = Principal{Agent: id}
	return CreateAgentResponse{AgentID: id, Token: tok}, nil
}

func (f *fake) ListAgents(ctx context.Context) ([]AgentInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var as []AgentInfo
	for _, a := range f.agents {
		as = append(as, a)
	}
	return as, nil
}

func (f *fake) DeleteAgent(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.agents[id]; !ok {
		return NotFound("no agent %s", id)
	}
	delete(f.agents, id)
	if ch, ok := f.subs[id]; ok {
		close(ch)
		delete(f.subs, id)
	}
	return nil
}

func (f *fake) AgentCard(ctx context.Context, id string) (json.RawMessage, error) {
	if id != buyer && id != vendor {
		return nil, NotFound("no card for %s", id)
	}
	return json.RawMessage(fmt.Sprintf(`{"agentId":%q,"signature":"c2ln"}`, id)), nil
}

func (f *fake) Discover(ctx context.Context, q DiscoverQuery) (DiscoverResult, error) {
	f.mu.Lock()
	f.discover = q
	f.mu.Unlock()
	if q.Capability == "slow" {
		ctx, cancel := context.WithTimeout(ctx, time.Millisecond)
		defer cancel()
		<-ctx.Done()
		return DiscoverResult{}, fmt.Errorf("lookup: %w", ctx.Err())
	}
	if q.Capability == "none" {
		return DiscoverResult{}, nil
	}
	return DiscoverResult{Agents: []DiscoveredAgent{{AgentID: vendor, Org: "12D3KooWOther", Capabilities: []string{q.Capability},
		Trust: TrustSummary{Score: 80, Level: "good", Completed: 3}}}}, nil
}

func (f *fake) OpenSession(ctx context.Context, from string, req OpenSessionRequest) (SessionInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	s := &SessionInfo{SessionID: fmt.Sprintf("ses_%d", f.nextID), State: "OPEN", Participants: []string{from, req.To}, Messages: []json.RawMessage{}}
	f.sessions[s.SessionID] = s
	f.lastFrom = from
	return *s, nil
}

func (f *fake) party(agent, sid string) (*SessionInfo, bool) {
	s, ok := f.sessions[sid]
	if !ok {
		return nil, false
	}
	for _, p := range s.Participants {
		if p == agent {
			return s, true
		}
	}
	return s, false
}

func (f *fake) SendMessage(ctx context.Context, from, sid string, req SendMessageRequest) (SendMessageResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, party := f.party(from, sid)
	if s == nil {
		return SendMessageResult{}, NotFound("no session %s", sid)
	}
	if !party {
		return SendMessageResult{}, Forbidden("not a party to session %s", sid)
	}
	f.lastFrom = from
	switch req.Performative {
	case "BAD":
		return SendMessageResult{}, fmt.Errorf("step: %w", codedErr{CodeInvalidTransition, "ACCEPT without an offer"})
	case "POOR":
		return SendMessageResult{}, codedErr{CodeInsufficientTrustScore, "trust 12 below 50"}
	case "SLOW":
		return SendMessageResult{}, codedErr{CodeTimeout, "counterparty did not answer"}
	case "WEIRD":
		return SendMessageResult{}, codedErr{"some_new_code", "secret detail"}
	case "BOOM":
		return SendMessageResult{}, errors.New("disk on fire: /secret/path")
	case "PANIC":
		panic("boom")
	}
	env, _ := json.Marshal(map[string]any{"performative": req.Performative, "sender": from, "terms": req.Terms})
	s.Messages = append(s.Messages, env)
	return SendMessageResult{MessageID: "msg_1", SequenceNumber: uint64(len(s.Messages)), Hash: "ab", State: "NEGOTIATING"}, nil
}

func (f *fake) Session(ctx context.Context, p Principal, sid string) (SessionInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, party := f.party(p.Agent, sid)
	if s == nil || (!party && !p.Admin) {
		return SessionInfo{}, NotFound("no session %s", sid)
	}
	return *s, nil
}

func (f *fake) Sessions(ctx context.Context, p Principal) ([]SessionInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []SessionInfo
	for id := range f.sessions {
		if s, party := f.party(p.Agent, id); party || p.Admin {
			out = append(out, *s)
		}
	}
	return out, nil
}

func (f *fake) RespondInvitation(ctx context.Context, agent, sid string, accept bool) (SessionInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, party := f.party(agent, sid)
	if s == nil || !party {
		return SessionInfo{}, NotFound("no invitation %s", sid)
	}
	if accept {
		s.State = "OPEN"
	} else {
		s.State = "DECLINED"
	}
	return *s, nil
}

func (f *fake) Commitments(ctx context.Context, p Principal) ([]CommitmentInfo, error) {
	if p.Admin {
		return []CommitmentInfo{{CommitmentID: "cmt_1"}, {CommitmentID: "cmt_2"}}, nil
	}
	if p.Agent == buyer {
		return []CommitmentInfo{{CommitmentID: "cmt_1"}}, nil
	}
	return nil, nil
}

func (f *fake) Commitment(ctx context.Context, p Principal, id string) (CommitmentInfo, error) {
	if id != "cmt_1" || (!p.Admin && p.Agent != buyer && p.Agent != vendor) {
		return CommitmentInfo{}, NotFound("no commitment %s", id)
	}
	return CommitmentInfo{CommitmentID: id, State: "ACTIVE", Terms: json.RawMessage(`{"unitPrice":"2.55"}`), Parties: []string{buyer, vendor}}, nil
}

func (f *fake) CommitmentAction(ctx context.Context, agent, id, action string, body json.RawMessage) (CommitmentInfo, error) {
	f.mu.Lock()
	f.lastAct = []string{agent, id, action}
	f.lastBody = body
	f.mu.Unlock()
	if id != "cmt_1" || (agent != buyer && agent != vendor) {
		return CommitmentInfo{}, NotFound("no commitment %s", id)
	}
	return CommitmentInfo{CommitmentID: id, State: "FULFILLMENT_CLAIMED"}, nil
}

func (f *fake) Trust(ctx context.Context, id string) (TrustInfo, error) {
	return TrustInfo{AgentID: id, Score: 50, Level: "new", Components: map[string]float64{"volume": 0}}, nil
}

func (f *fake) Checkpoint(ctx context.Context) ([]byte, error) {
	return []byte("asp.example/ledger\n3\nq1Tz0w==\n\n— asp.example/ledger sig\n"), nil
}

func (f *fake) Entries(ctx context.Context, from, limit uint64) (EntriesPage, error) {
	var es []EntryInfo
	for i := from; i < from+limit && i < 5; i++ {
		es = append(es, EntryInfo{Index: i, Kind: "agent", Hash: "00"})
	}
	return EntriesPage{Size: 5, Entries: es}, nil
}

func (f *fake) Subscribe(agent string) (<-chan Event, func()) {
	ch := make(chan Event, 16)
	f.mu.Lock()
	f.subs[agent] = ch
	f.mu.Unlock()
	f.subscribed <- agent
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			f.mu.Lock()
			if f.subs[agent] == ch {
				delete(f.subs, agent)
			}
			f.mu.Unlock()
			f.cancelled <- agent
		})
	}
}

// publish sends ev to agent's subscription, if any.
func (f *fake) publish(agent string, ev Event) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch, ok := f.subs[agent]
	if ok {
		ch <- ev
	}
	return ok
}

func (f *fake) Metrics() http.Handler {
	return promhttp.HandlerFor(f.reg, promhttp.HandlerOpts{})
}

// onlyBackend hides the optional extensions of a Backend.
type onlyBackend struct{ Backend }

func (f *fake) Mandate(ctx context.Context, agentID string) (Mandate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.agents[agentID]; !ok {
		return Mandate{}, NotFound("agent %s not found", agentID)
	}
	return f.mandates[agentID], nil
}

func (f *fake) SetMandate(ctx context.Context, agentID string, m Mandate) (Mandate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.agents[agentID]; !ok {
		return Mandate{}, NotFound("agent %s not found", agentID)
	}
	if f.mandates == nil {
		f.mandates = map[string]Mandate{}
	}
	f.mandates[agentID] = m
	return m, nil
}

func (f *fake) Consent(ctx context.Context) (Consent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.consent, nil
}

func (f *fake) SetConsent(ctx context.Context, c Consent) (Consent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.consent = c
	return c, nil
}

func (f *fake) RevokeOrg(ctx context.Context, org string) (Consent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.consent.Deny = append(f.consent.Deny, org)
	return f.consent, nil
}

func (f *fake) RecordAuditEvent(ctx context.Context, agent string, req AuditEventRequest) (AuditEventResult, error) {
	if req.Type == "" {
		return AuditEventResult{}, BadRequest("type is required")
	}
	return AuditEventResult{Index: 7, Hash: "00"}, nil
}

// Backup implements Backuper.
func (f *fake) Backup(ctx context.Context) (BackupResult, error) {
	return BackupResult{Dir: "/home/backups/backup-1", PeerID: "12D3KooWfake", Time: time.Unix(0, 0).UTC()}, nil
}
