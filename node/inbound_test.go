package node

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
)

const sessionsRefused = "asp_sessions_refused_total"

// invitation prepares and seals an invitation from m's agent to the agent
// to, without sending it.
func (m *hostilePeer) invitation(t *testing.T, to string) *protocol.Envelope {
	t.Helper()
	_, inv := m.invitationAt(t, to, time.Now())
	return inv
}

// invitationAt is invitation at the time at; it also returns the new
// session (not stepped).
func (m *hostilePeer) invitationAt(t *testing.T, to string, at time.Time) (*protocol.Session, *protocol.Envelope) {
	t.Helper()
	toID, err := protocol.ParseAgentID(to)
	if err != nil {
		t.Fatal(err)
	}
	sid, err := protocol.NewSessionID(at, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := protocol.NewSession(protocol.Config{}, sid, m.agent(), toID, at)
	return s, m.moveAt(t, s, protocol.Propose, &protocol.ProposeBody{Type: protocol.InvitationType, Subject: "GPU capacity"}, at)
}

// refusedForCapacity sends inv from m to v and checks that it is refused as
// capacity_unavailable, counted under reason, and leaves v unchanged.
func refusedForCapacity(t *testing.T, m *hostilePeer, v *Node, inv *protocol.Envelope, reason string) {
	t.Helper()
	before := fingerprint(t, v)
	wire := metric(t, v, wireRefused, "code", protocol.CodeCapacityUnavailable)
	refused := metric(t, v, sessionsRefused, "reason", reason)
	expectRefusal(t, v, m.request(t, v, envReq(t, inv)), protocol.CodeCapacityUnavailable, wire)
	if got := metric(t, v, sessionsRefused, "reason", reason); got != refused+1 {
		t.Errorf("%s{reason=%q} = %v, want %v", sessionsRefused, reason, got, refused+1)
	}
	if v.getSession(inv.SessionID) != nil {
		t.Errorf("session %s of a refused invitation is kept", inv.SessionID)
	}
	assertUnchanged(t, "an invitation beyond the bound", v, before)
}

// TestInboundSessionBounds: a peer that floods invitations is refused
// capacity_unavailable beyond its per-organisation bound, and many peers
// together beyond the node-wide one, with nothing recorded or kept; a peer
// with live business still opens sessions, an inviting node's agent sees
// 503 capacity_unavailable (retryable), and room comes back as sessions end.
func TestInboundSessionBounds(t *testing.T) {
	dir := t.TempDir()
	bn := startNode(t, filepath.Join(dir, "buyer-org"))
	vn := startNodeWith(t, filepath.Join(dir, "vendor-org"), func(c *Config) {
		c.MaxInboundSessionsPerOrg = 3
		c.MaxInboundSessions = 4
	})
	t.Cleanup(func() { bn.Close(); vn.Close() })
	connect(t, bn, vn)
	p := withAgents(t, bn, vn)
	ctx := context.Background()

	// The buyer has live business with the vendor: one open session it
	// opened, one ACTIVE commitment.
	id := seedDeal(t, p)
	awaitActive(t, vn, id)

	flood := newHostilePeer(t, "flood", vn)
	var held []*protocol.Session
	for range 3 {
		held = append(held, flood.invite(t, vn, p.vendor))
	}
	inv := flood.invitation(t, p.vendor)
	refusedForCapacity(t, flood, vn, inv, "org")
	// Resent, it is refused again: nothing of it was kept.
	refusedForCapacity(t, flood, vn, inv, "org")

	// A second identity fills the node-wide bound (3 + 1 = 4: the buyer's
	// session holds a commitment, and a deal made no longer counts) and is
	// refused beyond it.
	other := newHostilePeer(t, "other", vn)
	otherHeld := other.invite(t, vn, p.vendor)
	refusedForCapacity(t, other, vn, other.invitation(t, p.vendor), "node")

	// The buyer, with a commitment in force, is admitted beyond the
	// node-wide bound, up to its own per-organisation bound.
	var opened []string
	for range 3 {
		s, err := bn.OpenSession(ctx, p.buyer, api.OpenSessionRequest{To: p.vendor})
		if err != nil || s.State != "INTRODUCED" {
			t.Fatalf("a partner's invitation beyond the node-wide bound: %+v, %v", s, err)
		}
		opened = append(opened, s.SessionID)
	}
	// Its agent sees the refusal of the next as a retryable 503.
	admin, err := ReadAdminToken(bn.cfg.Home)
	if err != nil {
		t.Fatal(err)
	}
	code, body := apiCall(t, bn.Handler(), "POST", "/v1/agents", admin, `{"name":"alice","capabilities":["procurement"]}`)
	if code != 201 {
		t.Fatalf("create alice: %d %s", code, body)
	}
	var alice api.CreateAgentResponse
	if err := json.Unmarshal([]byte(body), &alice); err != nil {
		t.Fatal(err)
	}
	before := fingerprint(t, vn)
	code, body = apiCall(t, bn.Handler(), "POST", "/v1/sessions", alice.Token, `{"to":"`+p.vendor+`"}`)
	if e := apiError(t, body); code != 503 || e.Code != protocol.CodeCapacityUnavailable || !e.Retryable {
		t.Fatalf("invitation beyond the bound: %d %s", code, body)
	}
	assertUnchanged(t, "a partner's invitation beyond its bound", vn, before)

	// Room comes back as sessions end. The flooding peer and the other
	// close their sessions (open then: buyer 3) and the flooding peer may
	// open one more, up to the node-wide bound.
	cl := other.move(t, otherHeld, protocol.Close, &protocol.CloseBody{Reason: "done"})
	if resp := other.request(t, vn, envReq(t, cl)); resp.Code != "" {
		t.Fatalf("CLOSE: %s: %s", resp.Code, resp.Message)
	}
	for _, s := range held {
		cl := flood.move(t, s, protocol.Close, &protocol.CloseBody{Reason: "done"})
		if resp := flood.request(t, vn, envReq(t, cl)); resp.Code != "" {
			t.Fatalf("CLOSE: %s: %s", resp.Code, resp.Message)
		}
	}
	flood.invite(t, vn, p.vendor)
	refusedForCapacity(t, flood, vn, flood.invitation(t, p.vendor), "node")
	// The buyer closes one of its sessions, and its agent may open another.
	if _, err := bn.SendMessage(ctx, p.buyer, opened[0], api.SendMessageRequest{Performative: "CLOSE", Body: []byte(`{"reason":"done"}`)}); err != nil {
		t.Fatal(err)
	}
	if code, body := apiCall(t, bn.Handler(), "POST", "/v1/sessions", alice.Token, `{"to":"`+p.vendor+`"}`); code != 201 {
		t.Fatalf("invitation after a session ended: %d %s", code, body)
	}
}

// TestInboundBoundAfterRestart: the sessions a peer opened are counted again
// after a restart, and closed ones are not.
func TestInboundBoundAfterRestart(t *testing.T) {
	home := filepath.Join(t.TempDir(), "vendor-org")
	bound := func(c *Config) { c.MaxInboundSessionsPerOrg = 2 }
	vn := startNodeWith(t, home, bound)
	ra, err := vn.CreateAgent(context.Background(), api.CreateAgentRequest{Name: "vendor", Capabilities: []string{"compute.gpu-hours"}})
	if err != nil {
		t.Fatal(err)
	}
	flood := newHostilePeer(t, "flood", vn)
	held := flood.invite(t, vn, ra.AgentID)
	flood.invite(t, vn, ra.AgentID)
	cl := flood.move(t, held, protocol.Close, &protocol.CloseBody{Reason: "done"})
	if resp := flood.request(t, vn, envReq(t, cl)); resp.Code != "" {
		t.Fatalf("CLOSE: %s: %s", resp.Code, resp.Message)
	}
	if err := vn.Close(); err != nil {
		t.Fatal(err)
	}
	flood.h.Close()
	v2 := startNodeWith(t, home, bound)
	t.Cleanup(func() { v2.Close() })
	flood2 := newHostilePeer(t, "flood", v2)
	flood2.invite(t, v2, ra.AgentID)
	refusedForCapacity(t, flood2, v2, flood2.invitation(t, ra.AgentID), "org")
}

// TestInboundIdleStopsCounting: a session the peer opened and left without
// a move for longer than inboundIdle stops counting toward its bound, so
// that forgotten sessions never lock a partner out for good.
func TestInboundIdleStopsCounting(t *testing.T) {
	cv := startClockedVendor(t, func(c *Config) { c.MaxInboundSessionsPerOrg = 1 })
	v, vendor, offset, clock := cv.n, cv.vendor, cv.offset, cv.clock
	flood := newHostilePeer(t, "flood", v)
	flood.invite(t, v, vendor)
	refusedForCapacity(t, flood, v, flood.invitation(t, vendor), "org")

	// An hour and a minute later (by the node's clock) the first session
	// has seen no move: a new invitation, timestamped by that clock, is
	// admitted.
	offset.Store(int64(inboundIdle + time.Minute))
	_, inv := flood.invitationAt(t, vendor, clock())
	if resp := flood.request(t, v, envReq(t, inv)); resp.Code != "" {
		t.Fatalf("invitation after the first session went idle: %s: %s", resp.Code, resp.Message)
	}
}
