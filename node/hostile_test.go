package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/p2p"
	"github.com/aspnode/asp/protocol"
	"github.com/aspnode/asp/protocol/protocoltest"
	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p/core/crypto"
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
	}{recordedSize(t, n), ss, cs, as})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// recordedSize is the ledger's size less its anchors: the counterparty's
// witnessing rounds add anchors at any time, input or none.
func recordedSize(t *testing.T, n *Node) uint64 {
	t.Helper()
	anchors := func() uint64 {
		ents, err := n.led.ByKind(ledger.KindAnchor, 0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		return uint64(len(ents))
	}
	for {
		a := anchors()
		size := n.led.Size()
		if anchors() == a {
			return size - a
		}
	}
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
