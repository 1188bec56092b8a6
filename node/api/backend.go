package api

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Principal is who a bearer token speaks for: the node's administrator, or
// exactly one agent hosted by the node.
//
// INVARIANT: Admin and Agent != "" are never both set.
type Principal struct {
	// Admin is true for the node's admin token.
	Admin bool
	// Agent is the agent id ("agent://<peerId>/<name>") of an agent token.
	Agent string
}

// IsAgent reports whether p is an agent token.
func (p Principal) IsAgent() bool { return !p.Admin && p.Agent != "" }

// Backend is what the HTTP API serves. *node.Node implements it.
//
// Every method may return an *Error (sent as is) or an error that
// protocol.ErrorCode maps to an ASP code; anything else is answered with
// 500 "internal" and its text is not shown to the client.
//
// The handler authenticates every request before calling any other method.
// Methods that take an agent id as the actor ("from", "agent") are only
// called with the caller's own agent; methods that take a Principal must
// themselves refuse what that principal may not see (answer NotFound or
// Forbidden for a session or commitment the agent is not a party to).
type Backend interface {
	// Authenticate resolves a bearer token. An unknown token returns an
	// error (the handler answers 401 whatever the error is).
	Authenticate(token string) (Principal, error)

	// NodeInfo describes the node.
	NodeInfo(ctx context.Context) (NodeInfo, error)

	// CreateAgent creates an agent with a fresh key and token (admin only).
	CreateAgent(ctx context.Context, req CreateAgentRequest) (CreateAgentResponse, error)
	// ListAgents lists the node's own agents (admin only).
	ListAgents(ctx context.Context) ([]AgentInfo, error)
	// DeleteAgent removes one of the node's agents and revokes its token
	// (admin only). Its event subscriptions should end.
	DeleteAgent(ctx context.Context, agentID string) error
	// AgentCard returns the signed agent card of any agent, local or remote.
	AgentCard(ctx context.Context, agentID string) (json.RawMessage, error)
	// Discover searches the network for agents.
	Discover(ctx context.Context, q DiscoverQuery) (DiscoverResult, error)

	// OpenSession opens a session from the agent "from" to req.To.
	OpenSession(ctx context.Context, from string, req OpenSessionRequest) (SessionInfo, error)
	// SendMessage signs and sends one message from the agent "from" in a
	// session it is a party to. An illegal move is an invalid_transition.
	SendMessage(ctx context.Context, from, sessionID string, req SendMessageRequest) (SendMessageResult, error)
	// Session returns a session the principal may see.
	Session(ctx context.Context, p Principal, sessionID string) (SessionInfo, error)

	// Commitments lists the commitments the principal may see (an agent:
	// those it is a party to; admin: all of the node's).
	Commitments(ctx context.Context, p Principal) ([]CommitmentInfo, error)
	// Commitment returns one commitment the principal may see.
	Commitment(ctx context.Context, p Principal, commitmentID string) (CommitmentInfo, error)
	// CommitmentAction applies "fulfill", "confirm" or "dispute" by the agent
	// to a commitment it is a party to. body is the request body: a JSON
	// object (FulfillRequest, ConfirmRequest or DisputeRequest), or nil.
	CommitmentAction(ctx context.Context, agent, commitmentID, action string, body json.RawMessage) (CommitmentInfo, error)

	// Trust returns the explained trust score of any agent.
	Trust(ctx context.Context, agentID string) (TrustInfo, error)

	// Checkpoint returns the latest signed checkpoint (C2SP signed note).
	Checkpoint(ctx context.Context) ([]byte, error)
	// Entries returns up to limit ledger entries starting at index from
	// (admin only). The handler caps limit.
	Entries(ctx context.Context, from, limit uint64) (EntriesPage, error)

	// Subscribe streams events for one agent until cancel is called. The
	// backend may close the channel (for example when the agent is deleted);
	// the stream then ends. cancel is safe to call more than once.
	Subscribe(agentID string) (events <-chan Event, cancel func())

	// Metrics serves the Prometheus text format (admin only).
	Metrics() http.Handler
}

// ConsentKeeper is an optional Backend extension serving GET and PUT
// /v1/consent and POST /v1/orgs/{peerId}/revoke: the invitation policy at
// run time.
type ConsentKeeper interface {
	Consent(ctx context.Context) (Consent, error)
	SetConsent(ctx context.Context, c Consent) (Consent, error)
	RevokeOrg(ctx context.Context, org string) (Consent, error)
}

// Consent is the node's invitation policy: the rule (accept-all,
// allow-list or ask), the organisations allowed under allow-list, the
// organisations refused (revoked: no connection, request or invitation),
// and the lowest trust score of an inviting agent.
type Consent struct {
	Consent  string   `json:"consent"`
	Allow    []string `json:"allow"`
	Deny     []string `json:"deny"`
	MinTrust float64  `json:"minTrust,omitempty"`
}

// MandateKeeper is an optional Backend extension serving GET and PUT
// /v1/agents/{agentId}/mandate.
type MandateKeeper interface {
	// Mandate returns the agent's mandate (empty: none).
	Mandate(ctx context.Context, agentID string) (Mandate, error)
	// SetMandate replaces the agent's mandate (empty: none) and returns it
	// in normal form.
	SetMandate(ctx context.Context, agentID string, m Mandate) (Mandate, error)
}

// Mandate is what an agent may commit its organisation to. Amounts are
// decimals as strings, by currency code. Limits on money apply where the
// agent would pay; the others to every offer it makes or accepts. An
// empty mandate allows anything.
type Mandate struct {
	// Resources lists the terms' resources the agent may deal in.
	Resources []string `json:"resources,omitempty"`
	// MaxUnitPrice is the highest unit price, by currency.
	MaxUnitPrice map[string]string `json:"maxUnitPrice,omitempty"`
	// MaxTotal is the highest total (quantity × unit price) of one
	// commitment, by currency.
	MaxTotal map[string]string `json:"maxTotal,omitempty"`
	// BudgetPerDay and BudgetPerMonth bound the totals of the commitments
	// formed in the current UTC day and month, by currency.
	BudgetPerDay   map[string]string `json:"budgetPerDay,omitempty"`
	BudgetPerMonth map[string]string `json:"budgetPerMonth,omitempty"`
	// LatestDeadline is the latest deliverBy the agent may agree to
	// (RFC 3339).
	LatestDeadline string `json:"latestDeadline,omitempty"`
	// Counterparties lists the organisations (peer ids) or agents the
	// agent may deal with.
	Counterparties []string `json:"counterparties,omitempty"`
	// MinTrust is the lowest trust score (0–100) of a counterparty.
	MinTrust float64 `json:"minTrust,omitempty"`
	// ApprovalAbove (totals above which a human approves) is not served
	// by this node yet: setting it is refused as unsupported.
	ApprovalAbove map[string]string `json:"approvalAbove,omitempty"`
}

// SessionLister is an optional Backend extension serving GET /v1/sessions.
type SessionLister interface {
	// Sessions lists the sessions the principal may see.
	Sessions(ctx context.Context, p Principal) ([]SessionInfo, error)
}

// InvitationResponder is an optional Backend extension serving
// POST /v1/sessions/{id}/accept and /decline, for invitations held under the
// "ask" consent policy.
type InvitationResponder interface {
	// RespondInvitation accepts (accept=true) or declines an invitation
	// addressed to the agent.
	RespondInvitation(ctx context.Context, agent, sessionID string, accept bool) (SessionInfo, error)
}

// NodeInfo is the answer of GET /v1/node.
type NodeInfo struct {
	PeerID  string   `json:"peerId"`
	Org     string   `json:"org"`
	Addrs   []string `json:"addrs"`
	Version string   `json:"version"`
	// Peers is the number of connected peers.
	Peers int `json:"peers"`
	// Warnings names conditions an operator should look at.
	Warnings []string `json:"warnings,omitempty"`
	// Status is the node's status, for the admin token only (StatusReporter).
	Status *NodeStatus `json:"status,omitempty"`
}

// CreateAgentRequest is the body of POST /v1/agents.
type CreateAgentRequest struct {
	// Name is the last part of the agent id: agent://<peerId>/<name>.
	Name         string   `json:"name"`
	Capabilities []string `json:"capabilities"`
	Description  string   `json:"description,omitempty"`
}

// CreateAgentResponse is the answer of POST /v1/agents (201).
type CreateAgentResponse struct {
	AgentID string `json:"agentId"`
	// Token is the agent's bearer token. It is shown once.
	Token string `json:"token"`
}

// AgentInfo describes one of the node's own agents.
type AgentInfo struct {
	AgentID      string   `json:"agentId"`
	Name         string   `json:"name"`
	Capabilities []string `json:"capabilities"`
	Description  string   `json:"description,omitempty"`
	// PublicKey is the agent's Ed25519 public key, base64.
	PublicKey string    `json:"publicKey,omitempty"`
	CreatedAt time.Time `json:"createdAt,omitzero"`
}

// AgentList is the answer of GET /v1/agents.
type AgentList struct {
	Agents []AgentInfo `json:"agents"`
}

// DiscoverQuery is the query of GET /v1/discover.
type DiscoverQuery struct {
	// Capability to search for (required).
	Capability string `json:"capability"`
	// MinTrust is the lowest trust score (0–100) to return.
	MinTrust float64 `json:"min_trust,omitempty"`
	// Limit is the largest number of agents to return (the handler fills
	// in a default and a cap).
	Limit int `json:"limit,omitempty"`
}

// DiscoverResult is the answer of GET /v1/discover.
type DiscoverResult struct {
	Agents []DiscoveredAgent `json:"agents"`
	// Partial is set when the search ran out of time before every provider
	// answered, or the node has no peers.
	Partial bool `json:"partial,omitempty"`
}

// DiscoveredAgent is one agent found by discovery.
type DiscoveredAgent struct {
	AgentID      string       `json:"agentId"`
	Org          string       `json:"org"`
	Capabilities []string     `json:"capabilities"`
	Trust        TrustSummary `json:"trust"`
}

// TrustSummary is the short form of a trust score.
type TrustSummary struct {
	// Score is 0–100.
	Score     float64 `json:"score"`
	Level     string  `json:"level"`
	Completed int     `json:"completed"`
}

// OpenSessionRequest is the body of POST /v1/sessions.
type OpenSessionRequest struct {
	// To is the counterparty's agent id.
	To string `json:"to"`
}

// SessionInfo describes a session (answer of POST /v1/sessions and
// GET /v1/sessions/{id}).
type SessionInfo struct {
	SessionID string `json:"sessionId"`
	State     string `json:"state"`
	// Reason explains a CLOSED or FAILED state, if known.
	Reason       string   `json:"reason,omitempty"`
	Participants []string `json:"participants"`
	// Messages are the signed envelopes of the transcript, in order.
	Messages     []json.RawMessage `json:"messages"`
	CommitmentID string            `json:"commitmentId,omitempty"`
	CreatedAt    time.Time         `json:"createdAt,omitzero"`
	UpdatedAt    time.Time         `json:"updatedAt,omitzero"`
}

// SessionList is the answer of GET /v1/sessions.
type SessionList struct {
	Sessions []SessionInfo `json:"sessions"`
}

// SendMessageRequest is the body of POST /v1/sessions/{id}/messages.
type SendMessageRequest struct {
	// Performative is PROPOSE, COUNTER, ACCEPT, REJECT, WITHDRAW, QUERY,
	// CLARIFY, INFORM, COMMIT, DELEGATE, ESCALATE, OBSERVE or CLOSE.
	Performative string `json:"performative"`
	// Terms are the structured terms of an offer (decimals as strings).
	Terms json.RawMessage `json:"terms,omitempty"`
	// ReferenceID names the message this one answers (the offer accepted,
	// rejected, countered...).
	ReferenceID string `json:"referenceId,omitempty"`
	// Body carries performative-specific fields.
	Body json.RawMessage `json:"body,omitempty"`
}

// SendMessageResult is the answer of POST /v1/sessions/{id}/messages (201).
type SendMessageResult struct {
	MessageID      string `json:"messageId"`
	SequenceNumber uint64 `json:"sequenceNumber"`
	// Hash is the envelope hash, hex.
	Hash  string `json:"hash"`
	State string `json:"state"`
	// CommitmentID is set when this message formed a commitment.
	CommitmentID string `json:"commitmentId,omitempty"`
}

// CommitmentInfo describes a commitment.
type CommitmentInfo struct {
	CommitmentID string `json:"commitmentId"`
	State        string `json:"state"`
	SessionID    string `json:"sessionId,omitempty"`
	// Terms are the agreed terms.
	Terms json.RawMessage `json:"terms"`
	// Parties are the agent ids bound by the commitment.
	Parties    []string        `json:"parties"`
	Signatures []SignatureInfo `json:"signatures"`
	Receipts   []ReceiptInfo   `json:"receipts"`
	CreatedAt  time.Time       `json:"createdAt,omitzero"`
	UpdatedAt  time.Time       `json:"updatedAt,omitzero"`
	// Obligations are the commitment's obligations as watched now (one
	// commitment only, not in lists).
	Obligations []ObligationInfo `json:"obligations,omitempty"`
	// Disputes are the ids of the disputes filed on it.
	Disputes []string `json:"disputes,omitempty"`
}

// CommitmentList is the answer of GET /v1/commitments.
type CommitmentList struct {
	Commitments []CommitmentInfo `json:"commitments"`
}

// SignatureInfo is one party's signature over the commitment.
type SignatureInfo struct {
	Agent string `json:"agent"`
	// MessageID is the signed message (offer or acceptance).
	MessageID string `json:"messageId,omitempty"`
	// Signature is the Ed25519 signature, base64.
	Signature string `json:"signature"`
}

// ReceiptInfo is one node's receipt for the commitment.
type ReceiptInfo struct {
	// Org is the peer id of the node that recorded the commitment.
	Org         string `json:"org"`
	LedgerIndex uint64 `json:"ledgerIndex"`
	// Checkpoint is the signed checkpoint covering the entry (signed note).
	Checkpoint string `json:"checkpoint"`
	// Signature is the node's signature over the commitment, base64.
	Signature string `json:"signature"`
}

// FulfillRequest is the body of POST /v1/commitments/{id}/fulfill.
type FulfillRequest struct {
	Evidence json.RawMessage `json:"evidence,omitempty"`
	Note     string          `json:"note,omitempty"`
}

// ConfirmRequest is the body of POST /v1/commitments/{id}/confirm.
type ConfirmRequest struct {
	Note string `json:"note,omitempty"`
}

// DisputeRequest is the body of POST /v1/commitments/{id}/dispute.
type DisputeRequest struct {
	Reason   string          `json:"reason"`
	Severity string          `json:"severity"`
	Evidence json.RawMessage `json:"evidence,omitempty"`
}

// TrustInfo is the answer of GET /v1/trust/{agentId}.
type TrustInfo struct {
	AgentID string `json:"agentId"`
	// Score is 0–100.
	Score     float64 `json:"score"`
	Level     string  `json:"level"`
	Completed int     `json:"completed"`
	// Components explain the score (fulfilment, volume, recency,
	// disputesLost, endorsement...).
	Components map[string]float64 `json:"components"`
	// Anchored is false when the observing node has nothing to anchor
	// trust on (no counterparties with a settled commitment, no
	// pre-trusted organisations): then only its own agents' evidence
	// counts, and Hint says what to do.
	Anchored bool   `json:"anchored"`
	Hint     string `json:"hint,omitempty"`
}

// EntriesPage is the answer of GET /v1/audit/entries.
type EntriesPage struct {
	// Size is the ledger size when read.
	Size    uint64      `json:"size"`
	Entries []EntryInfo `json:"entries"`
}

// EntryInfo is one ledger entry with its hashes.
type EntryInfo struct {
	Index uint64    `json:"index"`
	Time  time.Time `json:"time"`
	Kind  string    `json:"kind"`
	// Session and Commitment are the ids the entry is about, if any.
	Session    string `json:"session,omitempty"`
	Commitment string `json:"commitment,omitempty"`
	// PrevHash is the previous entry's hash, hex.
	PrevHash string `json:"prevHash"`
	// Hash is this entry's hash (Merkle leaf hash), hex.
	Hash string `json:"hash"`
	// Body is the entry payload.
	Body []byte `json:"body,omitempty"`
}

// Event is one server-sent event for an agent. Type is "session",
// "message", "commitment", "trust", "dispute" or "equivocation"; Data is marshalled to
// JSON as the event's data. ID, when not 0, is sent as the event's id: the
// node's event ids grow by one per event published (all agents together),
// so a client resumes after the last one it saw.
type Event struct {
	ID   uint64
	Type string
	Data any
}

// EventGap is the type of the event that opens a resumed stream when the
// node no longer holds every event after the id the client resumes from.
const EventGap = "gap"

// GapEvent is the data of a "gap" event: the agent's events after After
// and before Oldest may be lost (they left the node's buffer, or the node
// restarted). What the node still holds follows it. A client that sees it
// reads current state (sessions, commitments) again. The gap event itself
// has no id.
type GapEvent struct {
	// After is the event id the client resumed from.
	After uint64 `json:"after"`
	// Oldest is the id of the oldest event the node still holds (the id
	// of the next event when it holds none); 0 when the node keeps no
	// events for replay.
	Oldest uint64 `json:"oldest"`
}

// Replay is what a subscription of an EventReplayer starts with.
type Replay struct {
	// Events are the agent's events after the id asked for, in order.
	Events []Event
	// Gap says some of the agent's events after that id are no longer
	// held (or the id is not one of this run of the node); Oldest is the
	// oldest id held.
	Gap    bool
	Oldest uint64
	// Newest is the id of the last event published before the
	// subscription (0 if none): every later event is on the channel. The
	// stream sends it as an id, so that a client that reconnects resumes
	// from there even if it got no event of its own.
	Newest uint64
}

// EventReplayer is an optional Backend extension that resumes event
// streams (GET /v1/events with Last-Event-ID or ?since=).
type EventReplayer interface {
	// SubscribeSince subscribes like Backend.Subscribe. With resume, the
	// replay holds the agent's events published after the event id after
	// that the backend still holds. The channel carries only events
	// published after Replay.Newest: none is missed or repeated between
	// the two.
	SubscribeSince(agentID string, resume bool, after uint64) (replay Replay, events <-chan Event, cancel func())
}
