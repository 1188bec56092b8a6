package node

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/p2p"
	"github.com/aspnode/asp/protocol"
	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p/core/peer"
)

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
