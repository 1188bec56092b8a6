// Package mcp serves an ASP agent to language models as a Model Context
// Protocol server (github.com/modelcontextprotocol/go-sdk): tools to
// discover agents, negotiate in sessions, act on commitments, read trust and
// follow events, each acting as one agent of a node through the node's HTTP
// API (package node/client) with that agent's token. It is served two ways:
// over stdio by `asp mcp --home DIR --agent NAME` (how desktop LLM clients
// start a tool server), and over Streamable HTTP at /mcp on the node's own
// API (Handler), where the bearer token of each request names the agent.
//
// The tools speak the API's words: performatives (PROPOSE, COUNTER, ACCEPT,
// REJECT...), terms with decimals as strings, commitment actions. An error
// the model can act on comes back as a tool error (isError) whose text is
// the node's code and message, with what may be done next when the node
// refused a move.
//
// Who can do what: a tool call can do no more than the API allows the
// token: the node checks every request. The MCP layer holds no state of
// its own beyond the MCP session, which is bound to the token that opened
// it (a request with another token is refused).
package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/node/client"
	"github.com/aspnode/asp/protocol"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Version is the version the server reports in initialize.
const Version = "0.1.0"

// NewServer returns an MCP server whose tools act through c, a client
// holding the token of the agent agentID.
func NewServer(c *client.Client, agentID string) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "asp", Title: "ASP agent", Version: Version}, &mcp.ServerOptions{
		Instructions: "You act as the ASP agent " + agentID + ": you negotiate signed commitments with other " +
			"organizations' agents. Find counterparties with discover_agents, check them with get_trust, open a " +
			"session with open_session, then negotiate with send_move (PROPOSE terms, COUNTER, ACCEPT, REJECT). " +
			"An ACCEPT of an offer forms a commitment both sides signed; then fulfill, confirm or dispute it with " +
			"act_on_commitment. Decimals (quantity, unitPrice) are strings such as \"2.80\". Follow what the " +
			"counterparty does with read_events.",
	})
	t := &tools{c: c, agent: agentID}
	t.register(s)
	t.registerResources(s)
	return s
}

type tools struct {
	c     *client.Client
	agent string
}

// jsonResult is a tool result holding v as JSON text.
func jsonResult(v any) (*mcp.CallToolResult, any, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(b)}}}, nil, nil
}

// toolError is the error a model reads: the node's code and message, and a
// hint when there is one.
func toolError(err error, hint string) error {
	var e *client.Error
	if errors.As(err, &e) {
		msg := e.Code + ": " + e.Message
		if e.Retryable {
			msg += " (temporary: the same call may succeed later)"
		}
		if hint != "" {
			msg += ". " + hint
		}
		return errors.New(msg)
	}
	return err
}

type discoverIn struct {
	Capability string  `json:"capability" jsonschema:"the capability to search for, for example steel-supply or freight"`
	MinTrust   float64 `json:"min_trust,omitempty" jsonschema:"lowest trust score to return, 0 to 100"`
	Limit      int     `json:"limit,omitempty" jsonschema:"largest number of agents to return (default 20, at most 100)"`
}

type agentIn struct {
	AgentID string `json:"agent_id" jsonschema:"an agent id, agent://<peerId>/<name>"`
}

type openIn struct {
	To string `json:"to" jsonschema:"the counterparty's agent id, agent://<peerId>/<name>, as discover_agents returns it"`
}

type sessionIn struct {
	SessionID string `json:"session_id" jsonschema:"the session id open_session or list_sessions returned"`
}

type sendIn struct {
	SessionID    string         `json:"session_id" jsonschema:"the session id"`
	Performative string         `json:"performative" jsonschema:"the move: PROPOSE or COUNTER (with terms), ACCEPT or REJECT (with reference_id), WITHDRAW, QUERY, CLARIFY, INFORM, CLOSE"`
	Terms        *client.Terms  `json:"terms,omitempty" jsonschema:"the offer's terms, for PROPOSE and COUNTER; decimals are strings (\"2.80\"), deliverBy is RFC 3339 UTC"`
	ReferenceID  string         `json:"reference_id,omitempty" jsonschema:"the messageId of the offer this move answers (required for COUNTER, ACCEPT, REJECT)"`
	Reason       string         `json:"reason,omitempty" jsonschema:"why, for REJECT or WITHDRAW"`
	Body         map[string]any `json:"body,omitempty" jsonschema:"other fields of the move's body, for performatives that carry more (QUERY, INFORM...)"`
}

type commitmentIn struct {
	CommitmentID string `json:"commitment_id" jsonschema:"the commitment id"`
}

type actIn struct {
	CommitmentID string         `json:"commitment_id" jsonschema:"the commitment id"`
	Action       string         `json:"action" jsonschema:"fulfill (claim you delivered, with evidence), confirm (accept the counterparty's fulfilment) or dispute (with reason and severity)"`
	Note         string         `json:"note,omitempty" jsonschema:"a note, for fulfill and confirm"`
	Evidence     map[string]any `json:"evidence,omitempty" jsonschema:"evidence of delivery or of the fault (a JSON object), for fulfill and dispute"`
	Reason       string         `json:"reason,omitempty" jsonschema:"what went wrong, for dispute"`
	Severity     string         `json:"severity,omitempty" jsonschema:"for dispute: minor, major or critical"`
}

type eventsIn struct {
	After       string `json:"after,omitempty" jsonschema:"return events after this event id (the last id you read); empty: all the node still holds"`
	WaitSeconds int    `json:"wait_seconds,omitempty" jsonschema:"when there is no event yet, wait up to this many seconds (0 to 60) for one"`
}

type businessIn struct {
	Type         string         `json:"type" jsonschema:"the event's type: lowercase letters, digits, '.', '_' or '-', starting with a letter (order.created)"`
	CommitmentID string         `json:"commitment_id,omitempty" jsonschema:"the commitment the event is about, if any (one of yours)"`
	Data         map[string]any `json:"data,omitempty" jsonschema:"the event's details, a JSON object of at most 16 KiB; write amounts as strings"`
}

type noIn struct{}

func (t *tools) register(s *mcp.Server) {
	ro := &mcp.ToolAnnotations{ReadOnlyHint: true}
	mcp.AddTool(s, &mcp.Tool{Name: "discover_agents", Annotations: ro,
		Description: "Search the network for agents offering a capability, with their organization and trust score."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in discoverIn) (*mcp.CallToolResult, any, error) {
			r, err := t.c.Discover(ctx, api.DiscoverQuery{Capability: in.Capability, MinTrust: in.MinTrust, Limit: in.Limit})
			if err != nil {
				return nil, nil, toolError(err, "")
			}
			return jsonResult(r)
		})
	mcp.AddTool(s, &mcp.Tool{Name: "get_agent_card", Annotations: ro,
		Description: "Read an agent's signed card: its organization, capabilities and description."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in agentIn) (*mcp.CallToolResult, any, error) {
			r, err := t.c.AgentCard(ctx, in.AgentID)
			if err != nil {
				return nil, nil, toolError(err, "")
			}
			return jsonResult(r)
		})
	mcp.AddTool(s, &mcp.Tool{Name: "get_trust", Annotations: ro,
		Description: "Read an agent's trust score (0 to 100) and what it is made of: commitments fulfilled, volume, recency, disputes lost."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in agentIn) (*mcp.CallToolResult, any, error) {
			r, err := t.c.Trust(ctx, in.AgentID)
			if err != nil {
				return nil, nil, toolError(err, "")
			}
			return jsonResult(r)
		})
	mcp.AddTool(s, &mcp.Tool{Name: "open_session",
		Description: "Open a negotiation session with another agent. The answer holds the session id to send moves in."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in openIn) (*mcp.CallToolResult, any, error) {
			r, err := t.c.OpenSession(ctx, in.To)
			if err != nil {
				return nil, nil, toolError(err, "")
			}
			return jsonResult(t.session(r))
		})
	mcp.AddTool(s, &mcp.Tool{Name: "list_sessions", Annotations: ro,
		Description: "List your sessions with their state (without their messages; read one with read_session)."},
		func(ctx context.Context, _ *mcp.CallToolRequest, _ noIn) (*mcp.CallToolResult, any, error) {
			ss, err := t.c.Sessions(ctx)
			if err != nil {
				return nil, nil, toolError(err, "")
			}
			out := make([]sessionView, 0, len(ss))
			for _, s := range ss {
				v := t.session(s)
				v.Messages = nil
				out = append(out, v)
			}
			return jsonResult(map[string]any{"sessions": out})
		})
	mcp.AddTool(s, &mcp.Tool{Name: "read_session", Annotations: ro,
		Description: "Read a session: its state, its messages in order (who sent what, the terms offered) and the offer you may answer."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in sessionIn) (*mcp.CallToolResult, any, error) {
			r, err := t.c.Session(ctx, in.SessionID)
			if err != nil {
				return nil, nil, toolError(err, "")
			}
			return jsonResult(t.session(r))
		})
	mcp.AddTool(s, &mcp.Tool{Name: "send_move",
		Description: "Send a signed move in a session: PROPOSE or COUNTER with terms, ACCEPT or REJECT an offer by its messageId " +
			"(reference_id), WITHDRAW, QUERY, CLARIFY, INFORM or CLOSE. ACCEPT forms a binding commitment signed by both agents."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in sendIn) (*mcp.CallToolResult, any, error) {
			req, err := sendRequest(in)
			if err != nil {
				return nil, nil, err
			}
			r, err := t.c.Send(ctx, in.SessionID, req)
			if err != nil {
				hint := ""
				if errors.Is(err, client.ErrInvalidTransition) {
					hint = t.nextMoves(ctx, in.SessionID)
				}
				return nil, nil, toolError(err, hint)
			}
			return jsonResult(r)
		})
	mcp.AddTool(s, &mcp.Tool{Name: "list_commitments", Annotations: ro,
		Description: "List the commitments you are a party to, with their state (ACTIVE, FULFILLED, CONFIRMED, DISPUTED...) and terms."},
		func(ctx context.Context, _ *mcp.CallToolRequest, _ noIn) (*mcp.CallToolResult, any, error) {
			r, err := t.c.Commitments(ctx)
			if err != nil {
				return nil, nil, toolError(err, "")
			}
			return jsonResult(map[string]any{"commitments": r})
		})
	mcp.AddTool(s, &mcp.Tool{Name: "read_commitment", Annotations: ro,
		Description: "Read one commitment: its terms, parties, state, both signatures and the nodes' receipts."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in commitmentIn) (*mcp.CallToolResult, any, error) {
			r, err := t.c.Commitment(ctx, in.CommitmentID)
			if err != nil {
				return nil, nil, toolError(err, "")
			}
			return jsonResult(r)
		})
	mcp.AddTool(s, &mcp.Tool{Name: "act_on_commitment",
		Description: "Act on a commitment you are a party to: fulfill (the obligated side claims delivery, with evidence), " +
			"confirm (the other side accepts the fulfilment) or dispute (with a reason and a severity)."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in actIn) (*mcp.CallToolResult, any, error) {
			var (
				r   api.CommitmentInfo
				err error
			)
			evidence, err := rawObject(in.Evidence)
			if err != nil {
				return nil, nil, err
			}
			switch strings.ToLower(in.Action) {
			case "fulfill", "fulfil":
				r, err = t.c.Fulfill(ctx, in.CommitmentID, api.FulfillRequest{Evidence: evidence, Note: in.Note})
			case "confirm":
				r, err = t.c.Confirm(ctx, in.CommitmentID, api.ConfirmRequest{Note: in.Note})
			case "dispute":
				r, err = t.c.Dispute(ctx, in.CommitmentID, api.DisputeRequest{Reason: in.Reason, Severity: in.Severity, Evidence: evidence})
			default:
				return nil, nil, fmt.Errorf("action must be fulfill, confirm or dispute, not %q", in.Action)
			}
			if err != nil {
				return nil, nil, toolError(err, "")
			}
			return jsonResult(r)
		})
	mcp.AddTool(s, &mcp.Tool{Name: "record_business_event",
		Description: "Put an event of your organisation's own business on your node's tamper-evident ledger, signed by you: " +
			"for example order.created or shipment.created, with its details, about one of your commitments if you name it."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in businessIn) (*mcp.CallToolResult, any, error) {
			data, err := json.Marshal(in.Data)
			if err != nil {
				return nil, nil, err
			}
			if in.Data == nil {
				data = []byte("{}")
			}
			r, err := t.c.RecordEvent(ctx, api.AuditEventRequest{Type: in.Type, CommitmentID: in.CommitmentID, Data: data})
			if err != nil {
				return nil, nil, toolError(err, "")
			}
			return jsonResult(r)
		})
	mcp.AddTool(s, &mcp.Tool{Name: "read_events", Annotations: ro,
		Description: "Read what happened to you since an event id: sessions opened, the counterparty's moves, commitments formed " +
			"and acted on, trust changes. Pass the newest id of the last answer as after to get only what is new; wait_seconds " +
			"waits for the next event when there is none yet."},
		t.readEvents)
}

// sendRequest turns the tool's arguments into the API's message request.
func sendRequest(in sendIn) (api.SendMessageRequest, error) {
	req := api.SendMessageRequest{Performative: strings.ToUpper(strings.TrimSpace(in.Performative)), ReferenceID: in.ReferenceID}
	if in.Terms != nil {
		b, err := json.Marshal(in.Terms)
		if err != nil {
			return req, err
		}
		req.Terms = b
	}
	body := map[string]any{}
	for k, v := range in.Body {
		body[k] = v
	}
	if in.Reason != "" {
		body["reason"] = in.Reason
	}
	if len(body) > 0 {
		b, err := json.Marshal(body)
		if err != nil {
			return req, err
		}
		req.Body = b
	}
	return req, nil
}

func rawObject(m map[string]any) (json.RawMessage, error) {
	if m == nil {
		return nil, nil
	}
	return json.Marshal(m)
}

// sessionView is a session as a model reads it: messages decoded, and the
// offer that may be answered.
type sessionView struct {
	SessionID    string           `json:"sessionId"`
	State        string           `json:"state"`
	Reason       string           `json:"reason,omitempty"`
	Participants []string         `json:"participants"`
	CommitmentID string           `json:"commitmentId,omitempty"`
	Messages     []client.Message `json:"messages,omitempty"`
	// OpenOffer is the last offer (PROPOSE or COUNTER) not answered yet.
	OpenOffer *offerView `json:"openOffer,omitempty"`
}

type offerView struct {
	MessageID string        `json:"messageId"`
	From      string        `json:"from"`
	Terms     *client.Terms `json:"terms,omitempty"`
	// Yours is true when you made the offer: wait for the counterparty.
	Yours bool `json:"yours"`
}

func (t *tools) session(s api.SessionInfo) sessionView {
	v := sessionView{SessionID: s.SessionID, State: s.State, Reason: s.Reason, Participants: s.Participants,
		CommitmentID: s.CommitmentID, Messages: []client.Message{}}
	for _, raw := range s.Messages {
		var m client.Message
		if json.Unmarshal(raw, &m) != nil {
			continue
		}
		v.Messages = append(v.Messages, m)
		switch m.Performative {
		case "PROPOSE", "COUNTER":
			o := &offerView{MessageID: m.MessageID, From: m.Sender, Yours: m.Sender == t.agent}
			if tm, ok := m.Terms(); ok {
				o.Terms = &tm
			}
			v.OpenOffer = o
		case "ACCEPT", "REJECT", "WITHDRAW":
			v.OpenOffer = nil
		}
	}
	return v
}

// nextMoves says what a refused move could have been, from the session's
// transcript.
func (t *tools) nextMoves(ctx context.Context, sessionID string) string {
	s, err := t.c.Session(ctx, sessionID)
	if err != nil {
		return ""
	}
	v := t.session(s)
	switch {
	case protocol.State(v.State).Terminal():
		return "The session is " + v.State + ": open a new one to negotiate again"
	case v.State == string(protocol.StateInvited):
		return "The counterparty has not accepted the session yet: wait for it (read_events)"
	case v.OpenOffer == nil:
		return "No offer is open in this session: you may PROPOSE terms"
	case v.OpenOffer.Yours:
		return "Your offer " + v.OpenOffer.MessageID + " awaits the counterparty's answer: wait (read_events) or WITHDRAW it"
	default:
		price := ""
		if v.OpenOffer.Terms != nil {
			price = " at unit price " + v.OpenOffer.Terms.UnitPrice + " " + v.OpenOffer.Terms.Currency
		}
		return "The counterparty's last offer is " + v.OpenOffer.MessageID + price +
			"; you may COUNTER, ACCEPT or REJECT it (reference_id " + v.OpenOffer.MessageID + ")"
	}
}
