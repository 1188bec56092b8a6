package node

import (
	"context"
	"testing"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Bad dispute input over the wire: each refused with its code, counted,
// and nothing recorded or changed on the receiving node.
func TestDisputeWireRefusals(t *testing.T) {
	d := newDisputePair(t)
	ctx := context.Background()
	id := d.deal(t, d.clock().Add(time.Hour))
	buyer := d.buyerNode
	vendorPeer, err := peer.Decode(d.vendorNode.peerID)
	if err != nil {
		t.Fatal(err)
	}
	v := d.vendorNode.localAgent(d.vendor)
	filing := func(mut func(*protocol.Dispute)) []byte {
		f := &protocol.Dispute{CommitmentID: id, FiledBy: d.vendor, Against: d.buyer, Obligation: "payment",
			Grounds: protocol.GroundsPaymentDefault, Severity: 2, Claim: "pay", Time: d.clock()}
		if mut != nil {
			mut(f)
		}
		if err := f.Sign(v.key, v.cert); err != nil {
			t.Fatal(err)
		}
		raw, err := protocol.EncodeDispute(f)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	send := func(from peer.ID, req *wireReq) *wireResp {
		t.Helper()
		b, err := cbor.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		out, err := buyer.handleWire(ctx, from, b)
		if err != nil {
			t.Fatal(err)
		}
		r, err := decodeWireResp(out)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	mallory := newHostilePeer(t, "dispute-mallory", buyer)

	fd, err := protocol.DecodeDispute(filing(nil))
	if err != nil {
		t.Fatal(err)
	}
	fd.Signatures[0].Signature[0] ^= 1
	forged, err := protocol.EncodeDispute(fd)
	if err != nil {
		t.Fatal(err)
	}
	later := filing(func(f *protocol.Dispute) { f.Time = f.Time.Add(time.Hour) })
	size, fp := recordedSize(t, buyer), fingerprint(t, buyer)
	for _, tc := range []struct {
		name string
		from peer.ID
		req  *wireReq
		code string
	}{
		{"from a node not the filer's", mallory.h.ID(), &wireReq{Type: wireDispute, Filing: filing(nil)}, protocol.CodeUnauthorized},
		{"by a non-party", vendorPeer, &wireReq{Type: wireDispute, Filing: filing(func(f *protocol.Dispute) {
			f.FiledBy, f.Against = d.buyer, d.vendor
		})}, protocol.CodeUnauthorized},
		{"forged signature", vendorPeer, &wireReq{Type: wireDispute, Filing: forged}, protocol.CodeInvalidSignature},
		{"dated beyond the clock bound", vendorPeer, &wireReq{Type: wireDispute, Filing: later}, protocol.CodeTimeout},
		{"unknown obligation", vendorPeer, &wireReq{Type: wireDispute, Filing: filing(func(f *protocol.Dispute) { f.Obligation = "commit.7" })}, protocol.CodeBadRequest},
		{"filing and step at once", vendorPeer, &wireReq{Type: wireDispute, Filing: filing(nil), Step: []byte{0xa0}}, protocol.CodeBadRequest},
		{"step of an unknown dispute", vendorPeer, &wireReq{Type: wireDispute, Step: stepFor(t, v, "dsp_00000000000000000000000000000000", id, d.clock())}, codeNotFound},
		{"undecodable filing", vendorPeer, &wireReq{Type: wireDispute, Filing: []byte{0xff}}, protocol.CodeBadRequest},
	} {
		before := metric(t, buyer, "asp_wire_refused_total", "code", tc.code)
		r := send(tc.from, tc.req)
		if r.Code != tc.code {
			t.Errorf("%s: answer %q (%s), want %q", tc.name, r.Code, r.Message, tc.code)
		}
		if got := metric(t, buyer, "asp_wire_refused_total", "code", tc.code); got != before+1 {
			t.Errorf("%s: refusals counted %v, want %v", tc.name, got, before+1)
		}
	}
	if recordedSize(t, buyer) != size {
		t.Fatalf("ledger grew from %d to %d on refused input", size, recordedSize(t, buyer))
	}
	assertUnchanged(t, "refused dispute input", buyer, fp)
	if ds, _ := buyer.Disputes(ctx, api.Principal{Admin: true}); len(ds) != 0 {
		t.Fatalf("disputes after refused input: %+v", ds)
	}

	// The vendor's own filing is taken; sent again it is answered as the
	// first time; a second filing on the same obligation and grounds is a
	// duplicate.
	good := filing(nil)
	if r := send(vendorPeer, &wireReq{Type: wireDispute, Filing: good}); r.Code != "" {
		t.Fatalf("filing: %s %s", r.Code, r.Message)
	}
	size = recordedSize(t, buyer)
	if r := send(vendorPeer, &wireReq{Type: wireDispute, Filing: good}); r.Code != "" || recordedSize(t, buyer) != size {
		t.Fatalf("resend: %q, ledger %d → %d", r.Code, size, recordedSize(t, buyer))
	}
	again := filing(func(f *protocol.Dispute) { f.Claim = "pay now" })
	if r := send(vendorPeer, &wireReq{Type: wireDispute, Filing: again}); r.Code != protocol.CodeDuplicate || recordedSize(t, buyer) != size {
		t.Fatalf("second filing: %q, ledger %d → %d", r.Code, size, recordedSize(t, buyer))
	}
}

func stepFor(t *testing.T, a *localAgent, disputeID, commitmentID string, at time.Time) []byte {
	t.Helper()
	s := &protocol.DisputeStep{DisputeID: disputeID, CommitmentID: commitmentID, Kind: protocol.StepEscalate, By: a.id.String(), Time: at}
	if err := s.Sign(a.key, a.cert); err != nil {
		t.Fatal(err)
	}
	raw, err := protocol.EncodeDisputeStep(s)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestDisputeRefusedIsRecorded: a filing the counterparty refuses (here:
// the filer's clock runs ten minutes ahead, beyond the bound) is recorded
// as refused (kind 32) on the filer's node, opens no dispute, moves the
// commitment nowhere, and stays refused after a restart.
func TestDisputeRefusedIsRecorded(t *testing.T) {
	d := newDisputePair(t)
	ctx := context.Background()
	id := d.deal(t, d.clock().Add(time.Hour))
	home := d.buyerNode.cfg.Home
	d.buyerNode.Close()
	skew := func() time.Time { return d.clock().Add(10 * time.Minute) }
	b := startClocked(t, home, skew, nil)
	t.Cleanup(func() { b.Close() })
	connect(t, b, d.vendorNode)
	awaitActive(t, b, id)

	_, err := b.FileDispute(ctx, d.buyer, id, api.FileDisputeRequest{Grounds: "non_delivery", Severity: 5, Claim: "refund"})
	if codeOf(err) != protocol.CodeTimeout {
		t.Fatalf("filing: %v, want the counterparty's timeout refusal", err)
	}
	check := func(n *Node) {
		t.Helper()
		if ds, _ := n.Disputes(ctx, api.Principal{Admin: true}); len(ds) != 0 {
			t.Fatalf("disputes: %+v", ds)
		}
		if c := commitmentState(t, n, id); c.State != "ACTIVE" {
			t.Fatalf("commitment %s, want ACTIVE", c.State)
		}
	}
	check(b)
	check(d.vendorNode)
	if rep := verifyLedger(t, b); rep.Kinds[ledger.KindMessageRefused] != 2 || rep.Kinds[ledger.KindDispute] != 1 {
		t.Fatalf("buyer's ledger: %+v", rep.Kinds)
	}
	b.Close()
	b2 := startClocked(t, home, skew, nil)
	t.Cleanup(func() { b2.Close() })
	check(b2)
}
