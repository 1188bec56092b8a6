package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/p2p"
	"github.com/aspnode/asp/protocol"
	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p/core/peer"
)

// scripted is a counterparty played by hand on a bare libp2p host: its copy
// of the session, and an answer chosen by the test for each envelope that
// arrives. By default it verifies the envelope, steps its copy and
// acknowledges; it accepts invitations and answers head requests from its
// copy as an honest node would.
type scripted struct {
	*hostilePeer
	mu     sync.Mutex
	s      *protocol.Session
	answer func(env *protocol.Envelope) (*wireResp, error) // nil result: step and acknowledge
	tail   [][]byte                                        // if set, the tail of every head answer
	got    chan *protocol.Envelope                         // envelopes received
	heads  chan *wireReq                                   // head requests received
}

func newScripted(t *testing.T, label string, v *Node) *scripted {
	t.Helper()
	sp := &scripted{hostilePeer: newHostilePeer(t, label, v), got: make(chan *protocol.Envelope, 64), heads: make(chan *wireReq, 64)}
	sp.h.Handle(p2p.SessionProtocol, sp.serve)
	return sp
}

func (sp *scripted) serve(_ context.Context, _ peer.ID, b []byte) ([]byte, error) {
	r, err := decodeWireReq(b)
	if err != nil {
		return nil, err
	}
	switch r.Type {
	case wireEnvelope:
		env, err := protocol.DecodeEnvelope(r.Envelope)
		if err != nil {
			return nil, err
		}
		if isInvitation(env) {
			return sp.acceptInvitation(env)
		}
		sp.got <- env
		sp.mu.Lock()
		ans := sp.answer
		sp.mu.Unlock()
		if ans != nil {
			resp, err := ans(env)
			if err != nil {
				return nil, err
			}
			if resp != nil {
				return cbor.Marshal(resp)
			}
		}
		return cbor.Marshal(sp.step(env))
	case wireHead:
		sp.heads <- r
		return cbor.Marshal(sp.head(r))
	}
	return cbor.Marshal(&wireResp{})
}

func (sp *scripted) setAnswer(f func(env *protocol.Envelope) (*wireResp, error)) {
	sp.mu.Lock()
	sp.answer = f
	sp.mu.Unlock()
}

// step applies env to the copy (a resend of a held envelope is
// acknowledged again).
func (sp *scripted) step(env *protocol.Envelope) *wireResp {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if _, ok := sp.s.Envelope(env.MessageID); ok {
		return &wireResp{}
	}
	if _, err := sp.s.Step(env, time.Now()); err != nil {
		return &wireResp{Code: protocol.ErrorCode(err), Message: err.Error()}
	}
	return &wireResp{}
}

func (sp *scripted) acceptInvitation(inv *protocol.Envelope) ([]byte, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	from, err := protocol.ParseAgentID(inv.Sender)
	if err != nil {
		return nil, err
	}
	sp.s = protocol.NewSession(protocol.Config{}, inv.SessionID, from, sp.agent(), time.Now())
	if _, err := sp.s.Step(inv, time.Now()); err != nil {
		return nil, err
	}
	acc, err := sp.sign(protocol.Accept, &protocol.AcceptBody{ReferenceID: inv.MessageID})
	if err != nil {
		return nil, err
	}
	if _, err := sp.s.Step(acc, time.Now()); err != nil {
		return nil, err
	}
	raw, err := protocol.EncodeEnvelope(acc)
	if err != nil {
		return nil, err
	}
	return cbor.Marshal(&wireResp{Reply: raw})
}

// sign prepares and seals the next move of sp's agent (not stepped).
// REQUIRES: sp.mu.
func (sp *scripted) sign(p protocol.Performative, body protocol.Body) (*protocol.Envelope, error) {
	env, err := sp.s.Prepare(sp.agent(), p, body, time.Now(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return env, env.Seal(sp.party.AgentKey, sp.cert)
}

// head answers a head request from the copy, as onHead does.
func (sp *scripted) head(r *wireReq) *wireResp {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	tr := sp.s.Transcript()
	h := sp.s.Head()
	resp := &wireResp{Length: uint64(len(tr)), Head: h[:]}
	if sp.tail != nil {
		resp.Tail = sp.tail
		return resp
	}
	if k := r.Length; k < uint64(len(tr)) && (k == 0 || hashAt(tr, k-1, r.Head)) {
		for _, e := range tr[k:] {
			raw, _ := protocol.EncodeEnvelope(e)
			resp.Tail = append(resp.Tail, raw)
		}
	}
	return resp
}

// move signs the next move of sp's agent; the copy is stepped only if
// apply is set.
func (sp *scripted) move(t *testing.T, p protocol.Performative, body protocol.Body, apply bool) *protocol.Envelope {
	t.Helper()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	env, err := sp.sign(p, body)
	if err != nil {
		t.Fatal(err)
	}
	if apply {
		if _, err := sp.s.Step(env, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return env
}

func (sp *scripted) apply(t *testing.T, env *protocol.Envelope) {
	t.Helper()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if _, err := sp.s.Step(env, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func (sp *scripted) transcript() []string {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	var ids []string
	for _, e := range sp.s.Transcript() {
		h := e.Hash()
		ids = append(ids, fmt.Sprintf("%s/%x", e.MessageID, h[:8]))
	}
	return ids
}

// transcriptOf lists the message ids and hashes of session sid on n.
func transcriptOf(t *testing.T, n *Node, sid string) ([]string, api.SessionInfo) {
	t.Helper()
	info, err := n.Session(context.Background(), api.Principal{Admin: true}, sid)
	if err != nil {
		t.Fatal(err)
	}
	s := n.getSession(sid)
	var ids []string
	for _, e := range s.snapshot().tr {
		h := e.Hash()
		ids = append(ids, fmt.Sprintf("%s/%x", e.MessageID, h[:8]))
	}
	return ids, info
}

func sameTranscript(t *testing.T, n *Node, sid string, sp *scripted) api.SessionInfo {
	t.Helper()
	got, info := transcriptOf(t, n, sid)
	if want := sp.transcript(); !slices.Equal(got, want) {
		t.Fatalf("transcripts differ:\nnode    %v\nscripted %v", got, want)
	}
	if len(info.Messages) != len(got) {
		t.Fatalf("the API shows %d messages, the session holds %d", len(info.Messages), len(got))
	}
	return info
}

func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case x := <-ch:
		return x
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not happen", what)
	}
	var zero T
	return zero
}

func refusalsIn(t *testing.T, n *Node) []refusal {
	t.Helper()
	ents, err := n.led.Entries(0, n.led.Size())
	if err != nil {
		t.Fatal(err)
	}
	var out []refusal
	for _, e := range ents {
		if e.Kind == kindMessageRefused {
			var r refusal
			if err := cbor.Unmarshal(e.Body, &r); err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
	}
	return out
}

func singleNode(t *testing.T, name string, caps string) (*Node, string) {
	t.Helper()
	n := startNode(t, filepath.Join(t.TempDir(), name+"-org"))
	t.Cleanup(func() { n.Close() })
	r, err := n.CreateAgent(context.Background(), api.CreateAgentRequest{Name: name, Capabilities: []string{caps}})
	if err != nil {
		t.Fatal(err)
	}
	return n, r.AgentID
}

// The interleaving that wedged sessions: the vendor's COUNTER is recorded
// and acknowledged by the buyer's node, the acknowledgement is lost, and
// the vendor resends it while the buyer's agent is sending its next
// PROPOSE. The resend is answered as the first time (not "busy"), both
// transcripts are equal and the session goes on.
func TestResendDuringOwnMoveIsAcknowledged(t *testing.T) {
	ctx := context.Background()
	b, buyer := singleNode(t, "buyer", "procurement")
	vendor := newScripted(t, "wedge-vendor", b)
	s, err := b.OpenSession(ctx, buyer, api.OpenSessionRequest{To: vendor.agent().String()})
	if err != nil || s.State != "INTRODUCED" {
		t.Fatalf("open: %s %v", s.State, err)
	}
	first, err := b.SendMessage(ctx, buyer, s.SessionID, api.SendMessageRequest{Performative: "PROPOSE", Terms: terms("2.40")})
	if err != nil {
		t.Fatal(err)
	}
	await(t, vendor.got, "the buyer's PROPOSE")
	tm, err := protocol.DecodeBodyJSON(protocol.Counter, []byte(`{"terms":`+string(terms("2.80"))+`}`))
	if err != nil {
		t.Fatal(err)
	}
	cb := tm.(*protocol.CounterBody)
	cb.ReferenceID = first.MessageID
	counter := vendor.move(t, protocol.Counter, cb, false)
	// Recorded and acknowledged by the buyer's node; the vendor never
	// sees the acknowledgement (its copy does not apply the COUNTER).
	if resp := vendor.request(t, b, envReq(t, counter)); resp.Code != "" {
		t.Fatalf("COUNTER: %s: %s", resp.Code, resp.Message)
	}

	// The buyer's agent sends its next PROPOSE; the vendor holds it in
	// flight until the resend has been answered.
	release := make(chan struct{})
	vendor.setAnswer(func(*protocol.Envelope) (*wireResp, error) { <-release; return nil, nil })
	done := make(chan error, 1)
	go func() {
		_, err := b.SendMessage(ctx, buyer, s.SessionID, api.SendMessageRequest{Performative: "PROPOSE", Terms: terms("2.55")})
		done <- err
	}()
	second := await(t, vendor.got, "the buyer's second PROPOSE")
	if !b.getSession(s.SessionID).sending.Load() {
		t.Fatal("the buyer's node is not sending")
	}
	resp := vendor.request(t, b, envReq(t, counter))
	if resp.Code == "" {
		// Applied before the held PROPOSE is stepped, which follows it.
		vendor.apply(t, counter)
	}
	close(release)
	if resp.Code != "" {
		t.Fatalf("resent COUNTER while the buyer moves: %s: %s, want the acknowledgement of the first time", resp.Code, resp.Message)
	}
	if err := <-done; err != nil {
		t.Fatalf("the buyer's PROPOSE: %v", err)
	}
	if second.Integrity.PreviousHash != counter.Hash() {
		t.Fatal("the buyer's PROPOSE does not follow the COUNTER")
	}
	vendor.setAnswer(nil)
	sameTranscript(t, b, s.SessionID, vendor)
	if _, err := b.SendMessage(ctx, buyer, s.SessionID, api.SendMessageRequest{Performative: "CLOSE", Body: []byte(`{"reason":"done"}`)}); err != nil {
		t.Fatalf("CLOSE: %v", err)
	}
	if info := sameTranscript(t, b, s.SessionID, vendor); info.State != "CLOSED" {
		t.Fatalf("state %s, want CLOSED", info.State)
	}
	if r := refusalsIn(t, b); len(r) != 0 {
		t.Fatalf("refusals recorded: %+v", r)
	}
}

// invited opens a session from sp's agent to agent on v and makes an offer
// that v's agent can answer.
func invited(t *testing.T, sp *scripted, v *Node, agent string) (string, *protocol.Envelope) {
	t.Helper()
	s := sp.invite(t, v, agent)
	sp.mu.Lock()
	sp.s = s
	sp.mu.Unlock()
	tm, err := protocol.DecodeBodyJSON(protocol.Propose, []byte(`{"terms":`+string(terms("2.40"))+`}`))
	if err != nil {
		t.Fatal(err)
	}
	offer := sp.move(t, protocol.Propose, tm, true)
	if resp := sp.request(t, v, envReq(t, offer)); resp.Code != "" {
		t.Fatalf("PROPOSE: %s: %s", resp.Code, resp.Message)
	}
	return s.ID(), offer
}

// A "busy" answer to a resent move means "later": the move stays pending
// and is resent until it is acknowledged; no refusal is recorded for a move
// the counterparty holds.
func TestBusyResendStaysPending(t *testing.T) {
	ctx := context.Background()
	v, vendor := singleNode(t, "vendor", "compute.gpu-hours")
	buyer := newScripted(t, "busy-buyer", v)
	sid, _ := invited(t, buyer, v, vendor)
	// The COUNTER is held by the buyer but its acknowledgement is lost;
	// the first resend is answered busy, the next ones as resends.
	var mu sync.Mutex
	calls := 0
	buyer.setAnswer(func(env *protocol.Envelope) (*wireResp, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		switch calls {
		case 1:
			buyer.step(env)
			return nil, errors.New("connection lost")
		case 2:
			return &wireResp{Code: codeBusy, Message: "session busy: concurrent move"}, nil
		}
		return nil, nil
	})
	_, err := v.SendMessage(ctx, vendor, sid, api.SendMessageRequest{Performative: "COUNTER", Terms: terms("2.80")})
	if err == nil || api.ErrorFor(err).Code != api.CodeTimeout {
		t.Fatalf("COUNTER with a lost acknowledgement: %v, want a timeout", err)
	}
	await(t, buyer.got, "the COUNTER")
	await(t, buyer.got, "the resend answered busy")
	await(t, buyer.got, "a resend after busy")
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, _ := transcriptOf(t, v, sid)
		if len(got) == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the vendor holds %d messages, want 4", len(got))
		}
		time.Sleep(20 * time.Millisecond)
	}
	sameTranscript(t, v, sid, buyer)
	if r := refusalsIn(t, v); len(r) != 0 {
		t.Fatalf("refusals recorded: %+v", r)
	}
	cl := buyer.move(t, protocol.Close, &protocol.CloseBody{Reason: "done"}, true)
	if resp := buyer.request(t, v, envReq(t, cl)); resp.Code != "" {
		t.Fatalf("CLOSE: %s: %s", resp.Code, resp.Message)
	}
	if info := sameTranscript(t, v, sid, buyer); info.State != "CLOSED" {
		t.Fatalf("state %s", info.State)
	}
}

// diverged leaves the vendor's node holding a refusal for a COUNTER the
// buyer holds (as the busy answer to a resend once did).
func diverged(t *testing.T) (v *Node, vendor string, buyer *scripted, sid string, counter *protocol.Envelope) {
	t.Helper()
	v, vendor = singleNode(t, "vendor", "compute.gpu-hours")
	buyer = newScripted(t, "diverged-buyer", v)
	sid, _ = invited(t, buyer, v, vendor)
	buyer.setAnswer(func(env *protocol.Envelope) (*wireResp, error) {
		buyer.step(env)
		return &wireResp{Code: codeBusy, Message: "session busy: concurrent move"}, nil
	})
	if _, err := v.SendMessage(context.Background(), vendor, sid, api.SendMessageRequest{Performative: "COUNTER", Terms: terms("2.80")}); err == nil {
		t.Fatal("COUNTER answered busy went through")
	}
	counter = await(t, buyer.got, "the COUNTER")
	buyer.setAnswer(nil)
	if r := refusalsIn(t, v); len(r) != 1 || r[0].MessageID != counter.MessageID {
		t.Fatalf("refusals %+v, want the COUNTER's", r)
	}
	return v, vendor, buyer, sid, counter
}

// A node that recorded a refusal for a move its counterparty holds
// converges when the counterparty's next move is refused: the two exchange
// heads, the node adopts its own move, and the session goes on; the
// adoption survives a restart.
func TestDivergedTranscriptsConverge(t *testing.T) {
	t.Run("counterparty moves", func(t *testing.T) {
		v, _, buyer, sid, _ := diverged(t)
		q := buyer.move(t, protocol.Query, &protocol.QueryBody{Question: "delivery?"}, false)
		if resp := buyer.request(t, v, envReq(t, q)); resp.Code != protocol.CodeConflict {
			t.Fatalf("QUERY after the COUNTER: %q, want conflict", resp.Code)
		}
		await(t, buyer.heads, "a head request")
		deadline := time.Now().Add(20 * time.Second)
		for {
			got, _ := transcriptOf(t, v, sid)
			if len(got) == 4 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the vendor holds %d messages, want 4", len(got))
			}
			time.Sleep(20 * time.Millisecond)
		}
		if resp := buyer.request(t, v, envReq(t, q)); resp.Code != "" {
			t.Fatalf("QUERY after reconciliation: %s: %s", resp.Code, resp.Message)
		}
		buyer.apply(t, q)
		sameTranscript(t, v, sid, buyer)
		restarted(t, v, sid, buyer)
	})
	t.Run("own agent moves", func(t *testing.T) {
		v, vendor, buyer, sid, _ := diverged(t)
		ctx := context.Background()
		// The vendor's agent, unaware, moves from the old head: the
		// buyer refuses it as a replay, and the vendor reconciles before
		// answering its agent.
		_, err := v.SendMessage(ctx, vendor, sid, api.SendMessageRequest{Performative: "QUERY", Body: []byte(`{"question":"still there?"}`)})
		var rr *RemoteRefusal
		if !errors.As(err, &rr) || rr.Code != protocol.CodeReplay {
			t.Fatalf("QUERY from the old head: %v, want a replay refusal", err)
		}
		sameTranscript(t, v, sid, buyer)
		if _, err := v.SendMessage(ctx, vendor, sid, api.SendMessageRequest{Performative: "CLOSE", Body: []byte(`{"reason":"done"}`)}); err != nil {
			t.Fatalf("CLOSE after reconciliation: %v", err)
		}
		if info := sameTranscript(t, v, sid, buyer); info.State != "CLOSED" {
			t.Fatalf("state %s", info.State)
		}
		restarted(t, v, sid, buyer)
	})
}

// restarted stops v, starts it again from its home and checks that the
// recovered session equals sp's copy and the ledger verifies.
func restarted(t *testing.T, v *Node, sid string, sp *scripted) {
	t.Helper()
	home := v.cfg.Home
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	v2 := startNode(t, home)
	defer v2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sp.h.Connect(ctx, v2.host.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	// A last move of v's own is resent after the restart (v cannot know
	// that its acknowledgement arrived); the resend is acknowledged.
	want := sp.transcript()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if got, _ := transcriptOf(t, v2, sid); slices.Equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			sameTranscript(t, v2, sid, sp)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := v2.led.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Transcripts that cannot converge (the counterparty's tail does not
// verify) end the session on both sides, FAILED with a reason, instead of
// refusing every move forever.
func TestDivergedTranscriptsEndCleanly(t *testing.T) {
	v, vendor, buyer, sid, _ := diverged(t)
	ctx := context.Background()
	bad := buyer.move(t, protocol.Query, &protocol.QueryBody{Question: "delivery?"}, false)
	bad.Integrity.Signature[0] ^= 1
	raw, err := protocol.EncodeEnvelope(bad)
	if err != nil {
		t.Fatal(err)
	}
	buyer.mu.Lock()
	buyer.tail = [][]byte{raw}
	buyer.mu.Unlock()
	q := buyer.move(t, protocol.Query, &protocol.QueryBody{Question: "delivery?"}, false)
	if resp := buyer.request(t, v, envReq(t, q)); resp.Code != protocol.CodeConflict {
		t.Fatalf("QUERY after the COUNTER: %q, want conflict", resp.Code)
	}
	await(t, buyer.heads, "a head request")
	told := await(t, buyer.heads, "the end told to the counterparty")
	if told.Ended == "" || told.Session != sid {
		t.Fatalf("second head request %+v, want the session's end", told)
	}
	info, err := v.Session(ctx, api.Principal{Admin: true}, sid)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != "FAILED" || info.Reason == "" {
		t.Fatalf("session %s (%q), want FAILED with a reason", info.State, info.Reason)
	}
	_, err = v.SendMessage(ctx, vendor, sid, api.SendMessageRequest{Performative: "CLOSE"})
	if err == nil || api.ErrorFor(err).Code != api.CodeInvalidTransition {
		t.Fatalf("a move in an ended session: %v", err)
	}
	if resp := buyer.request(t, v, envReq(t, q)); resp.Code != protocol.CodeInvalidTransition {
		t.Fatalf("a move from the counterparty in an ended session: %q", resp.Code)
	}
	home := v.cfg.Home
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	v2 := startNode(t, home)
	defer v2.Close()
	if info, _ := v2.Session(ctx, api.Principal{Admin: true}, sid); info.State != "FAILED" {
		t.Fatalf("after restart: %s", info.State)
	}
}

// Only the node of the session's other party may read its head and
// transcript; anyone else is refused and changes nothing.
func TestHeadOnlyForTheParty(t *testing.T) {
	v, vendor := singleNode(t, "vendor", "compute.gpu-hours")
	buyer := newScripted(t, "head-buyer", v)
	sid, _ := invited(t, buyer, v, vendor)
	if resp := buyer.request(t, v, &wireReq{Type: wireHead, Session: sid}); resp.Code != "" || resp.Length != 3 || len(resp.Tail) != 3 {
		t.Fatalf("the party's head request: %q, length %d, %d envelopes", resp.Code, resp.Length, len(resp.Tail))
	}
	other := newHostilePeer(t, "head-stranger", v)
	before := fingerprint(t, v)
	for _, req := range []*wireReq{
		{Type: wireHead, Session: sid},
		{Type: wireHead, Session: sid, Ended: "I say so"},
		{Type: wireHead, Session: "01a248f5-3343-7a73-95e6-b577be63b460"},
	} {
		resp := other.request(t, v, req)
		if resp.Code == "" || len(resp.Tail) > 0 || resp.Length != 0 {
			t.Fatalf("a stranger's head request %+v answered %+v", req, resp)
		}
	}
	assertUnchanged(t, "a stranger's head requests", v, before)
	if info, _ := v.Session(context.Background(), api.Principal{Admin: true}, sid); info.State != "AGREEING" {
		t.Fatalf("state %s after a stranger's end", info.State)
	}
}

// An invitation recorded but never answered (the node stopped between the
// two writes) is answered when it is resent, as the first time would have
// been, instead of leaving the session to time out.
func TestResentInvitationAnsweredAfterRestart(t *testing.T) {
	home := filepath.Join(t.TempDir(), "vendor-org")
	v := startNodeWith(t, home, func(c *Config) { c.Consent = ConsentAsk })
	t.Cleanup(func() { v.Close() })
	r, err := v.CreateAgent(context.Background(), api.CreateAgentRequest{Name: "vendor", Capabilities: []string{"compute.gpu-hours"}})
	if err != nil {
		t.Fatal(err)
	}
	m := newHostilePeer(t, "unanswered-buyer", v)
	to, _ := protocol.ParseAgentID(r.AgentID)
	sid, err := protocol.NewSessionID(time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := protocol.NewSession(protocol.Config{}, sid, m.agent(), to, time.Now())
	inv := m.move(t, s, protocol.Propose, &protocol.ProposeBody{Type: protocol.InvitationType, Subject: "GPU capacity"})
	if resp := m.request(t, v, envReq(t, inv)); resp.Code != "" || len(resp.Reply) != 0 {
		t.Fatalf("invitation under ask: %q, reply %d bytes", resp.Code, len(resp.Reply))
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	v2 := startNodeWith(t, home, func(c *Config) { c.Consent = ConsentAcceptAll })
	defer v2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.h.Connect(ctx, v2.host.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	resp := m.request(t, v2, envReq(t, inv))
	if resp.Code != "" || len(resp.Reply) == 0 {
		t.Fatalf("resent invitation: %q (%s), reply %d bytes, want the consent reply", resp.Code, resp.Message, len(resp.Reply))
	}
	reply, err := protocol.DecodeEnvelope(resp.Reply)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Step(inv, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Step(reply, time.Now()); err != nil || s.State() != protocol.StateIntroduced {
		t.Fatalf("reply: %v, state %s", err, s.State())
	}
	if again := m.request(t, v2, envReq(t, inv)); again.Code != "" || !bytes.Equal(again.Reply, resp.Reply) {
		t.Fatalf("a second resend: %q, the same reply: %v", again.Code, bytes.Equal(again.Reply, resp.Reply))
	}
}
