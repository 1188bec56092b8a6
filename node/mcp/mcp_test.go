package mcp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/testnet"
	"github.com/aspnode/asp/testnet/scenario"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// bearer adds an Authorization header to every request.
type bearer struct {
	token string
	base  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// connectHTTP connects the go-sdk's MCP client to a node's /mcp with token.
func connectHTTP(t *testing.T, ctx context.Context, apiURL, token string) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	s, err := c.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   apiURL + "/mcp",
		HTTPClient: &http.Client{Transport: bearer{token, http.DefaultTransport}},
	}, nil)
	if err != nil {
		t.Fatalf("connect to %s/mcp: %v", apiURL, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// call calls a tool and decodes its JSON text into out (if not nil). A tool
// error fails the test.
func call(t *testing.T, ctx context.Context, s *mcp.ClientSession, name string, args map[string]any, out any) {
	t.Helper()
	text, isErr := callRaw(t, ctx, s, name, args)
	if isErr {
		t.Fatalf("%s: tool error: %s", name, text)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(text), out); err != nil {
			t.Fatalf("%s: decode %q: %v", name, text, err)
		}
	}
}

func callRaw(t *testing.T, ctx context.Context, s *mcp.ClientSession, name string, args map[string]any) (string, bool) {
	t.Helper()
	res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String(), res.IsError
}

func seedTerms(price string) map[string]any {
	var m map[string]any
	_ = json.Unmarshal(scenario.Terms(price, time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 1, 0)), &m)
	return m
}

type sessionView struct {
	SessionID    string `json:"sessionId"`
	State        string `json:"state"`
	CommitmentID string `json:"commitmentId"`
	OpenOffer    *struct {
		MessageID string `json:"messageId"`
		Yours     bool   `json:"yours"`
		Terms     struct {
			UnitPrice string `json:"unitPrice"`
		} `json:"terms"`
	} `json:"openOffer"`
}

type eventsView struct {
	Events []api.RecentEvent `json:"events"`
	Newest string            `json:"newest"`
}

// awaitEvent calls read_events, waiting, until an event of type typ that
// mentions want comes, or the context ends.
func awaitEvent(t *testing.T, ctx context.Context, s *mcp.ClientSession, after *string, typ, want string) api.RecentEvent {
	t.Helper()
	for ctx.Err() == nil {
		var ev eventsView
		call(t, ctx, s, "read_events", map[string]any{"after": *after, "wait_seconds": 20}, &ev)
		*after = ev.Newest
		for _, e := range ev.Events {
			raw, _ := json.Marshal(e.Data)
			if e.Type == typ && strings.Contains(string(raw), want) {
				return e
			}
		}
	}
	t.Fatalf("no %s event: %v", typ, ctx.Err())
	return api.RecentEvent{}
}

// Two agents of two real nodes close a deal through each node's /mcp with
// the go-sdk's own MCP client: the buyer discovers the vendor, opens a
// session and proposes; the vendor sees the move in read_events, reads the
// session and accepts; a second ACCEPT is refused with what the vendor may
// do instead; both read the commitment.
func TestMCPOverHTTPClosesADeal(t *testing.T) {
	net := testnet.New(t, 2)
	buyer := net.CreateAgent(0, "buyer")
	vendor := net.CreateAgent(1, "vendor", "compute.gpu-hours")
	ctx, cancel := net.Context()
	defer cancel()

	b := connectHTTP(t, ctx, net.Nodes[0].APIURL(), buyer.Token)
	v := connectHTTP(t, ctx, net.Nodes[1].APIURL(), vendor.Token)

	tools, err := b.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range tools.Tools {
		names = append(names, tl.Name)
		if tl.Description == "" || tl.InputSchema == nil {
			t.Errorf("tool %s has no description or input schema", tl.Name)
		}
	}
	for _, want := range []string{"discover_agents", "get_agent_card", "get_trust", "open_session", "list_sessions",
		"read_session", "send_move", "list_commitments", "read_commitment", "act_on_commitment", "read_events", "record_business_event"} {
		if !slices.Contains(names, want) {
			t.Errorf("tools/list lacks %s (has %v)", want, names)
		}
	}

	var vendorAfter string
	var start eventsView
	call(t, ctx, v, "read_events", nil, &start)
	vendorAfter = start.Newest

	net.Await("the buyer discovers the vendor", func() bool {
		var r api.DiscoverResult
		call(t, ctx, b, "discover_agents", map[string]any{"capability": "compute.gpu-hours"}, &r)
		return slices.ContainsFunc(r.Agents, func(a api.DiscoveredAgent) bool { return a.AgentID == vendor.ID })
	})
	var trust api.TrustInfo
	call(t, ctx, b, "get_trust", map[string]any{"agent_id": vendor.ID}, &trust)
	if trust.AgentID != vendor.ID {
		t.Fatalf("get_trust answered for %q", trust.AgentID)
	}

	var s sessionView
	call(t, ctx, b, "open_session", map[string]any{"to": vendor.ID}, &s)
	if s.SessionID == "" {
		t.Fatal("open_session gave no session id")
	}
	var sent api.SendMessageResult
	call(t, ctx, b, "send_move", map[string]any{"session_id": s.SessionID, "performative": "PROPOSE", "terms": seedTerms("2.40")}, &sent)

	// The vendor learns of the offer from its events.
	awaitEvent(t, ctx, v, &vendorAfter, "message", sent.MessageID)
	var vs sessionView
	call(t, ctx, v, "read_session", map[string]any{"session_id": s.SessionID}, &vs)
	if vs.OpenOffer == nil || vs.OpenOffer.MessageID != sent.MessageID || vs.OpenOffer.Yours || vs.OpenOffer.Terms.UnitPrice != "2.40" {
		t.Fatalf("vendor's read_session shows open offer %+v, want the buyer's %s at 2.40", vs.OpenOffer, sent.MessageID)
	}
	var acc api.SendMessageResult
	call(t, ctx, v, "send_move", map[string]any{"session_id": s.SessionID, "performative": "ACCEPT", "reference_id": sent.MessageID}, &acc)
	if acc.CommitmentID == "" {
		t.Fatalf("ACCEPT formed no commitment: %+v", acc)
	}

	// A move the session does not allow is a tool error the model can act on.
	text, isErr := callRaw(t, ctx, v, "send_move", map[string]any{"session_id": s.SessionID, "performative": "ACCEPT", "reference_id": sent.MessageID})
	if !isErr || !strings.Contains(text, "invalid_transition") || !strings.Contains(text, "PROPOSE") {
		t.Fatalf("second ACCEPT: isError=%v %q; want invalid_transition and what may be done", isErr, text)
	}

	net.Await("the buyer's node holds the commitment", func() bool {
		var cm api.CommitmentInfo
		text, isErr := callRaw(t, ctx, b, "read_commitment", map[string]any{"commitment_id": acc.CommitmentID})
		return !isErr && json.Unmarshal([]byte(text), &cm) == nil && cm.State == "ACTIVE"
	})
	var list struct {
		Commitments []api.CommitmentInfo `json:"commitments"`
	}
	call(t, ctx, v, "list_commitments", nil, &list)
	if len(list.Commitments) != 1 || list.Commitments[0].CommitmentID != acc.CommitmentID {
		t.Fatalf("vendor's list_commitments: %+v", list.Commitments)
	}
	// The same, as resources.
	rr, err := v.ReadResource(ctx, &mcp.ReadResourceParams{URI: "asp://sessions/" + s.SessionID})
	if err != nil {
		t.Fatal(err)
	}
	var rs sessionView
	if len(rr.Contents) != 1 || json.Unmarshal([]byte(rr.Contents[0].Text), &rs) != nil || rs.CommitmentID != acc.CommitmentID {
		t.Fatalf("session resource: %+v", rr.Contents)
	}
	if rr, err = v.ReadResource(ctx, &mcp.ReadResourceParams{URI: "asp://commitments/" + acc.CommitmentID}); err != nil || !strings.Contains(rr.Contents[0].Text, acc.CommitmentID) {
		t.Fatalf("commitment resource: %+v %v", rr, err)
	}
	if _, err := v.ReadResource(ctx, &mcp.ReadResourceParams{URI: "asp://commitments/cmt_none"}); err == nil {
		t.Fatal("a commitment that does not exist reads")
	}
	templates, err := v.ListResourceTemplates(ctx, nil)
	if err != nil || len(templates.ResourceTemplates) != 2 {
		t.Fatalf("resource templates: %+v %v", templates, err)
	}

	// The vendor claims fulfilment, the buyer confirms it.
	var cm api.CommitmentInfo
	call(t, ctx, v, "act_on_commitment", map[string]any{"commitment_id": acc.CommitmentID, "action": "fulfill",
		"note": "delivered", "evidence": map[string]any{"invoice": "INV-7"}}, &cm)
	net.Await("the buyer's node holds the fulfilment claim", func() bool {
		text, isErr := callRaw(t, ctx, b, "read_commitment", map[string]any{"commitment_id": acc.CommitmentID})
		return !isErr && json.Unmarshal([]byte(text), &cm) == nil && cm.State == "FULFILLMENT_CLAIMED"
	})
	call(t, ctx, b, "act_on_commitment", map[string]any{"commitment_id": acc.CommitmentID, "action": "confirm"}, &cm)
	if cm.State != "FULFILLED" {
		t.Fatalf("after confirm: %s", cm.State)
	}
	if text, isErr := callRaw(t, ctx, b, "act_on_commitment", map[string]any{"commitment_id": acc.CommitmentID, "action": "pay"}); !isErr || !strings.Contains(text, "fulfill, confirm or dispute") {
		t.Fatalf("an unknown action: isError=%v %q", isErr, text)
	}

	var rec api.AuditEventResult
	call(t, ctx, v, "record_business_event", map[string]any{"type": "order.accepted", "commitment_id": acc.CommitmentID,
		"data": map[string]any{"order": "PO-1042"}}, &rec)
	if len(rec.Hash) != 64 {
		t.Fatalf("record_business_event: %+v", rec)
	}
	if text, isErr := callRaw(t, ctx, v, "record_business_event", map[string]any{"type": "Not A Type"}); !isErr || !strings.Contains(text, "bad_request") {
		t.Fatalf("a bad event type: isError=%v %q", isErr, text)
	}
	if n, err := strconv.ParseUint(vendorAfter, 10, 64); err != nil || n == 0 {
		t.Fatalf("read_events newest %q is not an event id", vendorAfter)
	}
}
