package node

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/p2p"
	"github.com/aspnode/asp/protocol"
	"github.com/aspnode/asp/registry/attest"
	"github.com/aspnode/asp/registry/trust"
	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
)

// A party that once received an offer signs ACCEPTs the offerer never saw
// (offline, on an offer it countered, after the offer's validUntil), signs
// its own organisation's receipt for each, attests BREACHED about the
// offerer and gossips the attestations to a third node that trusts it. The
// third node refuses every one, counts each by reason, records none, and
// its score for the victim does not move; an honest fulfilled deal between
// the victim and another organisation is still attested, accepted and
// scored.
func TestFabricatedAcceptanceNeverScored(t *testing.T) {
	p := newPair(t)
	v := p.vendorNode // the victim's node
	m := newHostilePeer(t, "slanderer", v)
	obs := startNodeWith(t, filepath.Join(t.TempDir(), "observer-org"), func(c *Config) {
		// The observer trusts the slanderer's organisation as much as the
		// honest buyer's: were its attestations counted, they would weigh.
		c.PreTrusted = []string{p.buyerNode.peerID, m.h.ID().String()}
	})
	defer obs.Close()
	connect(t, obs, p.buyerNode)
	connect(t, obs, v)
	ctx := context.Background()

	// The honest deal: attested by both parties, recorded and scored.
	id := seedDeal(t, p)
	awaitActive(t, v, id)
	awaitActive(t, p.buyerNode, id)
	if _, err := v.CommitmentAction(ctx, p.vendor, id, "fulfill", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := p.buyerNode.CommitmentAction(ctx, p.buyer, id, "confirm", nil); err != nil {
		t.Fatal(err)
	}
	honest := awaitAttestations(t, obs, 2)
	at := obs.now()
	before := scoreAt(obs, p.vendor, at)
	if before.Completed != 1 {
		t.Fatalf("the honest deal was not scored: %+v", before)
	}
	// The vendor's genuine receipt, public in the honest attestations.
	var vendorReceipt []byte
	for _, r := range honest[0].Receipts {
		if rc, err := protocol.DecodeReceipt(r); err == nil && rc.Org == v.peerID {
			vendorReceipt = r
		}
	}
	if vendorReceipt == nil {
		t.Fatal("the honest attestation carries no vendor receipt")
	}

	// The slanderer's session with the victim: it receives the vendor's
	// offers and answers every request of the vendor's node.
	got := make(chan *protocol.Envelope, 8)
	m.h.Handle(p2p.SessionProtocol, func(_ context.Context, _ peer.ID, b []byte) ([]byte, error) {
		if r, err := decodeWireReq(b); err == nil && r.Type == wireEnvelope {
			if env, err := protocol.DecodeEnvelope(r.Envelope); err == nil {
				got <- env
			}
		}
		return cbor.Marshal(&wireResp{})
	})
	s := m.invite(t, v, p.vendor)
	offer := m.offerFromVendor(t, v, p.vendor, s, got, nil)

	now := time.Now()
	counts := map[string]float64{}
	slander := func(what, reason string, offer, acc *protocol.Envelope, receipts ...[]byte) {
		t.Helper()
		a := &attest.Attestation{Attester: m.agent().String(), Subject: p.vendor,
			CommitmentID: protocol.CommitmentID(offer.Hash(), acc.Hash()), Outcome: attest.Breached,
			Time: protocol.Millis(time.Now()), Offer: encodeEnv(t, offer), Acceptance: encodeEnv(t, acc),
			Receipts: receipts, Certificate: m.cert}
		if err := a.Sign(m.party.AgentKey); err != nil {
			t.Fatal(err)
		}
		b, err := a.Encode()
		if err != nil {
			t.Fatal(err)
		}
		gossipOnce(t, obs, b)
		counts[reason]++
		awaitMetric(t, obs, counts[reason], "asp_attest_validations_total", "result", "reject", "reason", reason)
		t.Logf("%s: refused (%s)", what, reason)
	}

	// 1. An ACCEPT of the open offer, signed and never sent.
	acc := m.offlineAccept(t, s, offer, now)
	slander("offline ACCEPT, own receipt only", "unreceipted", offer, acc, m.receipt(t, offer, acc))
	slander("offline ACCEPT, the vendor's receipt of another commitment", "unreceipted", offer, acc,
		vendorReceipt, m.receipt(t, offer, acc))

	// 2. The slanderer counters the offer for real, then accepts it anyway.
	counter := m.move(t, s, protocol.Counter, &protocol.CounterBody{Terms: protocol.Terms{UnitPrice: "2.00"}})
	if resp := m.request(t, v, envReq(t, counter)); resp.Code != "" {
		t.Fatalf("honest counter refused: %s: %s", resp.Code, resp.Message)
	}
	if _, err := s.Step(counter, time.Now()); err != nil {
		t.Fatal(err)
	}
	acc = m.offlineAccept(t, s, offer, time.Now())
	if resp := m.request(t, v, envReq(t, acc)); resp.Code == "" || len(resp.Receipt) > 0 {
		t.Fatalf("the victim's node took an ACCEPT of a countered offer: code %q, receipt %d bytes", resp.Code, len(resp.Receipt))
	}
	slander("ACCEPT of a countered offer", "unreceipted", offer, acc, m.receipt(t, offer, acc))

	// 3. An offer valid for a minute, accepted two minutes later.
	until := protocol.Millis(time.Now().Add(time.Minute))
	short := m.offerFromVendor(t, v, p.vendor, s, got, map[string]any{"validUntil": protocol.FormatTime(until)})
	acc = m.offlineAccept(t, s, short, until.Add(time.Minute))
	slander("ACCEPT after validUntil", "late_acceptance", short, acc, m.receipt(t, short, acc))

	// Nothing was delivered, recorded or scored.
	if n := len(awaitAttestations(t, obs, 2)); n != 2 {
		t.Fatalf("the observer recorded %d attestations, want the 2 honest ones", n)
	}
	if after := scoreAt(obs, p.vendor, at); after.Score != before.Score || after.Completed != before.Completed {
		t.Fatalf("the vendor's score at the observer moved: before %+v, after %+v", before, after)
	}
	if n := metric(t, obs, "asp_attest_validations_total", "result", "accept"); n != 2 {
		t.Fatalf("the observer accepted %v attestations, want the 2 honest ones", n)
	}
}

// awaitAttestations waits until n's ledger holds want attestations and
// returns them.
func awaitAttestations(t *testing.T, n *Node, want int) []*attest.Attestation {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ents, err := n.led.ByKind(ledger.KindAttestation, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var atts []*attest.Attestation
		for _, e := range ents {
			a, err := attest.Decode(e.Body)
			if err != nil {
				t.Fatal(err)
			}
			atts = append(atts, a)
		}
		if len(atts) >= want || time.Now().After(deadline) {
			if len(atts) != want {
				t.Fatalf("%s recorded %d attestations, want %d", n.peerID, len(atts), want)
			}
			return atts
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scoreAt is n's trust view of agent computed at the instant at.
func scoreAt(n *Node, agent string, at time.Time) trust.Explanation {
	n.ext.trust.mu.Lock()
	defer n.ext.trust.mu.Unlock()
	return n.ext.trust.model.Compute(n.peerID, at).Explain(agent)
}

// gossipOnce publishes b on the trust topic from a fresh libp2p host that
// knows only obs (each forged attestation from its own host, so that
// GossipSub's penalty for the previous one does not silence the next).
func gossipOnce(t *testing.T, obs *Node, b []byte) {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := p2p.New(context.Background(), p2p.Config{Key: k, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}},
		p2p.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.Connect(ctx, obs.host.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	topic, err := h.PubSub().Join(attest.Topic)
	if err != nil {
		t.Fatal(err)
	}
	for !slices.Contains(topic.ListPeers(), obs.host.ID()) {
		if ctx.Err() != nil {
			t.Fatal("the observer never appeared on the trust topic")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := topic.Publish(ctx, b); err != nil {
		t.Fatal(err)
	}
}

// offerFromVendor has agent on v PROPOSE terms("2.80") (with the extra body
// fields) in s, and steps s with the offer, which m's handler passes on got.
func (m *hostilePeer) offerFromVendor(t *testing.T, v *Node, agent string, s *protocol.Session, got <-chan *protocol.Envelope, body map[string]any) *protocol.Envelope {
	t.Helper()
	req := api.SendMessageRequest{Performative: "PROPOSE", Terms: terms("2.80")}
	if body != nil {
		req.Body, _ = json.Marshal(body)
	}
	if _, err := v.SendMessage(context.Background(), agent, s.ID(), req); err != nil {
		t.Fatal(err)
	}
	select {
	case offer := <-got:
		if _, err := s.Step(offer, time.Now()); err != nil {
			t.Fatal(err)
		}
		return offer
	case <-time.After(20 * time.Second):
		t.Fatal("the vendor's offer did not arrive")
	}
	return nil
}

// offlineAccept signs an ACCEPT of offer by m's agent at the instant at,
// chained to s's head, without asking s (or anyone) whether it is legal.
func (m *hostilePeer) offlineAccept(t *testing.T, s *protocol.Session, offer *protocol.Envelope, at time.Time) *protocol.Envelope {
	t.Helper()
	id, err := protocol.NewMessageID(at, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h := offer.Hash()
	env := &protocol.Envelope{Version: protocol.Version, MessageID: id, SessionID: s.ID(), Sender: m.agent().String(),
		Recipient: offer.Sender, Timestamp: protocol.Millis(at), SequenceNumber: s.NextSequence(m.agent()),
		Performative: protocol.Accept, Body: &protocol.AcceptBody{ReferenceID: offer.MessageID, ReferenceHash: h[:]}}
	env.Integrity.PreviousHash = s.Head()
	if err := env.Seal(m.party.AgentKey, m.cert); err != nil {
		t.Fatal(err)
	}
	return env
}

// receipt is m's organisation's receipt for the commitment of offer and
// acc, encoded.
func (m *hostilePeer) receipt(t *testing.T, offer, acc *protocol.Envelope) []byte {
	t.Helper()
	r, err := protocol.SignReceipt(m.party.OrgKey, offer.Hash(), acc.Hash(), 1, []byte("checkpoint\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := protocol.EncodeReceipt(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func encodeEnv(t *testing.T, env *protocol.Envelope) []byte {
	t.Helper()
	b, err := protocol.EncodeEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
