package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	mrand "math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
	"github.com/aspnode/asp/protocol/protocoltest"
)

func TestHostileEnvelopes(t *testing.T) {
	p := newPair(t)
	cid := seedDeal(t, p)
	awaitActive(t, p.buyerNode, cid)
	awaitActive(t, p.vendorNode, cid)
	v, b := p.vendorNode, p.buyerNode
	m := newHostilePeer(t, "envelopes", v, b)
	eve := protocoltest.FixtureParty("envelopes-eve", "eve")
	eveCert, err := eve.Certificate([]string{"procurement"}, time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	vendorID, _ := protocol.ParseAgentID(p.vendor)
	ctx := context.Background()
	info, err := v.Commitment(ctx, api.Principal{Admin: true}, cid)
	if err != nil {
		t.Fatal(err)
	}
	realSID := info.SessionID
	realSession, err := v.Session(ctx, api.Principal{Admin: true}, realSID)
	if err != nil {
		t.Fatal(err)
	}
	var buyerOffer protocol.Envelope // the buyer's PROPOSE 2.55, as the vendor holds it
	if err := json.Unmarshal(realSession.Messages[4], &buyerOffer); err != nil {
		t.Fatal(err)
	}
	if buyerOffer.Sender != p.buyer || buyerOffer.Performative != protocol.Propose {
		t.Fatalf("message 4 of the seed deal is %s from %s", buyerOffer.Performative, buyerOffer.Sender)
	}

	// newInvitation is m's invitation to agent in a fresh session, unsigned.
	newInvitation := func(t *testing.T, from protocol.AgentID, to protocol.AgentID) *protocol.Envelope {
		t.Helper()
		sid, err := protocol.NewSessionID(time.Now(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s := protocol.NewSession(protocol.Config{}, sid, from, to, time.Now())
		env, err := s.Prepare(from, protocol.Propose, &protocol.ProposeBody{Type: protocol.InvitationType, Subject: "GPU capacity"}, time.Now(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}

	// send delivers req to victim and checks the refusal and that neither
	// node changed.
	send := func(t *testing.T, victim *Node, req *wireReq, code string) {
		t.Helper()
		bv, bb := fingerprint(t, v), fingerprint(t, b)
		var env *protocol.Envelope
		existed := false
		if req.Type == wireEnvelope {
			var err error
			if env, err = protocol.DecodeEnvelope(req.Envelope); err == nil {
				existed = victim.getSession(env.SessionID) != nil
			}
		}
		count := metric(t, victim, wireRefused, "code", code)
		resp := m.request(t, victim, req)
		expectRefusal(t, victim, resp, code, count)
		assertUnchanged(t, "a refused request", v, bv)
		assertUnchanged(t, "a refused request", b, bb)
		if env != nil && !existed && victim.getSession(env.SessionID) != nil {
			t.Errorf("session %s exists after its invitation was refused", env.SessionID)
		}
	}

	t.Run("invitation signed by a key that does not match the certificate", func(t *testing.T) {
		env := newInvitation(t, m.agent(), vendorID)
		env.Certificate = m.cert
		// The construction is sound: with the right key it verifies.
		ok := cloneEnvelope(t, env)
		signWith(ok, m.party.AgentKey)
		if err := ok.Verify(); err != nil {
			t.Fatalf("control envelope: %v", err)
		}
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		signWith(env, other)
		send(t, v, envReq(t, env), "invalid_signature")
	})
	t.Run("invitation signed by the organisation key instead of the agent's", func(t *testing.T) {
		env := newInvitation(t, m.agent(), vendorID)
		env.Certificate = m.cert
		signWith(env, m.party.OrgKey)
		send(t, v, envReq(t, env), "invalid_signature")
	})
	t.Run("certificate issued by another organisation", func(t *testing.T) {
		// m's agent certificate, signed by eve's organisation key
		// (IssueCertificate refuses to make one).
		cert, err := m.party.Certificate(nil, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if err := cert.Verify(time.Now()); err != nil {
			t.Fatalf("control certificate: %v", err)
		}
		d, err := cert.Digest()
		if err != nil {
			t.Fatal(err)
		}
		cert.Signature = ed25519.Sign(eve.OrgKey, append([]byte("asp/1.0 certificate\x00"), d[:]...))
		env := newInvitation(t, m.agent(), vendorID)
		if err := env.Seal(m.party.AgentKey, cert); err != nil {
			t.Fatal(err)
		}
		send(t, v, envReq(t, env), "invalid_signature")
	})
	t.Run("certificate of another organisation's agent", func(t *testing.T) {
		env := newInvitation(t, m.agent(), vendorID)
		env.Certificate = eveCert
		signWith(env, eve.AgentKey)
		send(t, v, envReq(t, env), "unauthorized")
	})
	t.Run("expired certificate", func(t *testing.T) {
		cert, err := m.party.Certificate(nil, time.Now().Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		env := newInvitation(t, m.agent(), vendorID)
		if err := env.Seal(m.party.AgentKey, cert); err != nil {
			t.Fatal(err)
		}
		send(t, v, envReq(t, env), "unauthorized")
	})
	t.Run("envelope of another organisation's agent, validly signed", func(t *testing.T) {
		env := newInvitation(t, eve.Agent(), vendorID)
		if err := env.Seal(eve.AgentKey, eveCert); err != nil {
			t.Fatal(err)
		}
		send(t, v, envReq(t, env), "unauthorized")
	})
	t.Run("invitation to an agent that does not exist", func(t *testing.T) {
		env := newInvitation(t, m.agent(), protocol.AgentID{Org: v.peerID, Name: "nobody"})
		if err := env.Seal(m.party.AgentKey, m.cert); err != nil {
			t.Fatal(err)
		}
		send(t, v, envReq(t, env), "not_found")
	})
	t.Run("invitation to an agent of another node", func(t *testing.T) {
		buyerID, _ := protocol.ParseAgentID(p.buyer)
		env := newInvitation(t, m.agent(), buyerID)
		if err := env.Seal(m.party.AgentKey, m.cert); err != nil {
			t.Fatal(err)
		}
		send(t, v, envReq(t, env), "not_found")
	})
	t.Run("replay of the buyer's signed envelope by a third peer", func(t *testing.T) {
		send(t, v, envReq(t, &buyerOffer), "unauthorized")
		send(t, b, envReq(t, &buyerOffer), "unauthorized")
	})
	t.Run("envelope in a session the peer is not a party to", func(t *testing.T) {
		// The buyer's offer, re-signed as m's own: valid signature, valid
		// certificate, the real session id.
		env := cloneEnvelope(t, &buyerOffer)
		env.Sender = m.agent().String()
		if err := env.Seal(m.party.AgentKey, m.cert); err != nil {
			t.Fatal(err)
		}
		send(t, v, envReq(t, env), "unauthorized")
		// An invitation reusing the real session's id.
		inv := newInvitation(t, m.agent(), vendorID)
		inv.SessionID = realSID
		if err := inv.Seal(m.party.AgentKey, m.cert); err != nil {
			t.Fatal(err)
		}
		send(t, v, envReq(t, inv), "unauthorized")
	})
	t.Run("message for a session that does not exist", func(t *testing.T) {
		env := cloneEnvelope(t, &buyerOffer)
		env.Sender = m.agent().String()
		env.SessionID = "no-such-session"
		if err := env.Seal(m.party.AgentKey, m.cert); err != nil {
			t.Fatal(err)
		}
		send(t, v, envReq(t, env), "not_found")
	})

	// Receipts.
	cp, err := b.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("receipt for a commitment the peer is not party to", func(t *testing.T) {
		r, err := protocol.SignCommitmentReceipt(m.party.OrgKey, v.getCommitment(cid).pc, 3, cp)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := protocol.EncodeReceipt(r)
		send(t, b, &wireReq{Type: wireReceipt, Receipt: raw}, "unauthorized")
		send(t, v, &wireReq{Type: wireReceipt, Receipt: raw}, "unauthorized")
	})
	t.Run("receipt in the counterparty's name, sent by a third peer", func(t *testing.T) {
		r, err := protocol.SignCommitmentReceipt(m.party.OrgKey, v.getCommitment(cid).pc, 3, cp)
		if err != nil {
			t.Fatal(err)
		}
		r.Org = v.peerID
		raw, _ := protocol.EncodeReceipt(r)
		send(t, b, &wireReq{Type: wireReceipt, Receipt: raw}, "unauthorized")
	})
	t.Run("receipt for an unknown commitment", func(t *testing.T) {
		r, err := protocol.SignReceipt(m.party.OrgKey, [32]byte{1}, [32]byte{2}, 3, cp)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := protocol.EncodeReceipt(r)
		send(t, b, &wireReq{Type: wireReceipt, Receipt: raw}, "not_found")
	})

	// m as an honest party to its own session with the vendor, then
	// misbehaving inside it.
	s := m.invite(t, v, p.vendor)
	tm := &protocol.Terms{Resource: "gpu-hours", Quantity: "10", Unit: "hour", UnitPrice: "2.40", Currency: "USD",
		DeliverBy: protocol.Millis(time.Now().Add(30 * 24 * time.Hour))}
	offer := m.move(t, s, protocol.Propose, &protocol.ProposeBody{Subject: "10 GPU hours", Terms: tm})
	if resp := m.request(t, v, envReq(t, offer)); resp.Code != "" {
		t.Fatalf("honest offer refused: %s: %s", resp.Code, resp.Message)
	}
	if _, err := s.Step(offer, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got, _ := v.Session(ctx, api.Principal{Admin: true}, s.ID()); len(got.Messages) != 3 {
		t.Fatalf("vendor holds %d messages of m's session, want 3", len(got.Messages))
	}

	t.Run("exact resend is acknowledged and not recorded twice", func(t *testing.T) {
		bv := fingerprint(t, v)
		resp := m.request(t, v, envReq(t, offer))
		if resp.Code != "" {
			t.Fatalf("resend refused: %s: %s", resp.Code, resp.Message)
		}
		assertUnchanged(t, "a resent envelope", v, bv)
	})
	t.Run("resend with a corrupted signature", func(t *testing.T) {
		// Same content, so the same hash: the node may acknowledge it as the
		// resend it looks like, but must record nothing.
		env := cloneEnvelope(t, offer)
		env.Integrity.Signature = slices.Clone(env.Integrity.Signature)
		env.Integrity.Signature[0] ^= 0xff
		bv := fingerprint(t, v)
		resp := m.request(t, v, envReq(t, env))
		t.Logf("answer: %q %s", resp.Code, resp.Message)
		assertUnchanged(t, "a resend with a corrupted signature", v, bv)
	})
	t.Run("applied messageId reused with other content", func(t *testing.T) {
		env := cloneEnvelope(t, offer)
		env.Body.(*protocol.ProposeBody).Terms.UnitPrice = "0.01"
		if err := env.Seal(m.party.AgentKey, m.cert); err != nil {
			t.Fatal(err)
		}
		if err := env.Verify(); err != nil {
			t.Fatalf("the altered envelope is validly signed: %v", err)
		}
		send(t, v, envReq(t, env), "replay")
	})
	t.Run("used sequence number under a fresh messageId", func(t *testing.T) {
		env := m.move(t, s, protocol.Query, &protocol.QueryBody{Question: "when?"})
		env.SequenceNumber = offer.SequenceNumber
		if err := env.Seal(m.party.AgentKey, m.cert); err != nil {
			t.Fatal(err)
		}
		send(t, v, envReq(t, env), "replay")
	})
	t.Run("next move with a forged signature", func(t *testing.T) {
		env := m.move(t, s, protocol.Query, &protocol.QueryBody{Question: "when?"})
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		signWith(env, other)
		send(t, v, envReq(t, env), "invalid_signature")
	})
	t.Run("next move altered after signing", func(t *testing.T) {
		env := m.move(t, s, protocol.Propose, &protocol.ProposeBody{Terms: &protocol.Terms{UnitPrice: "2.50"}})
		env.Body.(*protocol.ProposeBody).Terms.UnitPrice = "0.01"
		send(t, v, envReq(t, env), "invalid_signature")
	})
	t.Run("next move off the hash chain", func(t *testing.T) {
		env := m.move(t, s, protocol.Query, &protocol.QueryBody{Question: "when?"})
		env.Integrity.PreviousHash = [32]byte{1}
		if err := env.Seal(m.party.AgentKey, m.cert); err != nil {
			t.Fatal(err)
		}
		send(t, v, envReq(t, env), "conflict")
	})
	t.Run("next move from the future", func(t *testing.T) {
		env := m.moveAt(t, s, protocol.Query, &protocol.QueryBody{Question: "when?"}, time.Now().Add(time.Hour))
		send(t, v, envReq(t, env), "timeout")
	})
	t.Run("randomly mutated envelopes", func(t *testing.T) {
		seed := time.Now().UnixNano()
		t.Logf("seed %d", seed)
		rnd := mrand.New(mrand.NewPCG(uint64(seed), 0))
		env := m.move(t, s, protocol.Propose, &protocol.ProposeBody{Terms: &protocol.Terms{UnitPrice: "2.50"}})
		good, err := protocol.EncodeEnvelope(env)
		if err != nil {
			t.Fatal(err)
		}
		known := []string{"bad_request", "invalid_signature", "unauthorized", "replay", "conflict", "timeout",
			"invalid_transition", "not_found", "stale_offer"}
		bv := fingerprint(t, v)
		before := metric(t, v, wireRefused)
		const tries = 150
		sent := 0
		for i := range tries {
			bad := slices.Clone(good)
			for range 1 + rnd.IntN(3) {
				if len(bad) == 0 {
					break
				}
				switch rnd.IntN(3) {
				case 0: // flip a bit
					j := rnd.IntN(len(bad))
					bad[j] ^= 1 << rnd.IntN(8)
				case 1: // overwrite a byte
					bad[rnd.IntN(len(bad))] = byte(rnd.IntN(256))
				case 2: // cut the tail
					bad = bad[:rnd.IntN(len(bad))]
				}
			}
			if slices.Equal(bad, good) {
				continue // the mutations cancelled out: not hostile input
			}
			sent++
			resp := m.request(t, v, &wireReq{Type: wireEnvelope, Envelope: bad})
			if !slices.Contains(known, resp.Code) {
				t.Fatalf("mutation %d: answer code %q (%s); input %x", i, resp.Code, resp.Message, bad)
			}
		}
		if got := metric(t, v, wireRefused); got != before+float64(sent) {
			t.Errorf("%s grew by %v, want %d", wireRefused, got-before, sent)
		}
		assertUnchanged(t, "mutated envelopes", v, bv)
	})
	t.Run("accepting its own offer", func(t *testing.T) {
		// Prepare refuses the move; the envelope is built by hand.
		env := m.move(t, s, protocol.Query, &protocol.QueryBody{Question: "when?"})
		h := offer.Hash()
		env.Performative = protocol.Accept
		env.Body = &protocol.AcceptBody{ReferenceID: offer.MessageID, ReferenceHash: h[:]}
		if err := env.Seal(m.party.AgentKey, m.cert); err != nil {
			t.Fatal(err)
		}
		send(t, v, envReq(t, env), "invalid_transition")
	})

	// Nothing above disturbed the honest deal, and m's session goes on.
	for _, n := range []*Node{b, v} {
		c := awaitActive(t, n, cid)
		if len(c.Receipts) != 2 {
			t.Errorf("commitment on %s has %d receipts", n.peerID, len(c.Receipts))
		}
		if err := n.led.Check(ctx); err != nil {
			t.Errorf("ledger check on %s: %v", n.peerID, err)
		}
	}
	q := m.move(t, s, protocol.Query, &protocol.QueryBody{Question: "when?"})
	if resp := m.request(t, v, envReq(t, q)); resp.Code != "" {
		t.Fatalf("honest move after the attacks refused: %s: %s", resp.Code, resp.Message)
	}
}
