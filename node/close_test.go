package node

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aspnode/asp/node/api"
)

// A node closed while its timer loop is resending a move to a counterparty
// that is down shuts down cleanly: the loop finishes its request against a
// closed host instead of finding the host gone (a nil pointer, and under
// the race detector a data race on the node's fields). A second Close
// answers as the first did.
func TestCloseWhileResending(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	s, err := p.buyerNode.OpenSession(ctx, p.buyer, api.OpenSessionRequest{To: p.vendor})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.vendorNode.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = p.buyerNode.SendMessage(ctx, p.buyer, s.SessionID, api.SendMessageRequest{Performative: "PROPOSE", Terms: terms("2.40")})
	if err == nil || api.ErrorFor(err).Code != api.CodeTimeout {
		t.Fatalf("PROPOSE to a stopped node: %v, want a timeout error", err)
	}
	// The loop has resent at least once, and goes on resending every second.
	for deadline := time.Now().Add(30 * time.Second); metric(t, p.buyerNode, "asp_resends_total") < 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no resend within 30 s")
		}
	}
	first := p.buyerNode.Close()
	if again := p.buyerNode.Close(); !errors.Is(again, first) && (again != nil || first != nil) {
		t.Fatalf("second Close = %v, first = %v", again, first)
	}
	// The closed node answers with errors, not panics.
	if _, err := p.buyerNode.Checkpoint(ctx); err == nil {
		t.Fatal("checkpoint of a closed node")
	}
}

// An invitation to a node that is down answers 504 with the session's id,
// and the agent can end that session at once: CLOSE while the invitation
// is pending supersedes it, the session reads FAILED, and nothing is
// resent.
func TestUnacknowledgedInvitationCanBeClosed(t *testing.T) {
	p := newPair(t)
	hb := p.buyerNode.Handler()
	admin, err := ReadAdminToken(p.buyerNode.cfg.Home)
	if err != nil {
		t.Fatal(err)
	}
	code, body := apiCall(t, hb, "POST", "/v1/agents", admin, `{"name":"closer","capabilities":["procurement"]}`)
	if code != 201 {
		t.Fatalf("create agent: %d %s", code, body)
	}
	var ag api.CreateAgentResponse
	if err := json.Unmarshal([]byte(body), &ag); err != nil {
		t.Fatal(err)
	}
	if err := p.vendorNode.Close(); err != nil {
		t.Fatal(err)
	}
	code, body = apiCall(t, hb, "POST", "/v1/sessions", ag.Token, `{"to":"`+p.vendor+`"}`)
	e := apiError(t, body)
	if code != 504 || e.Code != api.CodeTimeout || !e.Retryable || e.SessionID == "" {
		t.Fatalf("invitation to a stopped node: %d %+v, want 504 timeout with the session id", code, e)
	}
	code, body = apiCall(t, hb, "POST", "/v1/sessions/"+e.SessionID+"/messages", ag.Token, `{"performative":"CLOSE"}`)
	if code != 201 || !strings.Contains(body, `"state":"FAILED"`) {
		t.Fatalf("CLOSE with the invitation pending: %d %s", code, body)
	}
	code, body = apiCall(t, hb, "GET", "/v1/sessions/"+e.SessionID, ag.Token, "")
	if code != 200 || !strings.Contains(body, `"state":"FAILED"`) {
		t.Fatalf("session after CLOSE: %d %s", code, body)
	}
	s := p.buyerNode.getSession(e.SessionID)
	if err := s.acquire(context.Background(), false, false); err != nil {
		t.Fatal(err)
	}
	pending := s.pending
	s.release()
	if pending != nil {
		t.Fatal("the invitation is still pending after CLOSE")
	}
	// A second move is refused: the session has ended.
	code, body = apiCall(t, hb, "POST", "/v1/sessions/"+e.SessionID+"/messages", ag.Token, `{"performative":"CLOSE"}`)
	if code != 409 || apiError(t, body).Code != api.CodeInvalidTransition {
		t.Fatalf("a move after the end: %d %s", code, body)
	}
}
