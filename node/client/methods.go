package client

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"

	"github.com/aspnode/asp/node/api"
)

// Every method below is one route of node/api (see CONTRACT.md): the access
// it needs is the route's (admin, agent, party: an agent token or the
// admin token; any).

// Node returns GET /v1/node: the node's peer id, organization, addresses.
func (c *Client) Node(ctx context.Context) (api.NodeInfo, error) {
	var v api.NodeInfo
	return v, c.Do(ctx, http.MethodGet, "/v1/node", nil, &v)
}

// CreateAgent creates an agent with its own key and token (admin).
func (c *Client) CreateAgent(ctx context.Context, req api.CreateAgentRequest) (api.CreateAgentResponse, error) {
	if req.Capabilities == nil {
		req.Capabilities = []string{}
	}
	var v api.CreateAgentResponse
	return v, c.Do(ctx, http.MethodPost, "/v1/agents", req, &v)
}

// Agents lists the node's agents (admin).
func (c *Client) Agents(ctx context.Context) ([]api.AgentInfo, error) {
	var v api.AgentList
	return v.Agents, c.Do(ctx, http.MethodGet, "/v1/agents", nil, &v)
}

// DeleteAgent deletes one of the node's agents and revokes its token
// (admin). Its event streams end.
func (c *Client) DeleteAgent(ctx context.Context, agentID string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/agents/"+url.PathEscape(agentID), nil, nil)
}

// Mandate returns what one of the node's agents may commit the
// organisation to (admin token).
func (c *Client) Mandate(ctx context.Context, agentID string) (api.Mandate, error) {
	var v api.Mandate
	return v, c.Do(ctx, http.MethodGet, "/v1/agents/"+url.PathEscape(agentID)+"/mandate", nil, &v)
}

// SetMandate replaces an agent's mandate (admin token); an empty one
// removes every limit. It returns the mandate in the node's normal form.
func (c *Client) SetMandate(ctx context.Context, agentID string, m api.Mandate) (api.Mandate, error) {
	var v api.Mandate
	return v, c.Do(ctx, http.MethodPut, "/v1/agents/"+url.PathEscape(agentID)+"/mandate", m, &v)
}

// AgentCard returns the signed agent card of any agent, local or remote,
// as the node serves it.
func (c *Client) AgentCard(ctx context.Context, agentID string) (json.RawMessage, error) {
	var v json.RawMessage
	return v, c.Do(ctx, http.MethodGet, "/v1/agents/"+url.PathEscape(agentID)+"/card", nil, &v)
}

// Discover searches the network for agents with a capability, at or above
// a trust score; q.Limit 0 is the node's default.
func (c *Client) Discover(ctx context.Context, q api.DiscoverQuery) (api.DiscoverResult, error) {
	v := url.Values{"capability": {q.Capability}}
	if q.MinTrust > 0 {
		v.Set("min_trust", strconv.FormatFloat(q.MinTrust, 'f', -1, 64))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var res api.DiscoverResult
	return res, c.Do(ctx, http.MethodGet, "/v1/discover?"+v.Encode(), nil, &res)
}

// Sessions lists the sessions the token's agent is a party to (admin: all).
func (c *Client) Sessions(ctx context.Context) ([]api.SessionInfo, error) {
	var v api.SessionList
	return v.Sessions, c.Do(ctx, http.MethodGet, "/v1/sessions", nil, &v)
}

// OpenSession opens a session from the token's agent to the agent to.
func (c *Client) OpenSession(ctx context.Context, to string) (api.SessionInfo, error) {
	var v api.SessionInfo
	return v, c.Do(ctx, http.MethodPost, "/v1/sessions", api.OpenSessionRequest{To: to}, &v)
}

// Session returns a session with its signed transcript.
func (c *Client) Session(ctx context.Context, id string) (api.SessionInfo, error) {
	var v api.SessionInfo
	return v, c.Do(ctx, http.MethodGet, "/v1/sessions/"+url.PathEscape(id), nil, &v)
}

// Send signs and sends one message in a session as the token's agent. An
// illegal move is ErrInvalidTransition; ErrBusy (retryable) means the
// counterparty's node is taking a move of its own in the session: send
// again.
func (c *Client) Send(ctx context.Context, sessionID string, req api.SendMessageRequest) (api.SendMessageResult, error) {
	var v api.SendMessageResult
	return v, c.Do(ctx, http.MethodPost, "/v1/sessions/"+url.PathEscape(sessionID)+"/messages", req, &v)
}

// Propose sends a PROPOSE with terms (a Terms, a json.RawMessage or any
// value marshalling to a JSON object; decimals as strings).
func (c *Client) Propose(ctx context.Context, sessionID string, terms any) (api.SendMessageResult, error) {
	return c.offer(ctx, sessionID, "PROPOSE", "", terms)
}

// Counter answers the offer referenceID with a COUNTER offer.
func (c *Client) Counter(ctx context.Context, sessionID, referenceID string, terms any) (api.SendMessageResult, error) {
	return c.offer(ctx, sessionID, "COUNTER", referenceID, terms)
}

// Accept accepts the offer referenceID; the result names the commitment
// formed.
func (c *Client) Accept(ctx context.Context, sessionID, referenceID string) (api.SendMessageResult, error) {
	return c.Send(ctx, sessionID, api.SendMessageRequest{Performative: "ACCEPT", ReferenceID: referenceID})
}

// Reject rejects the offer referenceID, with a reason for the counterparty.
func (c *Client) Reject(ctx context.Context, sessionID, referenceID, reason string) (api.SendMessageResult, error) {
	req := api.SendMessageRequest{Performative: "REJECT", ReferenceID: referenceID}
	if reason != "" {
		req.Body, _ = json.Marshal(map[string]string{"reason": reason})
	}
	return c.Send(ctx, sessionID, req)
}

func (c *Client) offer(ctx context.Context, sessionID, perf, ref string, terms any) (api.SendMessageResult, error) {
	raw, ok := terms.(json.RawMessage)
	if !ok {
		var err error
		if raw, err = json.Marshal(terms); err != nil {
			return api.SendMessageResult{}, fmt.Errorf("%s terms: %w", perf, err)
		}
	}
	return c.Send(ctx, sessionID, api.SendMessageRequest{Performative: perf, ReferenceID: ref, Terms: raw})
}

// AcceptInvitation accepts an invitation the node's consent policy holds
// for the token's agent.
func (c *Client) AcceptInvitation(ctx context.Context, sessionID string) (api.SessionInfo, error) {
	var v api.SessionInfo
	return v, c.Do(ctx, http.MethodPost, "/v1/sessions/"+url.PathEscape(sessionID)+"/accept", nil, &v)
}

// DeclineInvitation declines an invitation held for the token's agent.
func (c *Client) DeclineInvitation(ctx context.Context, sessionID string) (api.SessionInfo, error) {
	var v api.SessionInfo
	return v, c.Do(ctx, http.MethodPost, "/v1/sessions/"+url.PathEscape(sessionID)+"/decline", nil, &v)
}

// Commitments lists the commitments the token may see.
func (c *Client) Commitments(ctx context.Context) ([]api.CommitmentInfo, error) {
	var v api.CommitmentList
	return v.Commitments, c.Do(ctx, http.MethodGet, "/v1/commitments", nil, &v)
}

// Commitment returns one commitment with its signatures and receipts.
func (c *Client) Commitment(ctx context.Context, id string) (api.CommitmentInfo, error) {
	var v api.CommitmentInfo
	return v, c.Do(ctx, http.MethodGet, "/v1/commitments/"+url.PathEscape(id), nil, &v)
}

// Fulfill claims fulfilment of a commitment, with evidence.
func (c *Client) Fulfill(ctx context.Context, id string, req api.FulfillRequest) (api.CommitmentInfo, error) {
	return c.commitmentAction(ctx, id, "fulfill", req)
}

// Confirm confirms the counterparty's fulfilment.
func (c *Client) Confirm(ctx context.Context, id string, req api.ConfirmRequest) (api.CommitmentInfo, error) {
	return c.commitmentAction(ctx, id, "confirm", req)
}

// Dispute disputes a commitment (a reason is required).
func (c *Client) Dispute(ctx context.Context, id string, req api.DisputeRequest) (api.CommitmentInfo, error) {
	return c.commitmentAction(ctx, id, "dispute", req)
}

func (c *Client) commitmentAction(ctx context.Context, id, action string, req any) (api.CommitmentInfo, error) {
	var v api.CommitmentInfo
	return v, c.Do(ctx, http.MethodPost, "/v1/commitments/"+url.PathEscape(id)+"/"+action, req, &v)
}

// Trust returns the explained trust score of any agent.
func (c *Client) Trust(ctx context.Context, agentID string) (api.TrustInfo, error) {
	var v api.TrustInfo
	return v, c.Do(ctx, http.MethodGet, "/v1/trust/"+url.PathEscape(agentID), nil, &v)
}

// Checkpoint returns the node's latest signed checkpoint (signed note text).
func (c *Client) Checkpoint(ctx context.Context) (string, error) {
	var v string
	return v, c.Do(ctx, http.MethodGet, "/v1/audit/checkpoint", nil, &v)
}

// Entries returns one page of ledger entries from index from (admin);
// limit 0 is the node's default page, and the node caps it (1000).
func (c *Client) Entries(ctx context.Context, from, limit uint64) (api.EntriesPage, error) {
	path := "/v1/audit/entries?from=" + strconv.FormatUint(from, 10)
	if limit > 0 {
		path += "&limit=" + strconv.FormatUint(limit, 10)
	}
	var v api.EntriesPage
	return v, c.Do(ctx, http.MethodGet, path, nil, &v)
}

// AllEntries iterates over the ledger's entries from index from to the end
// of the ledger as it grows while read, fetching pages of pageSize (0: the
// node's default). It stops at the first error, yielded with a zero entry.
//
//	for e, err := range admin.AllEntries(ctx, 0, 0) {
//		if err != nil { return err }
//		...
//	}
func (c *Client) AllEntries(ctx context.Context, from, pageSize uint64) iter.Seq2[api.EntryInfo, error] {
	return func(yield func(api.EntryInfo, error) bool) {
		for {
			page, err := c.Entries(ctx, from, pageSize)
			if err != nil {
				yield(api.EntryInfo{}, err)
				return
			}
			for _, e := range page.Entries {
				if !yield(e, nil) {
					return
				}
				from = e.Index + 1
			}
			if len(page.Entries) == 0 || from >= page.Size {
				return
			}
		}
	}
}

// OpenAPI returns the node's OpenAPI 3.1 document.
func (c *Client) OpenAPI(ctx context.Context) (json.RawMessage, error) {
	var v json.RawMessage
	return v, c.Do(ctx, http.MethodGet, "/v1/openapi.json", nil, &v)
}

// Metrics returns the node's Prometheus metrics, text format (admin).
func (c *Client) Metrics(ctx context.Context) (string, error) {
	var v string
	return v, c.Do(ctx, http.MethodGet, "/metrics", nil, &v)
}

// Consent returns the node's invitation policy in force (admin token).
func (c *Client) Consent(ctx context.Context) (api.Consent, error) {
	var v api.Consent
	return v, c.Do(ctx, http.MethodGet, "/v1/consent", nil, &v)
}

// SetConsent replaces the node's invitation policy (admin token).
func (c *Client) SetConsent(ctx context.Context, p api.Consent) (api.Consent, error) {
	var v api.Consent
	return v, c.Do(ctx, http.MethodPut, "/v1/consent", p, &v)
}

// RevokeOrg revokes an organisation (admin token): its live sessions end
// and the node refuses it from then on.
func (c *Client) RevokeOrg(ctx context.Context, peerID string) (api.Consent, error) {
	var v api.Consent
	return v, c.Do(ctx, http.MethodPost, "/v1/orgs/"+url.PathEscape(peerID)+"/revoke", nil, &v)
}

// RecentEvents returns the agent's events after the event id since that
// the node still holds, without waiting (GET /v1/events/recent).
func (c *Client) RecentEvents(ctx context.Context, since uint64) (api.RecentEvents, error) {
	var r api.RecentEvents
	return r, c.Do(ctx, http.MethodGet, "/v1/events/recent?since="+strconv.FormatUint(since, 10), nil, &r)
}

// RecordEvent appends an event of the organisation's own business, signed
// by the agent, to its node's ledger (POST /v1/audit/events).
func (c *Client) RecordEvent(ctx context.Context, req api.AuditEventRequest) (api.AuditEventResult, error) {
	var r api.AuditEventResult
	return r, c.Do(ctx, http.MethodPost, "/v1/audit/events", req, &r)
}
