package node

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/p2p"
	"github.com/aspnode/asp/protocol"
	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p/core/peer"
)

// receiptsIn returns the receipts n's ledger records for commitment id, by
// the organisation that signed them.
func receiptsIn(t *testing.T, n *Node, id string) map[string][][]byte {
	t.Helper()
	out := map[string][][]byte{}
	size := n.led.Size()
	ents, err := n.led.Entries(0, size)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Kind != ledger.KindReceipt || e.Commitment != id {
			continue
		}
		r, err := protocol.DecodeReceipt(e.Body)
		if err != nil {
			t.Fatalf("entry %d: %v", e.Index, err)
		}
		out[r.Org] = append(out[r.Org], e.Body)
	}
	return out
}

// After the seed deal each ledger holds exactly one receipt of each
// organisation, and the receipt a node recorded as its own is the one the
// counterparty holds.
func TestBothReceiptsRecorded(t *testing.T) {
	p := newPair(t)
	id := seedDeal(t, p)
	awaitActive(t, p.buyerNode, id)
	awaitActive(t, p.vendorNode, id)
	b, v := receiptsIn(t, p.buyerNode, id), receiptsIn(t, p.vendorNode, id)
	for name, rs := range map[string]map[string][][]byte{"buyer": b, "vendor": v} {
		for _, org := range []string{p.buyerNode.peerID, p.vendorNode.peerID} {
			if len(rs[org]) != 1 {
				t.Fatalf("%s's ledger holds %d receipts of %s, want 1", name, len(rs[org]), org)
			}
		}
	}
	if !bytes.Equal(b[p.buyerNode.peerID][0], v[p.buyerNode.peerID][0]) {
		t.Error("the buyer's own receipt differs from the one the vendor holds")
	}
	if !bytes.Equal(v[p.vendorNode.peerID][0], b[p.vendorNode.peerID][0]) {
		t.Error("the vendor's own receipt differs from the one the buyer holds")
	}
}

// A node whose counterparty never sends its receipt still records its own
// receipt, the one it sent, once the commitment has waited
// receiptRecordDelay without activating.
func TestOwnReceiptRecordedWithoutActivation(t *testing.T) {
	cv := startClockedVendor(t, nil)
	v, vendor, offset := cv.n, cv.vendor, cv.offset
	ctx := context.Background()
	m := newHostilePeer(t, "silent-acceptor", v)
	// m acknowledges everything and never sends a receipt of its own.
	got := make(chan *protocol.Envelope, 8)
	m.h.Handle(p2p.SessionProtocol, func(_ context.Context, _ peer.ID, b []byte) ([]byte, error) {
		if r, err := decodeWireReq(b); err == nil && r.Type == wireEnvelope {
			if env, err := protocol.DecodeEnvelope(r.Envelope); err == nil {
				select {
				case got <- env:
				default:
				}
			}
		}
		return cbor.Marshal(&wireResp{})
	})
	s, _ := m.offerFrom(t, v, vendor, got)
	resp := m.request(t, v, envReq(t, m.move(t, s, protocol.Accept, nil)))
	if resp.Code != "" || len(resp.Receipt) == 0 {
		t.Fatalf("ACCEPT: code %q (%s), receipt %d bytes", resp.Code, resp.Message, len(resp.Receipt))
	}
	r, err := protocol.DecodeReceipt(resp.Receipt)
	if err != nil {
		t.Fatal(err)
	}
	id := r.CommitmentID
	if c, err := v.Commitment(ctx, api.Principal{Admin: true}, id); err != nil || c.State != "PENDING" {
		t.Fatalf("commitment %s: %+v %v, want PENDING", id, c.State, err)
	}

	offset.Store(int64(receiptRecordDelay + time.Second))
	deadline := time.Now().Add(10 * time.Second)
	for {
		own := receiptsIn(t, v, id)[v.peerID]
		if len(own) == 1 {
			if !bytes.Equal(own[0], resp.Receipt) {
				t.Fatal("the recorded receipt is not the one sent")
			}
			break
		}
		if len(own) > 1 || time.Now().After(deadline) {
			t.Fatalf("%d receipts of the vendor recorded, want 1", len(own))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := v.led.Check(ctx); err != nil {
		t.Fatal(err)
	}
}
