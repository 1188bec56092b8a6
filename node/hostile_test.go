package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/p2p"
	"github.com/aspnode/asp/protocol"
	"github.com/aspnode/asp/protocol/protocoltest"
	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
)

// Hostile input: a raw libp2p peer speaking the session protocol by hand,
// and HTTP clients with bad tokens and bad bodies. Every refusal must carry
// a typed code, be counted in the victim's metrics, and leave the victim
// exactly as it was (ledger size, sessions, commitments, agents).

// hostilePeer is a bare p2p.Host on loopback whose identity is the
// organisation key of a fixture party: envelopes it signs for its agent come
// from the right node, so the only defects are the ones a test puts in.
type hostilePeer struct {
	h     *p2p.Host
	party protocoltest.Party
	cert  *protocol.Certificate
}

func newHostilePeer(t *testing.T, label string, victims ...*Node) *hostilePeer {
	t.Helper()
	party := protocoltest.FixtureParty(label, "mallory")
	key, err := crypto.UnmarshalEd25519PrivateKey(party.OrgKey)
	if err != nil {
		t.Fatal(err)
	}
	h, err := p2p.New(context.Background(), p2p.Config{Key: key, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}},
		p2p.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if h.ID().String() != party.Agent().Org {
		t.Fatalf("peer id %s is not the organisation of %s", h.ID(), party.Agent())
	}
	cert, err := party.Certificate([]string{"procurement"}, time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range victims {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := h.Connect(ctx, v.host.AddrInfo())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	return &hostilePeer{h: h, party: party, cert: cert}
}

func (m *hostilePeer) agent() protocol.AgentID { return m.party.Agent() }

// requestRaw sends b as one request frame and decodes the node's answer.
func (m *hostilePeer) requestRaw(t *testing.T, to *Node, b []byte) *wireResp {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := m.h.Request(ctx, to.host.ID(), p2p.SessionProtocol, b)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	r, err := decodeWireResp(out)
	if err != nil {
		t.Fatalf("answer: %v", err)
	}
	return r
}

func (m *hostilePeer) request(t *testing.T, to *Node, req *wireReq) *wireResp {
	t.Helper()
	b, err := cbor.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return m.requestRaw(t, to, b)
}

// move prepares and seals the next move of m's agent in s (s is not stepped).
func (m *hostilePeer) move(t *testing.T, s *protocol.Session, p protocol.Performative, body protocol.Body) *protocol.Envelope {
	t.Helper()
	return m.moveAt(t, s, p, body, time.Now())
}

func (m *hostilePeer) moveAt(t *testing.T, s *protocol.Session, p protocol.Performative, body protocol.Body, at time.Time) *protocol.Envelope {
	t.Helper()
	env, err := s.Prepare(m.agent(), p, body, at, rand.Reader)
	if err != nil {
		t.Fatalf("prepare %s: %v", p, err)
	}
	if err := env.Seal(m.party.AgentKey, m.cert); err != nil {
		t.Fatal(err)
	}
	return env
}

// invite opens a session from m's agent to the agent to on v, as an honest
// node would: v's consent policy (accept-all) answers at once.
func (m *hostilePeer) invite(t *testing.T, v *Node, to string) *protocol.Session {
	t.Helper()
	s, inv := m.invitationAt(t, to, time.Now())
	resp := m.request(t, v, envReq(t, inv))
	if resp.Code != "" {
		t.Fatalf("honest invitation refused: %s: %s", resp.Code, resp.Message)
	}
	if _, err := s.Step(inv, time.Now()); err != nil {
		t.Fatal(err)
	}
	if len(resp.Reply) == 0 {
		t.Fatal("no consent reply to the invitation")
	}
	reply, err := protocol.DecodeEnvelope(resp.Reply)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Step(reply, time.Now()); err != nil {
		t.Fatalf("consent reply: %v", err)
	}
	return s
}

func envReq(t *testing.T, env *protocol.Envelope) *wireReq {
	t.Helper()
	raw, err := protocol.EncodeEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	return &wireReq{Type: wireEnvelope, Envelope: raw}
}

// signWith signs env with key whatever its certificate says, as the
// protocol signs envelopes ("asp/1.0 envelope" || 0x00 || hash).
func signWith(env *protocol.Envelope, key ed25519.PrivateKey) {
	h := env.Hash()
	env.Integrity.Hash = h
	env.Integrity.Signature = ed25519.Sign(key, append([]byte("asp/1.0 envelope\x00"), h[:]...))
}

// cloneEnvelope copies env through its encoding.
func cloneEnvelope(t *testing.T, env *protocol.Envelope) *protocol.Envelope {
	t.Helper()
	raw, err := protocol.EncodeEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	c, err := protocol.DecodeEnvelope(raw)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fingerprint is everything a refused input must leave unchanged on n:
// ledger size, sessions with their transcripts, commitments with their
// receipts, agents.
func fingerprint(t *testing.T, n *Node) string {
	t.Helper()
	ctx := context.Background()
	admin := api.Principal{Admin: true}
	ss, err := n.Sessions(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(ss, func(a, b api.SessionInfo) int { return strings.Compare(a.SessionID, b.SessionID) })
	cs, err := n.Commitments(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	as, err := n.ListAgents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(struct {
		Size        uint64
		Sessions    []api.SessionInfo
		Commitments []api.CommitmentInfo
		Agents      []api.AgentInfo
	}{n.led.Size(), ss, cs, as})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func assertUnchanged(t *testing.T, what string, n *Node, before string) {
	t.Helper()
	if after := fingerprint(t, n); after != before {
		t.Errorf("%s changed the state of %s\nbefore: %s\nafter:  %s", what, n.peerID, before, after)
	}
}

// metric sums the samples of the counter name on n's registry whose labels
// include the given name/value pairs.
func metric(t *testing.T, n *Node, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := n.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				sum += c.GetValue()
			}
		}
	}
	return sum
}

// awaitMetric polls until metric(...) reaches want.
func awaitMetric(t *testing.T, n *Node, want float64, name string, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := metric(t, n, name, labels...)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v, want %v", name, labels, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

const (
	wireRefused  = "asp_wire_refused_total"
	frameRefused = "asp_p2p_frames_refused_total"
	apiRefused   = "asp_api_refused_total"
)

// expectRefusal checks a wire answer's code and that the victim counted it.
func expectRefusal(t *testing.T, v *Node, resp *wireResp, code string, countBefore float64) {
	t.Helper()
	if resp.Code != code {
		t.Fatalf("answer code %q (%s), want %q", resp.Code, resp.Message, code)
	}
	if resp.Message == "" {
		t.Errorf("refusal %q carries no message", code)
	}
	t.Logf("refused: %s: %s", resp.Code, resp.Message)
	if len(resp.Reply) > 0 || len(resp.Receipt) > 0 {
		t.Errorf("refusal carries a reply or a receipt")
	}
	if got := metric(t, v, wireRefused, "code", code); got != countBefore+1 {
		t.Errorf("%s{code=%q} = %v, want %v", wireRefused, code, got, countBefore+1)
	}
}

func TestHostileFrames(t *testing.T) {
	p := newPair(t)
	v := p.vendorNode
	m := newHostilePeer(t, "frames", v)
	before := fingerprint(t, v)
	proto := string(p2p.SessionProtocol)

	// Frame-level garbage: the stream is reset before any handler runs.
	oversize := binary.AppendUvarint(nil, p2p.MaxFrameSize+1)
	frames := []struct {
		name       string
		data       []byte
		closeWrite bool
		reason     string
	}{
		{"garbage length prefix", bytes.Repeat([]byte{0xff}, 8), false, p2p.RefusedMalformed},
		{"non-minimal length prefix", []byte{0x85, 0x00, 1, 2, 3, 4, 5}, false, p2p.RefusedMalformed},
		{"another protocol's bytes", []byte("GET / HTTP/1.1\r\nHost: asp\r\n\r\n"), true, p2p.RefusedMalformed},
		{"truncated frame", []byte{0x40, 1, 2, 3}, true, p2p.RefusedMalformed},
		{"frame of 1 MiB + 1", append(oversize, bytes.Repeat([]byte{0xa0}, 64)...), false, p2p.RefusedOversize},
		{"frame of 256 MiB - 1", []byte{0xff, 0xff, 0xff, 0x7f}, false, p2p.RefusedOversize},
	}
	for _, tc := range frames {
		t.Run(tc.name, func(t *testing.T) {
			refused := metric(t, v, frameRefused, "protocol", proto, "reason", tc.reason)
			handled := metric(t, v, wireRefused)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := m.h.Host().NewStream(ctx, v.host.ID(), p2p.SessionProtocol)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Reset()
			_ = s.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := s.Write(tc.data); err != nil {
				t.Fatal(err)
			}
			if tc.closeWrite {
				_ = s.CloseWrite()
			}
			out, err := io.ReadAll(s)
			if err == nil {
				t.Fatalf("stream ended in order with %d bytes; want it reset", len(out))
			}
			var te interface{ Timeout() bool }
			if errors.As(err, &te) && te.Timeout() {
				t.Fatalf("stream not reset: %v", err)
			}
			if len(out) > 0 {
				t.Fatalf("got %d bytes of answer to a refused frame", len(out))
			}
			awaitMetric(t, v, refused+1, frameRefused, "protocol", proto, "reason", tc.reason)
			if got := metric(t, v, wireRefused); got != handled {
				t.Fatalf("the handler ran on a refused frame (%s went %v -> %v)", wireRefused, handled, got)
			}
		})
	}

	// Well-framed requests the node cannot use: answered with a typed
	// refusal on a stream that stays usable.
	cborOf := func(x any) []byte {
		b, err := cbor.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	deep := bytes.Repeat([]byte{0x81}, 64) // 64 nested one-element arrays
	deep = append(deep, 0x00)
	bigMap := map[int]int{}
	for i := range 100 {
		bigMap[i] = i
	}
	reqs := []struct {
		name  string
		data  []byte
		codes []string // acceptable codes
	}{
		{"text, not CBOR", []byte("hello, this is not CBOR at all"), []string{"bad_request"}},
		{"CBOR break byte", []byte{0xff}, []string{"bad_request"}},
		{"empty frame", []byte{}, []string{"bad_request"}},
		{"CBOR array", cborOf([]int{1, 2, 3}), []string{"bad_request"}},
		{"CBOR nested 64 deep", deep, []string{"bad_request"}},
		{"CBOR map of 100 pairs", cborOf(bigMap), []string{"bad_request"}},
		{"CBOR float as type", cborOf(map[int]float64{1: 1.5}), []string{"bad_request"}},
		{"request type 99", cborOf(&wireReq{Type: 99}), []string{"bad_request"}},
		{"request without a type", cborOf(map[string]string{}), []string{"bad_request"}},
		{"envelope request without an envelope", cborOf(&wireReq{Type: wireEnvelope}), []string{"bad_request"}},
		{"envelope request with garbage", cborOf(&wireReq{Type: wireEnvelope, Envelope: []byte("garbage")}), []string{"bad_request"}},
		{"receipt request with garbage", cborOf(&wireReq{Type: wireReceipt, Receipt: []byte{0xa1, 0x01}}), []string{"bad_request"}},
		{"action request with garbage", cborOf(&wireReq{Type: wireAction, Action: []byte{0x00}}), []string{"bad_request", "unsupported"}},
		{"envelope of 1 MiB - 64 bytes", cborOf(&wireReq{Type: wireEnvelope, Envelope: bytes.Repeat([]byte{0x61}, p2p.MaxFrameSize-64)}), []string{"bad_request"}},
	}
	for _, tc := range reqs {
		t.Run(tc.name, func(t *testing.T) {
			frames := metric(t, v, frameRefused)
			counts := map[string]float64{}
			for _, c := range tc.codes {
				counts[c] = metric(t, v, wireRefused, "code", c)
			}
			resp := m.requestRaw(t, v, tc.data)
			if !slices.Contains(tc.codes, resp.Code) {
				t.Fatalf("answer code %q (%s), want one of %v", resp.Code, resp.Message, tc.codes)
			}
			expectRefusal(t, v, resp, resp.Code, counts[resp.Code])
			if got := metric(t, v, frameRefused); got != frames {
				t.Errorf("a well-framed request was counted as a refused frame")
			}
		})
	}
	assertUnchanged(t, "hostile frames", v, before)

	// The counters are exposed on GET /metrics.
	tok, err := ReadAdminToken(v.cfg.Home)
	if err != nil {
		t.Fatal(err)
	}
	code, body := apiCall(t, v.Handler(), "GET", "/metrics", tok, "")
	if code != 200 {
		t.Fatalf("GET /metrics: %d", code)
	}
	for _, want := range []string{
		`asp_p2p_frames_refused_total{protocol="/asp/session/1.0.0",reason="malformed"} 4`,
		`asp_p2p_frames_refused_total{protocol="/asp/session/1.0.0",reason="oversize"} 2`,
		`asp_wire_refused_total{code="bad_request"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("GET /metrics lacks %s", want)
		}
	}

	// The victim still serves honest peers.
	id := seedDeal(t, p)
	awaitActive(t, p.buyerNode, id)
	awaitActive(t, p.vendorNode, id)
}

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

// apiCall serves one request through h and returns the status and body.
func apiCall(t *testing.T, h http.Handler, method, path, token, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// apiError decodes an error answer.
func apiError(t *testing.T, body string) api.ErrorDetail {
	t.Helper()
	var e api.ErrorResponse
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code == "" {
		t.Fatalf("not an error answer: %q", body)
	}
	return e.Error
}

func TestHostileAPI(t *testing.T) {
	p := newPair(t)
	bn, vn := p.buyerNode, p.vendorNode
	hb, hv := bn.Handler(), vn.Handler()
	adminB, err := ReadAdminToken(bn.cfg.Home)
	if err != nil {
		t.Fatal(err)
	}
	adminV, err := ReadAdminToken(vn.cfg.Home)
	if err != nil {
		t.Fatal(err)
	}
	newAgent := func(h http.Handler, admin, name string) (id, token string) {
		t.Helper()
		code, body := apiCall(t, h, "POST", "/v1/agents", admin, `{"name":"`+name+`","capabilities":["procurement"]}`)
		if code != 201 {
			t.Fatalf("create %s: %d %s", name, code, body)
		}
		var r api.CreateAgentResponse
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatal(err)
		}
		return r.AgentID, r.Token
	}
	alice, aliceTok := newAgent(hb, adminB, "alice")
	carol, carolTok := newAgent(hb, adminB, "carol")
	bob, bobTok := newAgent(hv, adminV, "bob")
	temp, tempTok := newAgent(hb, adminB, "temp")
	if code, body := apiCall(t, hb, "DELETE", "/v1/agents/"+url.PathEscape(temp), adminB, ""); code != 204 {
		t.Fatalf("delete temp: %d %s", code, body)
	}

	// refused serves a request that must be refused with status and code,
	// counted in asp_api_refused_total, and change neither node.
	refused := func(t *testing.T, h http.Handler, n *Node, method, path, token, body string, status int, code string) api.ErrorDetail {
		t.Helper()
		bb, bv := fingerprint(t, bn), fingerprint(t, vn)
		count := metric(t, n, apiRefused, "code", code)
		got, out := apiCall(t, h, method, path, token, body)
		if got != status {
			t.Fatalf("%s %s: status %d %s, want %d", method, path, got, out, status)
		}
		e := apiError(t, out)
		if e.Code != code {
			t.Fatalf("%s %s: code %q (%s), want %q", method, path, e.Code, e.Message, code)
		}
		if e.Message == "" {
			t.Errorf("%s %s: error without a message", method, path)
		}
		t.Logf("%s %s: %d %s: %s", method, path, got, e.Code, e.Message)
		if c := metric(t, n, apiRefused, "code", code); c != count+1 {
			t.Errorf("%s{code=%q} = %v, want %v", apiRefused, code, c, count+1)
		}
		assertUnchanged(t, method+" "+path, bn, bb)
		assertUnchanged(t, method+" "+path, vn, bv)
		return e
	}

	// Honest moves first, with the nodes' timer loops parked (see
	// parkTimers); everything after is refused before any move is made.
	// Three sessions between alice (buyer node) and bob (vendor node):
	// open (INTRODUCED, nothing on the table), offered (alice's offer is
	// open) and agreed (bob accepted alice's offer: a commitment).
	move := func(h http.Handler, tok, path, body string) api.SendMessageResult {
		t.Helper()
		code, out := apiCall(t, h, "POST", path, tok, body)
		if code != 201 {
			t.Fatalf("POST %s %s: %d %s", path, body, code, out)
		}
		var r api.SendMessageResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	openSession := func() (api.SessionInfo, string) {
		t.Helper()
		code, body := apiCall(t, hb, "POST", "/v1/sessions", aliceTok, `{"to":"`+bob+`"}`)
		if code != 201 {
			t.Fatalf("open session: %d %s", code, body)
		}
		var si api.SessionInfo
		if err := json.Unmarshal([]byte(body), &si); err != nil {
			t.Fatal(err)
		}
		if si.State != "INTRODUCED" {
			t.Fatalf("session state %s, want INTRODUCED", si.State)
		}
		return si, "/v1/sessions/" + si.SessionID + "/messages"
	}
	si, msgs := openSession()
	offered, offeredMsgs := openSession()
	offer := move(hb, aliceTok, offeredMsgs, `{"performative":"PROPOSE","terms":`+string(terms("2.40"))+`}`)
	_, agreedMsgs := openSession()
	agreedOffer := move(hb, aliceTok, agreedMsgs, `{"performative":"PROPOSE","terms":`+string(terms("2.55"))+`}`)
	acc := move(hv, bobTok, agreedMsgs, `{"performative":"ACCEPT"}`)
	if acc.CommitmentID == "" {
		t.Fatal("ACCEPT formed no commitment")
	}
	awaitActive(t, bn, acc.CommitmentID)
	awaitActive(t, vn, acc.CommitmentID)

	t.Run("missing and wrong tokens", func(t *testing.T) {
		routes := []struct{ method, path, body string }{
			{"GET", "/v1/node", ""},
			{"GET", "/v1/agents", ""},
			{"POST", "/v1/agents", `{"name":"intruder"}`},
			{"POST", "/v1/sessions", `{"to":"` + bob + `"}`},
			{"GET", "/v1/sessions/" + si.SessionID, ""},
			{"POST", msgs, `{"performative":"PROPOSE","terms":` + string(terms("2.40")) + `}`},
			{"GET", "/v1/commitments", ""},
			{"GET", "/v1/audit/entries", ""},
			{"GET", "/metrics", ""},
		}
		for _, rt := range routes {
			for _, tok := range []string{"", "wrong", strings.Repeat("0", 64), bobTok, tempTok} {
				refused(t, hb, bn, rt.method, rt.path, tok, rt.body, 401, "unauthorized")
			}
			// A token under another scheme.
			bb := fingerprint(t, bn)
			req := httptest.NewRequest(rt.method, rt.path, strings.NewReader(rt.body))
			req.Header.Set("Authorization", "Basic "+adminB)
			rec := httptest.NewRecorder()
			hb.ServeHTTP(rec, req)
			if rec.Code != 401 || apiError(t, rec.Body.String()).Code != "unauthorized" {
				t.Errorf("%s %s with Basic auth: %d %s", rt.method, rt.path, rec.Code, rec.Body)
			}
			assertUnchanged(t, "Basic auth", bn, bb)
		}
	})
	t.Run("missing token on the real listener", func(t *testing.T) {
		resp, err := http.Get(bn.APIURL() + "/v1/agents")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 401 || apiError(t, string(out)).Code != "unauthorized" {
			t.Fatalf("GET /v1/agents without a token: %d %s", resp.StatusCode, out)
		}
	})
	t.Run("agent token on admin routes", func(t *testing.T) {
		refused(t, hb, bn, "POST", "/v1/agents", aliceTok, `{"name":"intruder"}`, 403, "unauthorized")
		refused(t, hb, bn, "GET", "/v1/agents", aliceTok, "", 403, "unauthorized")
		refused(t, hb, bn, "DELETE", "/v1/agents/"+url.PathEscape(carol), aliceTok, "", 403, "unauthorized")
		refused(t, hb, bn, "GET", "/v1/audit/entries", aliceTok, "", 403, "unauthorized")
		refused(t, hb, bn, "GET", "/metrics", aliceTok, "", 403, "unauthorized")
	})
	t.Run("admin token on agent routes", func(t *testing.T) {
		refused(t, hb, bn, "POST", "/v1/sessions", adminB, `{"to":"`+bob+`"}`, 403, "unauthorized")
		refused(t, hb, bn, "POST", msgs, adminB, `{"performative":"PROPOSE","terms":`+string(terms("2.40"))+`}`, 403, "unauthorized")
	})
	t.Run("agent acting on another agent's session", func(t *testing.T) {
		refused(t, hb, bn, "GET", "/v1/sessions/"+si.SessionID, carolTok, "", 404, "not_found")
		refused(t, hb, bn, "POST", msgs, carolTok, `{"performative":"PROPOSE","terms":`+string(terms("2.40"))+`}`, 404, "not_found")
		refused(t, hb, bn, "POST", msgs, carolTok, `{"performative":"CLOSE"}`, 404, "not_found")
		// The counterparty's agent cannot act through the other node either.
		refused(t, hb, bn, "POST", msgs, bobTok, `{"performative":"ACCEPT"}`, 401, "unauthorized")
		// Nor can the sender be named in the body.
		refused(t, hb, bn, "POST", msgs, carolTok, `{"performative":"CLOSE","sender":"`+alice+`"}`, 400, "bad_request")
		code, out := apiCall(t, hb, "GET", "/v1/sessions", carolTok, "")
		if code != 200 || strings.Contains(out, si.SessionID) {
			t.Fatalf("carol's session list: %d %s", code, out)
		}
	})
	t.Run("numbers where decimal strings belong", func(t *testing.T) {
		cases := []struct{ name, terms, field string }{
			{"unitPrice as a JSON number", `{"resource":"gpu-hours","quantity":"1000","unit":"hour","unitPrice":2.55,"currency":"USD","deliverBy":"2027-03-15T00:00:00.000Z"}`, "unitPrice"},
			{"unitPrice as an integer", `{"resource":"gpu-hours","quantity":"1000","unit":"hour","unitPrice":3,"currency":"USD","deliverBy":"2027-03-15T00:00:00.000Z"}`, "unitPrice"},
			{"quantity as a JSON number", `{"resource":"gpu-hours","quantity":1000,"unit":"hour","unitPrice":"2.55","currency":"USD","deliverBy":"2027-03-15T00:00:00.000Z"}`, "quantity"},
			{"unitPrice in exponent form", `{"resource":"gpu-hours","quantity":"1000","unit":"hour","unitPrice":"2.55e0","currency":"USD","deliverBy":"2027-03-15T00:00:00.000Z"}`, "unitPrice"},
			{"unitPrice not a number", `{"resource":"gpu-hours","quantity":"1000","unit":"hour","unitPrice":"2.5.5","currency":"USD","deliverBy":"2027-03-15T00:00:00.000Z"}`, "unitPrice"},
			{"unitPrice NaN", `{"resource":"gpu-hours","quantity":"1000","unit":"hour","unitPrice":"NaN","currency":"USD","deliverBy":"2027-03-15T00:00:00.000Z"}`, "unitPrice"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e := refused(t, hb, bn, "POST", msgs, aliceTok, `{"performative":"PROPOSE","terms":`+tc.terms+`}`, 400, "bad_request")
				if !strings.Contains(strings.ToLower(e.Message), strings.ToLower(tc.field)) {
					t.Errorf("message %q does not name %s", e.Message, tc.field)
				}
			})
		}
		refused(t, hb, bn, "POST", msgs, aliceTok, `{"performative":"PROPOSE","terms":"2.55"}`, 400, "bad_request")
		refused(t, hb, bn, "POST", msgs, aliceTok, `{"performative":"BUY","terms":`+string(terms("2.55"))+`}`, 400, "bad_request")
		refused(t, hb, bn, "POST", msgs, aliceTok, `{"performative":"PROPOSE","terms":`+string(terms("2.55"))+`,"price":2.55}`, 400, "bad_request")
		refused(t, hb, bn, "POST", msgs, aliceTok, `[{"performative":"PROPOSE"}]`, 400, "bad_request")
		refused(t, hb, bn, "POST", msgs, aliceTok, `{"performative":"PROPOSE"`, 400, "bad_request")
	})
	t.Run("oversized and malformed admin input", func(t *testing.T) {
		big := `{"performative":"INFORM","body":{"text":"` + strings.Repeat("a", 8<<20) + `"}}`
		refused(t, hb, bn, "POST", msgs, aliceTok, big, 400, "bad_request")
		for _, name := range []string{"../admin", "a b", "", strings.Repeat("x", 65), "agent://x/y"} {
			b, _ := json.Marshal(map[string]any{"name": name})
			refused(t, hb, bn, "POST", "/v1/agents", adminB, string(b), 400, "bad_request")
		}
		refused(t, hb, bn, "POST", "/v1/agents", adminB, `{"name":"dave","capabilities":["UPPER CASE"]}`, 400, "bad_request")
		refused(t, hb, bn, "POST", "/v1/agents", adminB, `{"name":"alice"}`, 409, "duplicate")
		refused(t, hb, bn, "POST", "/v1/sessions", aliceTok, `{"to":"not an agent id"}`, 400, "bad_request")
		refused(t, hb, bn, "POST", "/v1/sessions", aliceTok, `{"to":"`+carol+`"}`, 400, "bad_request")
	})
	t.Run("illegal moves", func(t *testing.T) {
		// Nothing is on the table yet.
		refused(t, hb, bn, "POST", msgs, aliceTok, `{"performative":"ACCEPT"}`, 409, "invalid_transition")
		refused(t, hv, vn, "POST", msgs, bobTok, `{"performative":"ACCEPT"}`, 409, "invalid_transition")
		refused(t, hv, vn, "POST", msgs, bobTok, `{"performative":"COUNTER","terms":`+string(terms("2.80"))+`}`, 409, "invalid_transition")
		// Alice cannot accept her own offer.
		refused(t, hb, bn, "POST", offeredMsgs, aliceTok, `{"performative":"ACCEPT"}`, 409, "invalid_transition")
		refused(t, hb, bn, "POST", offeredMsgs, aliceTok, `{"performative":"ACCEPT","referenceId":"`+offer.MessageID+`"}`, 409, "invalid_transition")
		// Bob cannot accept the invitation a second time.
		code, out := apiCall(t, hv, "GET", "/v1/sessions/"+offered.SessionID, bobTok, "")
		var sess api.SessionInfo
		if err := json.Unmarshal([]byte(out), &sess); code != 200 || err != nil || len(sess.Messages) != 3 {
			t.Fatalf("bob's session: %d %s", code, out)
		}
		var inv protocol.Envelope
		if err := json.Unmarshal(sess.Messages[0], &inv); err != nil {
			t.Fatal(err)
		}
		refused(t, hv, vn, "POST", offeredMsgs, bobTok, `{"performative":"ACCEPT","referenceId":"`+inv.MessageID+`"}`, 409, "invalid_transition")
		// An accepted offer cannot be accepted again, by either side.
		refused(t, hv, vn, "POST", agreedMsgs, bobTok, `{"performative":"ACCEPT","referenceId":"`+agreedOffer.MessageID+`"}`, 409, "invalid_transition")
		refused(t, hb, bn, "POST", agreedMsgs, aliceTok, `{"performative":"ACCEPT","referenceId":"`+agreedOffer.MessageID+`"}`, 409, "invalid_transition")
	})
	t.Run("commitments of other agents", func(t *testing.T) {
		refused(t, hb, bn, "GET", "/v1/commitments/"+acc.CommitmentID, carolTok, "", 404, "not_found")
		refused(t, hv, vn, "GET", "/v1/commitments/"+acc.CommitmentID, aliceTok, "", 401, "unauthorized")
		code, out := apiCall(t, hb, "GET", "/v1/commitments", carolTok, "")
		if code != 200 || strings.Contains(out, acc.CommitmentID) {
			t.Fatalf("carol's commitment list: %d %s", code, out)
		}
		if code, out := apiCall(t, hb, "GET", "/v1/commitments/"+acc.CommitmentID, aliceTok, ""); code != 200 {
			t.Fatalf("alice's commitment: %d %s", code, out)
		}
		for _, n := range []*Node{bn, vn} {
			c := awaitActive(t, n, acc.CommitmentID)
			if len(c.Receipts) != 2 {
				t.Errorf("commitment on %s has %d receipts", n.peerID, len(c.Receipts))
			}
		}
	})
}

// TestHostileReceiptCheckpoint: a counterparty that is a party to the
// commitment hands over a receipt whose signature is good but whose
// checkpoint is not a checkpoint at all. The receipt is the proof that the
// counterparty recorded the commitment; without a signed checkpoint of the
// counterparty's ledger covering its ledger index it proves nothing, and the
// commitment must not become ACTIVE on it.
func TestHostileReceiptCheckpoint(t *testing.T) {
	v := startNode(t, filepath.Join(t.TempDir(), "vendor-org"))
	t.Cleanup(func() { v.Close() })
	ctx := context.Background()
	ra, err := v.CreateAgent(ctx, api.CreateAgentRequest{Name: "vendor", Capabilities: []string{"compute.gpu-hours"}})
	if err != nil {
		t.Fatal(err)
	}
	m := newHostilePeer(t, "receipts", v)
	bogus := []byte("not a checkpoint\n")

	// m's node answers every request; it answers an ACCEPT of m's offer
	// with a receipt carrying the bogus checkpoint.
	var mu sync.Mutex
	var offerHash [32]byte
	got := make(chan *protocol.Envelope, 8)
	m.h.Handle(p2p.SessionProtocol, func(_ context.Context, _ peer.ID, b []byte) ([]byte, error) {
		r, err := decodeWireReq(b)
		if err != nil {
			return cbor.Marshal(&wireResp{Code: "bad_request", Message: err.Error()})
		}
		resp := &wireResp{}
		if r.Type == wireEnvelope {
			env, err := protocol.DecodeEnvelope(r.Envelope)
			if err != nil {
				return cbor.Marshal(&wireResp{Code: "bad_request", Message: err.Error()})
			}
			select {
			case got <- env:
			default:
			}
			if env.Performative == protocol.Accept {
				mu.Lock()
				oh := offerHash
				mu.Unlock()
				rc, err := protocol.SignReceipt(m.party.OrgKey, oh, env.Hash(), 7, bogus)
				if err != nil {
					return nil, err
				}
				resp.Receipt, _ = protocol.EncodeReceipt(rc)
			}
		}
		return cbor.Marshal(resp)
	})
	tm := &protocol.Terms{Resource: "gpu-hours", Quantity: "10", Unit: "hour", UnitPrice: "2.40", Currency: "USD",
		DeliverBy: protocol.Millis(time.Now().Add(30 * 24 * time.Hour))}

	t.Run("in the answer to the acceptor's ACCEPT", func(t *testing.T) {
		s := m.invite(t, v, ra.AgentID)
		offer := m.move(t, s, protocol.Propose, &protocol.ProposeBody{Subject: "10 GPU hours", Terms: tm})
		if resp := m.request(t, v, envReq(t, offer)); resp.Code != "" {
			t.Fatalf("offer refused: %s: %s", resp.Code, resp.Message)
		}
		mu.Lock()
		offerHash = offer.Hash()
		mu.Unlock()
		res, err := v.SendMessage(ctx, ra.AgentID, s.ID(), api.SendMessageRequest{Performative: "ACCEPT"})
		if err != nil {
			t.Fatal(err)
		}
		if res.CommitmentID == "" {
			t.Fatal("no commitment")
		}
		checkNotActive(t, v, res.CommitmentID, bogus)
	})
	t.Run("sent as the acceptor's receipt", func(t *testing.T) {
		for len(got) > 0 {
			<-got
		}
		s, offer := m.offerFrom(t, v, ra.AgentID, got)
		acc := m.move(t, s, protocol.Accept, nil)
		resp := m.request(t, v, envReq(t, acc))
		if resp.Code != "" || len(resp.Receipt) == 0 {
			t.Fatalf("ACCEPT: code %q (%s), receipt %d bytes", resp.Code, resp.Message, len(resp.Receipt))
		}
		id := protocol.CommitmentID(offer.Hash(), acc.Hash())
		rc, err := protocol.SignReceipt(m.party.OrgKey, offer.Hash(), acc.Hash(), 7, bogus)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := protocol.EncodeReceipt(rc)
		count := metric(t, v, wireRefused)
		resp = m.request(t, v, &wireReq{Type: wireReceipt, Receipt: raw})
		if resp.Code == "" {
			t.Errorf("a receipt with a bogus checkpoint was acknowledged")
		} else if got := metric(t, v, wireRefused); got != count+1 {
			t.Errorf("%s = %v, want %v", wireRefused, got, count+1)
		}
		checkNotActive(t, v, id, bogus)
	})
}

// offerFrom opens a session from m's agent to agent on v, has agent PROPOSE
// terms("2.80") and steps m's copy of the session with the offer, which m's
// handler passes on got.
func (m *hostilePeer) offerFrom(t *testing.T, v *Node, agent string, got <-chan *protocol.Envelope) (*protocol.Session, *protocol.Envelope) {
	t.Helper()
	s := m.invite(t, v, agent)
	if _, err := v.SendMessage(context.Background(), agent, s.ID(), api.SendMessageRequest{Performative: "PROPOSE", Terms: terms("2.80")}); err != nil {
		t.Fatal(err)
	}
	var offer *protocol.Envelope
	select {
	case offer = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the vendor's offer did not arrive")
	}
	if _, err := s.Step(offer, time.Now()); err != nil {
		t.Fatal(err)
	}
	return s, offer
}

// checkNotActive fails unless commitment id on n is PENDING with no receipt
// carrying checkpoint bogus.
func checkNotActive(t *testing.T, n *Node, id string, bogus []byte) {
	t.Helper()
	c, err := n.Commitment(context.Background(), api.Principal{Admin: true}, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range c.Receipts {
		if r.Checkpoint == string(bogus) {
			t.Fatalf("commitment %s is %s holding a receipt of %s whose checkpoint is %q", id, c.State, r.Org, r.Checkpoint)
		}
	}
	if c.State != "PENDING" {
		t.Fatalf("commitment %s is %s", id, c.State)
	}
}
