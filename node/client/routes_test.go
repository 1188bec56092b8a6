package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/node/client"
)

// The routes the round trip in client_test.go leaves out, served by the
// same in-memory backend.

func (b *backend) DeleteAgent(_ context.Context, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.agents[id]; !ok {
		return api.NotFound("no agent %s", id)
	}
	delete(b.agents, id)
	for tok, p := range b.tokens {
		if p.Agent == id {
			delete(b.tokens, tok)
		}
	}
	b.closeSubs()
	return nil
}

func (b *backend) AgentCard(_ context.Context, id string) (json.RawMessage, error) {
	return json.Marshal(map[string]string{"agentId": id, "signature": "sig"})
}

func (b *backend) Discover(_ context.Context, q api.DiscoverQuery) (api.DiscoverResult, error) {
	b.mu.Lock()
	b.lastDiscover = q
	b.mu.Unlock()
	return api.DiscoverResult{Agents: []api.DiscoveredAgent{{AgentID: vendor, Org: "other", Capabilities: []string{q.Capability},
		Trust: api.TrustSummary{Score: 71.5, Level: "good", Completed: 3}}}}, nil
}

func (b *backend) Sessions(_ context.Context, p api.Principal) ([]api.SessionInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ss []api.SessionInfo
	for _, s := range b.sessions {
		if p.Admin || slices.Contains(s.Participants, p.Agent) {
			ss = append(ss, *s)
		}
	}
	return ss, nil
}

func (b *backend) RespondInvitation(_ context.Context, agent, sid string, accept bool) (api.SessionInfo, error) {
	state := "DECLINED"
	if accept {
		state = "OPEN"
	}
	return api.SessionInfo{SessionID: sid, State: state, Participants: []string{vendor, agent}}, nil
}

func (b *backend) CommitmentAction(_ context.Context, agent, id, action string, body json.RawMessage) (api.CommitmentInfo, error) {
	b.mu.Lock()
	b.lastAction = action + " " + string(body)
	b.mu.Unlock()
	return api.CommitmentInfo{CommitmentID: id, State: strings.ToUpper(action), Parties: []string{agent}}, nil
}

func (b *backend) Trust(_ context.Context, id string) (api.TrustInfo, error) {
	if id != vendor {
		return api.TrustInfo{}, api.NotFound("no agent %s", id)
	}
	return api.TrustInfo{AgentID: id, Score: 71.5, Level: "good", Completed: 3, Components: map[string]float64{"fulfilment": 1}}, nil
}

func (b *backend) Metrics() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("asp_up 1\n")) })
}

func TestClientMoreRoutes(t *testing.T) {
	ctx := context.Background()
	b := newBackend()
	admin := serve(t, b)
	created, err := admin.CreateAgent(ctx, api.CreateAgentRequest{Name: "buyer"})
	if err != nil {
		t.Fatal(err)
	}
	buyer := admin.WithToken(created.Token)

	res, err := buyer.Discover(ctx, api.DiscoverQuery{Capability: "compute.gpu-hours", MinTrust: 50.5, Limit: 7})
	if err != nil || len(res.Agents) != 1 || res.Agents[0].Trust.Score != 71.5 {
		t.Fatalf("Discover = %+v, %v", res, err)
	}
	if q := b.lastDiscover; q.Capability != "compute.gpu-hours" || q.MinTrust != 50.5 || q.Limit != 7 {
		t.Fatalf("discover query arrived as %+v", q)
	}
	card, err := buyer.AgentCard(ctx, vendor)
	if err != nil || !strings.Contains(string(card), `"agentId":"`+vendor+`"`) {
		t.Fatalf("AgentCard = %s, %v", card, err)
	}
	tr, err := buyer.Trust(ctx, vendor)
	if err != nil || tr.Level != "good" || tr.Components["fulfilment"] != 1 {
		t.Fatalf("Trust = %+v, %v", tr, err)
	}

	s, err := buyer.OpenSession(ctx, vendor)
	if err != nil {
		t.Fatal(err)
	}
	offer, err := buyer.Propose(ctx, s.SessionID, client.Terms{Resource: "gpu-hours", Quantity: "1000", Unit: "hour", UnitPrice: "2.40", Currency: "USD"})
	if err != nil || b.lastSend.Performative != "PROPOSE" || !strings.Contains(string(b.lastSend.Terms), `"unitPrice":"2.40"`) {
		t.Fatalf("Propose = %+v, %v (sent %+v)", offer, err, b.lastSend)
	}
	if _, err := buyer.Counter(ctx, s.SessionID, "msg_1", json.RawMessage(`{"unitPrice":"2.50"}`)); err != nil ||
		b.lastSend.Performative != "COUNTER" || b.lastSend.ReferenceID != "msg_1" || string(b.lastSend.Terms) != `{"unitPrice":"2.50"}` {
		t.Fatalf("Counter sent %+v, %v", b.lastSend, err)
	}
	if _, err := buyer.Reject(ctx, s.SessionID, "msg_2", "too dear"); err != nil ||
		b.lastSend.Performative != "REJECT" || string(b.lastSend.Body) != `{"reason":"too dear"}` {
		t.Fatalf("Reject sent %+v, %v", b.lastSend, err)
	}
	if _, err := buyer.Accept(ctx, s.SessionID, "msg_3"); err != nil || b.lastSend.Performative != "ACCEPT" || b.lastSend.ReferenceID != "msg_3" {
		t.Fatalf("Accept sent %+v, %v", b.lastSend, err)
	}
	ss, err := buyer.Sessions(ctx)
	if err != nil || len(ss) != 1 || ss[0].SessionID != s.SessionID {
		t.Fatalf("Sessions = %+v, %v", ss, err)
	}
	if got, err := buyer.AcceptInvitation(ctx, "ses_9"); err != nil || got.State != "OPEN" {
		t.Fatalf("AcceptInvitation = %+v, %v", got, err)
	}
	if got, err := buyer.DeclineInvitation(ctx, "ses_9"); err != nil || got.State != "DECLINED" {
		t.Fatalf("DeclineInvitation = %+v, %v", got, err)
	}

	for _, tc := range []struct {
		call func() (api.CommitmentInfo, error)
		want string
	}{
		{func() (api.CommitmentInfo, error) {
			return buyer.Fulfill(ctx, "cmt_1", api.FulfillRequest{Note: "delivered"})
		}, `fulfill {"note":"delivered"}`},
		{func() (api.CommitmentInfo, error) { return buyer.Confirm(ctx, "cmt_1", api.ConfirmRequest{}) }, `confirm {}`},
		{func() (api.CommitmentInfo, error) {
			return buyer.Dispute(ctx, "cmt_1", api.DisputeRequest{Reason: "late", Severity: "minor"})
		}, `dispute {"reason":"late","severity":"minor"}`},
	} {
		c, err := tc.call()
		if err != nil || c.CommitmentID != "cmt_1" || b.lastAction != tc.want {
			t.Errorf("commitment action: %+v, %v; backend got %q, want %q", c, err, b.lastAction, tc.want)
		}
	}

	if doc, err := buyer.OpenAPI(ctx); err != nil || !strings.Contains(string(doc), `"openapi": "3.1.0"`) {
		t.Fatalf("OpenAPI: %v", err)
	}
	if m, err := admin.Metrics(ctx); err != nil || m != "asp_up 1\n" {
		t.Fatalf("Metrics = %q, %v", m, err)
	}
	if err := admin.DeleteAgent(ctx, created.AgentID); err != nil {
		t.Fatal(err)
	}
	if err := admin.DeleteAgent(ctx, created.AgentID); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("DeleteAgent twice: %v", err)
	}
	if _, err := buyer.Sessions(ctx); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("deleted agent's token: %v", err)
	}
}

// Errors carry the status, the code, the retryable flag, and match the
// sentinels of their code only.
func TestClientErrorSentinels(t *testing.T) {
	ctx := context.Background()
	b := newBackend()
	admin := serve(t, b)
	created, _ := admin.CreateAgent(ctx, api.CreateAgentRequest{Name: "buyer"})
	buyer := admin.WithToken(created.Token)
	s, _ := buyer.OpenSession(ctx, vendor)

	_, err := buyer.Send(ctx, s.SessionID, api.SendMessageRequest{Performative: "ACCEPT"})
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 409 || e.Code != api.CodeInvalidTransition || e.Retryable ||
		e.Method != "POST" || e.Path != "/v1/sessions/"+s.SessionID+"/messages" {
		t.Fatalf("err = %#v", e)
	}
	if !errors.Is(err, client.ErrInvalidTransition) || errors.Is(err, client.ErrNotFound) || client.IsRetryable(err) {
		t.Fatalf("sentinels disagree with %v", err)
	}

	b.mu.Lock()
	b.busy = true
	b.mu.Unlock()
	_, err = buyer.Send(ctx, s.SessionID, api.SendMessageRequest{Performative: "PROPOSE", Terms: json.RawMessage(`{}`)})
	if !errors.Is(err, client.ErrBusy) || !client.IsRetryable(err) {
		t.Fatalf("busy answer: %v (retryable %v)", err, client.IsRetryable(err))
	}
	if _, err := buyer.Trust(ctx, "agent://nobody/x"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Trust of an unknown agent: %v", err)
	}
}

// AllEntries walks the ledger page after page, from any index, and stops
// where the caller stops.
func TestAllEntries(t *testing.T) {
	ctx := context.Background()
	admin := serve(t, newBackend())
	var got []uint64
	for e, err := range admin.AllEntries(ctx, 0, 2) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Index)
	}
	if !slices.Equal(got, []uint64{0, 1, 2, 3, 4}) {
		t.Fatalf("entries %v", got)
	}
	got = nil
	for e, err := range admin.AllEntries(ctx, 3, 0) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Index)
	}
	if !slices.Equal(got, []uint64{3, 4}) {
		t.Fatalf("entries from 3: %v", got)
	}
	n := 0
	for range admin.AllEntries(ctx, 0, 1) {
		if n++; n == 2 {
			break
		}
	}
	for _, err := range admin.WithToken("nobody").AllEntries(ctx, 0, 0) {
		if !errors.Is(err, client.ErrUnauthorized) {
			t.Fatalf("AllEntries with an unknown token: %v", err)
		}
	}
}
