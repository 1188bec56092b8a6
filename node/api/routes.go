package api

import (
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
)

// route is one endpoint: the route table drives both dispatch and the
// OpenAPI document.
type route struct {
	Method string
	// Path is the pattern: literal segments and {param} segments; one
	// {param...} segment may span several raw segments (an agent id sent
	// unescaped).
	Path    string
	Access  access
	Summary string
	// Status is the success status of a JSON route.
	Status int
	// Request is the body type, nil if none; OptionalBody allows an empty body.
	Request      reflect.Type
	OptionalBody bool
	// Query is a struct whose json tags name the query parameters.
	Query reflect.Type
	// Response is the JSON answer type, nil if none.
	Response reflect.Type
	// ContentType is the answer's media type when it is not JSON.
	ContentType string
	// Errors lists the error statuses the route answers, beyond 401 and 500.
	Errors []int
	// Description is the longer text of the OpenAPI operation, if any.
	Description string
	// Headers are request headers the route reads: name, description.
	Headers [][2]string
	// Events are the data types of a stream's events, by event type, for
	// the OpenAPI document (x-asp-events).
	Events map[string]reflect.Type

	json func(*call) (any, error)
	raw  func(*call) error

	segs   []pathSeg
	greedy int // index of the {param...} segment, or -1
}

type pathSeg struct {
	lit   string
	param string
}

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

// Limits on list sizes.
const (
	defaultDiscoverLimit = 20
	maxDiscoverLimit     = 100
	defaultEntriesLimit  = 100
	maxEntriesLimit      = 1000
)

// EntriesQuery is the query of GET /v1/audit/entries.
type EntriesQuery struct {
	// From is the first index to return (default 0).
	From uint64 `json:"from,omitempty"`
	// Limit is the largest number of entries to return (default 100, at most 1000).
	Limit uint64 `json:"limit,omitempty"`
}

// EventsQuery is the query of GET /v1/events.
type EventsQuery struct {
	// Since resumes the stream after this event id, as the Last-Event-ID
	// header does (the header wins when both are sent).
	Since uint64 `json:"since,omitempty"`
}

// routes is the route table.
func routes() []*route {
	rs := []*route{
		{
			Method: "GET", Path: "/v1/node", Access: accessAny, Status: 200,
			Summary:  "Describe the node: peer id, organization, addresses, version; for the admin token also its status (sessions and commitments by state, ledger, checkpoint).",
			Response: typeOf[NodeInfo](),
			json:     nodeInfo,
		},
		{
			Method: "POST", Path: "/v1/agents", Access: accessAdmin, Status: 201,
			Summary:  "Create an agent with its own key and bearer token.",
			Request:  typeOf[CreateAgentRequest](),
			Response: typeOf[CreateAgentResponse](),
			Errors:   []int{400, 403, 409},
			json: func(c *call) (any, error) {
				var req CreateAgentRequest
				if _, err := c.decodeBody(&req, false); err != nil {
					return nil, err
				}
				if req.Name == "" {
					return nil, BadRequest("name is required")
				}
				return c.h.b.CreateAgent(c.ctx(), req)
			},
		},
		{
			Method: "GET", Path: "/v1/agents", Access: accessAdmin, Status: 200,
			Summary:  "List the node's agents.",
			Response: typeOf[AgentList](),
			Errors:   []int{403},
			json: func(c *call) (any, error) {
				as, err := c.h.b.ListAgents(c.ctx())
				if err != nil {
					return nil, err
				}
				if as == nil {
					as = []AgentInfo{}
				}
				return AgentList{Agents: as}, nil
			},
		},
		{
			Method: "DELETE", Path: "/v1/agents/{agentId...}", Access: accessAdmin, Status: 204,
			Summary: "Delete one of the node's agents and revoke its token.",
			Errors:  []int{403, 404},
			json: func(c *call) (any, error) {
				return nil, c.h.b.DeleteAgent(c.ctx(), c.params["agentId"])
			},
		},
		{
			Method: "GET", Path: "/v1/agents/{agentId...}/card", Access: accessAny,
			Summary:     "The signed agent card of any agent (agent id URL-encoded).",
			ContentType: "application/json",
			Errors:      []int{404},
			Query:       typeOf[CardQuery](),
			Description: "With ?format=a2a the answer is the card's A2A AgentCard, the signed card inside its " +
				"urn:asp:card:1.0 extension (served beside the API, as are /.well-known/agent-card.json, the A2A card " +
				"of one of the node's agents without a token, and MCP over Streamable HTTP at /mcp with an agent token).",
			raw: func(c *call) error {
				card, err := c.h.b.AgentCard(c.ctx(), c.params["agentId"])
				if err != nil {
					return err
				}
				writeJSON(c.w, http.StatusOK, card)
				return nil
			},
		},
		{
			Method: "GET", Path: "/v1/consent", Access: accessAdmin, Status: 200,
			Summary:  "The invitation policy in force: consent rule, allow and deny lists, minimum trust.",
			Response: typeOf[Consent](),
			Errors:   []int{403, 501},
			json: func(c *call) (any, error) {
				ck, err := consentKeeper(c)
				if err != nil {
					return nil, err
				}
				return ck.Consent(c.ctx())
			},
		},
		{
			Method: "PUT", Path: "/v1/consent", Access: accessAdmin, Status: 200,
			Summary:  "Replace the invitation policy (recorded in the ledger; organisations newly denied are revoked).",
			Request:  typeOf[Consent](),
			Response: typeOf[Consent](),
			Errors:   []int{400, 403, 501},
			json: func(c *call) (any, error) {
				ck, err := consentKeeper(c)
				if err != nil {
					return nil, err
				}
				var req Consent
				if _, err := c.decodeBody(&req, false); err != nil {
					return nil, err
				}
				return ck.SetConsent(c.ctx(), req)
			},
		},
		{
			Method: "POST", Path: "/v1/orgs/{peerId}/revoke", Access: accessAdmin, Status: 200,
			Summary:  "Revoke an organisation: its live sessions end (a signed CLOSE where possible), its connections, requests and invitations are refused.",
			Response: typeOf[Consent](),
			Errors:   []int{400, 403, 501},
			json: func(c *call) (any, error) {
				ck, err := consentKeeper(c)
				if err != nil {
					return nil, err
				}
				return ck.RevokeOrg(c.ctx(), c.params["peerId"])
			},
		},
		{
			Method: "GET", Path: "/v1/agents/{agentId...}/mandate", Access: accessAdmin, Status: 200,
			Summary:  "What one of the node's agents may commit the organisation to.",
			Response: typeOf[Mandate](),
			Errors:   []int{403, 404, 501},
			json: func(c *call) (any, error) {
				mk, err := mandateKeeper(c)
				if err != nil {
					return nil, err
				}
				return mk.Mandate(c.ctx(), c.params["agentId"])
			},
		},
		{
			Method: "PUT", Path: "/v1/agents/{agentId...}/mandate", Access: accessAdmin, Status: 200,
			Summary:  "Set what one of the node's agents may commit the organisation to (recorded in the ledger; {} removes every limit).",
			Request:  typeOf[Mandate](),
			Response: typeOf[Mandate](),
			Errors:   []int{400, 403, 404, 501},
			json: func(c *call) (any, error) {
				mk, err := mandateKeeper(c)
				if err != nil {
					return nil, err
				}
				var m Mandate
				if _, err := c.decodeBody(&m, false); err != nil {
					return nil, err
				}
				return mk.SetMandate(c.ctx(), c.params["agentId"], m)
			},
		},
		{
			Method: "GET", Path: "/v1/discover", Access: accessAny, Status: 200,
			Summary:  "Search the network for agents by capability, filtered by trust.",
			Query:    typeOf[DiscoverQuery](),
			Response: typeOf[DiscoverResult](),
			Errors:   []int{400, 504},
			json: func(c *call) (any, error) {
				q, err := discoverQuery(c.r.URL.Query())
				if err != nil {
					return nil, err
				}
				res, err := c.h.b.Discover(c.ctx(), q)
				if err != nil {
					return nil, err
				}
				if res.Agents == nil {
					res.Agents = []DiscoveredAgent{}
				}
				return res, nil
			},
		},
		{
			Method: "GET", Path: "/v1/sessions", Access: accessParty, Status: 200,
			Summary:  "List the sessions the caller is a party to (admin: all).",
			Response: typeOf[SessionList](),
			Errors:   []int{501},
			json: func(c *call) (any, error) {
				sl, err := extension[SessionLister](c, "listing sessions is not supported by this node")
				if err != nil {
					return nil, err
				}
				ss, err := sl.Sessions(c.ctx(), c.p)
				if err != nil {
					return nil, err
				}
				if ss == nil {
					ss = []SessionInfo{}
				}
				return SessionList{Sessions: ss}, nil
			},
		},
		{
			Method: "POST", Path: "/v1/sessions", Access: accessAgent, Status: 201,
			Summary:  "Open a session with another agent.",
			Request:  typeOf[OpenSessionRequest](),
			Response: typeOf[SessionInfo](),
			Errors:   []int{400, 403, 404, 504},
			json: func(c *call) (any, error) {
				var req OpenSessionRequest
				if _, err := c.decodeBody(&req, false); err != nil {
					return nil, err
				}
				if req.To == "" {
					return nil, BadRequest("to is required")
				}
				return c.h.b.OpenSession(c.ctx(), c.p.Agent, req)
			},
		},
		{
			Method: "GET", Path: "/v1/sessions/{sessionId}", Access: accessParty, Status: 200,
			Summary:  "A session with its transcript of signed envelopes.",
			Response: typeOf[SessionInfo](),
			Errors:   []int{403, 404},
			json: func(c *call) (any, error) {
				return c.h.b.Session(c.ctx(), c.p, c.params["sessionId"])
			},
		},
		{
			Method: "POST", Path: "/v1/sessions/{sessionId}/messages", Access: accessAgent, Status: 201,
			Summary:  "Sign and send a message (performative) in a session.",
			Request:  typeOf[SendMessageRequest](),
			Response: typeOf[SendMessageResult](),
			Errors:   []int{400, 403, 404, 409, 504},
			json: func(c *call) (any, error) {
				var req SendMessageRequest
				if _, err := c.decodeBody(&req, false); err != nil {
					return nil, err
				}
				if req.Performative == "" {
					return nil, BadRequest("performative is required")
				}
				for _, f := range []struct {
					name string
					raw  json.RawMessage
				}{{"terms", req.Terms}, {"body", req.Body}} {
					if len(f.raw) > 0 && string(f.raw) != "null" && f.raw[0] != '{' {
						return nil, BadRequest("%s must be a JSON object", f.name)
					}
				}
				return c.h.b.SendMessage(c.ctx(), c.p.Agent, c.params["sessionId"], req)
			},
		},
		invitationRoute("accept", true),
		invitationRoute("decline", false),
		auditEventRoute(),
		{
			Method: "GET", Path: "/v1/events", Access: accessAgent,
			Summary:     "Server-sent events for the calling agent: session, message, commitment, trust, dispute.",
			ContentType: "text/event-stream",
			Errors:      []int{400, 403},
			Query:       typeOf[EventsQuery](),
			Headers: [][2]string{{"Last-Event-ID",
				"Resume after this event id (the id of the last event received); wins over ?since=."}},
			Events: map[string]reflect.Type{EventGap: typeOf[GapEvent]()},
			Description: "Each event has an id (id: N), growing by one per event the node publishes (all agents together; " +
				"a restarted node continues above its earlier ids). The node keeps its last 4096 events: a client that " +
				"reconnects with Last-Event-ID (or ?since=N) first gets its events after N, in order, then live ones. " +
				"Every stream also sends the node's newest id when it subscribed as an id line without data, so that a " +
				"client that reconnects before any event of its own resumes from there. " +
				"When some of the caller's events after N are no longer held (or N is not an id of the node's current " +
				"run) the stream opens with an event of " +
				"type gap, without an id, whose data is {after, oldest}: the agent's events between the two may be lost; " +
				"read sessions and commitments again. A comment line (: heartbeat) comes every 15 s. A subscriber too slow " +
				"to take its events has its stream ended; it resumes with Last-Event-ID like after any disconnection.",
			raw: serveEvents,
		},
		{
			Method: "GET", Path: "/v1/events/recent", Access: accessAgent, Status: 200,
			Summary:  "The calling agent's events after an id that the node still holds, without waiting (a poll).",
			Query:    typeOf[RecentQuery](),
			Response: typeOf[RecentEvents](),
			Errors:   []int{400, 403},
			Description: "The events GET /v1/events would replay after ?since=N (default 0), as one JSON answer: " +
				"for a client that cannot hold a stream open. Ask again with since=newest for what comes later; " +
				"gap says some events after N are no longer held.",
			json: recentEvents,
		},
		{
			Method: "GET", Path: "/v1/commitments", Access: accessParty, Status: 200,
			Summary:  "List the commitments the caller is a party to (admin: all).",
			Response: typeOf[CommitmentList](),
			json: func(c *call) (any, error) {
				cs, err := c.h.b.Commitments(c.ctx(), c.p)
				if err != nil {
					return nil, err
				}
				if cs == nil {
					cs = []CommitmentInfo{}
				}
				return CommitmentList{Commitments: cs}, nil
			},
		},
		{
			Method: "GET", Path: "/v1/commitments/{commitmentId}", Access: accessParty, Status: 200,
			Summary:  "One commitment with its signatures and receipts.",
			Response: typeOf[CommitmentInfo](),
			Errors:   []int{403, 404},
			json: func(c *call) (any, error) {
				return c.h.b.Commitment(c.ctx(), c.p, c.params["commitmentId"])
			},
		},
		commitmentActionRoute("fulfill", "Claim fulfilment of a commitment, with evidence.", typeOf[FulfillRequest](), true),
		commitmentActionRoute("confirm", "Confirm the counterparty's fulfilment.", typeOf[ConfirmRequest](), true),
		commitmentActionRoute("dispute", "Dispute a commitment: {grounds, severity 1–5, claim, evidence[]} files a dispute (201 {disputeId}); the older {reason, severity, evidence} is still taken (200).", typeOf[DisputeRequest](), false),
		{
			Method: "GET", Path: "/v1/trust/{agentId...}", Access: accessAny, Status: 200,
			Summary:  "The explained trust score of any agent (agent id URL-encoded).",
			Response: typeOf[TrustInfo](),
			Errors:   []int{404},
			json: func(c *call) (any, error) {
				return c.h.b.Trust(c.ctx(), c.params["agentId"])
			},
		},
		{
			Method: "GET", Path: "/v1/audit/checkpoint", Access: accessAny,
			Summary:     "The latest signed checkpoint of the ledger (C2SP signed note).",
			ContentType: "text/plain; charset=utf-8",
			raw: func(c *call) error {
				cp, err := c.h.b.Checkpoint(c.ctx())
				if err != nil {
					return err
				}
				c.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				c.w.Header().Set("Cache-Control", "no-store")
				c.w.WriteHeader(http.StatusOK)
				c.w.Write(cp)
				return nil
			},
		},
		{
			Method: "GET", Path: "/v1/audit/entries", Access: accessAdmin, Status: 200,
			Summary:  "Ledger entries with their hashes.",
			Query:    typeOf[EntriesQuery](),
			Response: typeOf[EntriesPage](),
			Errors:   []int{400, 403},
			json: func(c *call) (any, error) {
				q := c.r.URL.Query()
				from, err := uintParam(q, "from", 0, 0)
				if err != nil {
					return nil, err
				}
				limit, err := uintParam(q, "limit", defaultEntriesLimit, maxEntriesLimit)
				if err != nil {
					return nil, err
				}
				page, err := c.h.b.Entries(c.ctx(), from, limit)
				if err != nil {
					return nil, err
				}
				if page.Entries == nil {
					page.Entries = []EntryInfo{}
				}
				return page, nil
			},
		},
		{
			Method: "GET", Path: "/v1/openapi.json", Access: accessAny,
			Summary:     "This API's OpenAPI 3.1 document, generated from the route table and types.",
			ContentType: "application/json",
			raw: func(c *call) error {
				c.w.Header().Set("Content-Type", "application/json")
				c.w.WriteHeader(http.StatusOK)
				c.w.Write(c.h.openapi)
				return nil
			},
		},
		{
			Method: "GET", Path: "/metrics", Access: accessAdmin,
			Summary:     "Prometheus metrics (text format).",
			ContentType: "text/plain; version=0.0.4",
			Errors:      []int{403},
			raw: func(c *call) error {
				m := c.h.b.Metrics()
				if m == nil {
					return Errorf(http.StatusNotImplemented, CodeUnsupported, "metrics are not enabled")
				}
				m.ServeHTTP(c.w, c.r)
				return nil
			},
		},
	}
	rs = append(rs, witnessRoutes()...)
	rs = append(rs, disputeRoutes()...)
	rs = append(rs, backupRoute())
	for _, rt := range rs {
		rt.parse()
	}
	return rs
}

func invitationRoute(action string, accept bool) *route {
	return &route{
		Method: "POST", Path: "/v1/sessions/{sessionId}/" + action, Access: accessAgent, Status: 200,
		Summary:  strings.ToUpper(action[:1]) + action[1:] + " an invitation held for the caller by the node's consent policy.",
		Response: typeOf[SessionInfo](),
		Errors:   []int{403, 404, 409, 501},
		json: func(c *call) (any, error) {
			ir, err := extension[InvitationResponder](c, "invitations are not held by this node")
			if err != nil {
				return nil, err
			}
			if _, err := c.readBody(); err != nil {
				return nil, err
			}
			return ir.RespondInvitation(c.ctx(), c.p.Agent, c.params["sessionId"], accept)
		},
	}
}

func commitmentActionRoute(action, summary string, req reflect.Type, optional bool) *route {
	return &route{
		Method: "POST", Path: "/v1/commitments/{commitmentId}/" + action, Access: accessAgent, Status: 200,
		Summary: summary, Request: req, OptionalBody: optional,
		Response: typeOf[CommitmentInfo](),
		Errors:   []int{400, 403, 404, 409},
		json: func(c *call) (any, error) {
			raw, err := c.readBody()
			if err != nil {
				return nil, err
			}
			if raw == nil && !optional {
				return nil, BadRequest("request body must be a JSON object")
			}
			if action == "dispute" && raw != nil && isFiling(raw) {
				return fileDispute(c, raw)
			}
			if raw != nil {
				v := reflect.New(req)
				if err := decodeStrict(raw, v.Interface()); err != nil {
					return nil, err
				}
				if d, ok := v.Interface().(*DisputeRequest); ok && d.Reason == "" {
					return nil, BadRequest("reason is required")
				}
			}
			return c.h.b.CommitmentAction(c.ctx(), c.p.Agent, c.params["commitmentId"], action, raw)
		},
	}
}

func (rt *route) parse() {
	rt.greedy = -1
	for i, s := range strings.Split(strings.TrimPrefix(rt.Path, "/"), "/") {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			name := s[1 : len(s)-1]
			if n, ok := strings.CutSuffix(name, "..."); ok {
				if rt.greedy >= 0 {
					panic("api: two {param...} segments in " + rt.Path)
				}
				rt.greedy = i
				name = n
			}
			rt.segs = append(rt.segs, pathSeg{param: name})
			continue
		}
		rt.segs = append(rt.segs, pathSeg{lit: s})
	}
	if (rt.json == nil) == (rt.raw == nil) {
		panic("api: route needs exactly one of json and raw: " + rt.Path)
	}
}

func discoverQuery(q url.Values) (DiscoverQuery, error) {
	var d DiscoverQuery
	d.Capability = q.Get("capability")
	if d.Capability == "" {
		return d, BadRequest("capability is required")
	}
	if s := q.Get("min_trust"); s != "" {
		// NaN compares false with every bound: refuse it by name, as
		// ParseFloat also reads "Inf" and "NaN".
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) || v < 0 || v > 100 {
			return d, BadRequest("min_trust must be a number from 0 to 100")
		}
		d.MinTrust = v
	}
	limit, err := uintParam(q, "limit", defaultDiscoverLimit, maxDiscoverLimit)
	if err != nil {
		return d, err
	}
	d.Limit = int(limit)
	return d, nil
}

// uintParam parses a non-negative integer query parameter; absent → def;
// max > 0 caps it (a larger value is lowered to max).
func uintParam(q url.Values, name string, def, max uint64) (uint64, error) {
	s := q.Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, BadRequest("%s must be a non-negative integer", name)
	}
	if max > 0 && v > max {
		v = max
	}
	if max > 0 && v == 0 {
		return 0, BadRequest("%s must be at least 1", name)
	}
	return v, nil
}

func consentKeeper(c *call) (ConsentKeeper, error) {
	return extension[ConsentKeeper](c, "consent at run time is not supported by this node")
}

func mandateKeeper(c *call) (MandateKeeper, error) {
	return extension[MandateKeeper](c, "mandates are not supported by this node")
}
