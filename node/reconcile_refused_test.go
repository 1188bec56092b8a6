package node

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
)

// A counterparty that refused a move of ours cannot take it back later
// through a head: the agent was told the move was refused. An ACCEPT
// refused and then offered back in a tail an hour later forms no
// commitment; the session ends instead.
func TestRefusedMoveNotAdoptedLate(t *testing.T) {
	cv := startClockedVendor(t, nil)
	v, vendor, offset := cv.n, cv.vendor, cv.offset
	ctx := context.Background()
	buyer := newScripted(t, "option-buyer", v)
	sid, offer := invited(t, buyer, v, vendor)
	// The buyer refuses the vendor's ACCEPT, but keeps it.
	buyer.setAnswer(func(env *protocol.Envelope) (*wireResp, error) {
		buyer.apply(t, env)
		return &wireResp{Code: protocol.CodeStaleOffer, Message: "offer withdrawn"}, nil
	})
	_, err := v.SendMessage(ctx, vendor, sid, api.SendMessageRequest{Performative: "ACCEPT", ReferenceID: offer.MessageID})
	var rr *RemoteRefusal
	if !errors.As(err, &rr) {
		t.Fatalf("ACCEPT: %v, want a refusal", err)
	}
	await(t, buyer.got, "the ACCEPT")
	buyer.setAnswer(nil)
	// An hour later, the buyer claims a longer transcript: the vendor
	// asks for its head and is offered its own ACCEPT back.
	offset.Store(int64(time.Hour))
	s := v.getSession(sid)
	if resp := buyer.request(t, v, &wireReq{Type: wireHead, Session: sid, Length: 4}); resp.Code != "" {
		t.Fatalf("head: %s: %s", resp.Code, resp.Message)
	}
	await(t, buyer.heads, "the vendor's head request")
	deadline := time.Now().Add(20 * time.Second)
	for s.reconciling.Load() || (len(s.snapshot().tr) == 3 && s.snapshot().ended == "") {
		if time.Now().After(deadline) {
			t.Fatal("the reconciliation did not finish")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cs, err := v.Commitments(ctx, api.Principal{Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 0 || len(s.snapshot().tr) != 3 {
		t.Fatalf("a refused ACCEPT was adopted an hour later: %d commitments, %d messages", len(cs), len(s.snapshot().tr))
	}
}

// Head requests carrying "ended" that arrive while the session is busy
// start one background end, not one goroutine each: a party cannot pile
// up goroutines (each waiting for the session) by repeating the request.
func TestRepeatedEndStartsOneGoroutine(t *testing.T) {
	v, vendor := singleNode(t, "vendor", "compute.gpu-hours")
	buyer := newScripted(t, "end-buyer", v)
	sid, _ := invited(t, buyer, v, vendor)
	s := v.getSession(sid)
	if err := s.acquire(context.Background(), false, false); err != nil {
		t.Fatal(err)
	}
	const n = 50
	for range n {
		if resp := buyer.request(t, v, &wireReq{Type: wireHead, Session: sid, Ended: "done here"}); resp.Code != "" {
			t.Fatalf("head: %s: %s", resp.Code, resp.Message)
		}
	}
	buf := make([]byte, 64<<20)
	waiting := strings.Count(string(buf[:runtime.Stack(buf, true)]), "(*Node).endSoon.func1")
	s.release()
	if waiting > 1 {
		t.Fatalf("%d goroutines wait to end the session after %d requests, want 1", waiting, n)
	}
	// Asked again, in case the one end gave up waiting under load.
	deadline := time.Now().Add(20 * time.Second)
	for s.snapshot().ended == "" {
		if time.Now().After(deadline) {
			t.Fatal("the session did not end")
		}
		buyer.request(t, v, &wireReq{Type: wireHead, Session: sid, Ended: "done here"})
		time.Sleep(20 * time.Millisecond)
	}
}

// A move adopted through reconciliation and resent, whose acknowledgement
// has not arrived when the node stops, is resent after the restart like
// any unacknowledged move: an adopted ACCEPT then forms its commitment
// instead of standing in the transcript without one.
func TestAdoptedMoveResentAfterRestart(t *testing.T) {
	v, vendor := singleNode(t, "vendor", "compute.gpu-hours")
	buyer := newScripted(t, "adopt-buyer", v)
	sid, offer := invited(t, buyer, v, vendor)
	ctx := context.Background()
	// The buyer holds the vendor's ACCEPT but answers busy, as a resend
	// was once answered: the vendor records a refusal.
	buyer.setAnswer(func(env *protocol.Envelope) (*wireResp, error) {
		buyer.step(env)
		return &wireResp{Code: codeBusy, Message: "session busy: concurrent move"}, nil
	})
	if _, err := v.SendMessage(ctx, vendor, sid, api.SendMessageRequest{Performative: "ACCEPT", ReferenceID: offer.MessageID}); err == nil {
		t.Fatal("ACCEPT answered busy went through")
	}
	await(t, buyer.got, "the ACCEPT")
	// Reconciliation adopts it and resends it; that acknowledgement is lost.
	buyer.setAnswer(func(env *protocol.Envelope) (*wireResp, error) {
		return nil, errors.New("connection lost")
	})
	if resp := buyer.request(t, v, &wireReq{Type: wireHead, Session: sid, Length: 4}); resp.Code != "" {
		t.Fatalf("head: %s: %s", resp.Code, resp.Message)
	}
	await(t, buyer.got, "the adopted ACCEPT resent")
	home := v.cfg.Home
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	buyer.setAnswer(nil)
	v2 := startNode(t, home)
	defer v2.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := buyer.h.Connect(cctx, v2.host.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		cs, err := v2.Commitments(ctx, api.Principal{Admin: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restart the vendor holds %d commitments, want the ACCEPT's", len(cs))
		}
		time.Sleep(20 * time.Millisecond)
	}
	sameTranscript(t, v2, sid, buyer)
}

// A session ended on one side whose head request to the counterparty was
// lost (the counterparty was down) ends on the counterparty's side too, at
// its next move: the refusal says the session ended. Before, the
// counterparty's every move, CLOSE included, was refused for good.
func TestEndedSessionEndsCounterpartyOnItsNextMove(t *testing.T) {
	p, sid := endedOnVendorSide(t)
	info, err := p.buyerNode.Session(context.Background(), api.Principal{Admin: true}, sid)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != "FAILED" {
		t.Fatalf("the buyer's session is %s after the vendor's refusal, want FAILED", info.State)
	}
}

// endedOnVendorSide opens a session from the buyer, proposes, ends it on
// the vendor's side alone (its head request lost) and has the buyer try to
// CLOSE it, which the vendor refuses. It returns the pair and the session.
func endedOnVendorSide(t *testing.T) (*pair, string) {
	t.Helper()
	p := newPair(t)
	ctx := context.Background()
	s, err := p.buyerNode.OpenSession(ctx, p.buyer, api.OpenSessionRequest{To: p.vendor})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.buyerNode.SendMessage(ctx, p.buyer, s.SessionID, api.SendMessageRequest{Performative: "PROPOSE", Terms: terms("2.40")}); err != nil {
		t.Fatal(err)
	}
	vs := p.vendorNode.getSession(s.SessionID)
	if err := vs.acquire(ctx, false, false); err != nil {
		t.Fatal(err)
	}
	p.vendorNode.endLocked(ctx, vs, "the transcripts diverged", false)
	vs.release()
	_, err = p.buyerNode.SendMessage(ctx, p.buyer, s.SessionID, api.SendMessageRequest{Performative: "CLOSE", Body: []byte(`{"reason":"done"}`)})
	var rr *RemoteRefusal
	if !errors.As(err, &rr) {
		t.Fatalf("CLOSE in a session the vendor ended: %v, want a refusal", err)
	}
	return p, s.SessionID
}
