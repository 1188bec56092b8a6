package node

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/ledger/witness"
	"github.com/aspnode/asp/protocol"
	"github.com/fxamacker/cbor/v2"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
)

// witnessState is what a refused witness request must leave unchanged at
// the witness w about log's ledger.
func witnessState(t *testing.T, w, log *Node) string {
	t.Helper()
	st, _, err := w.wit.store.Latest(ledger.OriginFor(log.peerID))
	if err != nil {
		t.Fatal(err)
	}
	ents, err := w.led.ByKind(ledger.KindAnchor, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	eq, _ := w.led.ByKind(ledger.KindEquivocation, 0, 10)
	b, _ := json.Marshal(struct {
		Size    uint64
		Root    [32]byte
		Anchors int
		Proofs  int
	}{st.Size, st.Root, len(ents), len(eq)})
	return string(b)
}

// TestBadWitnessRequestsRefused: requests from an organisation without
// business, with a wrong or missing consistency proof, for a smaller size
// than the one cosigned, under another organisation's certificate, or
// malformed, are refused with their codes, counted, and change nothing at
// the witness.
func TestBadWitnessRequestsRefused(t *testing.T) {
	p := newPair(t)
	a, b := p.buyerNode, p.vendorNode
	stranger := startNode(t, filepath.Join(t.TempDir(), "stranger-org"))
	defer stranger.Close()
	connect(t, stranger, b)
	id := seedDeal(t, p)
	awaitActive(t, a, id)
	awaitActive(t, b, id)
	index := a.getCommitment(id).index
	awaitf(t, "B to cosign A", func() bool { return cosignedBy(t, a, b.peerID) > index })
	cosigned := cosignedBy(t, a, b.peerID)
	ctx := context.Background()

	// A signs a larger checkpoint, which B has not seen.
	pad(t, a, a.led.Size()+5)
	cp, err := a.led.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	good, err := witness.NewRequest(a.led, cosigned, cp)
	if err != nil || len(good.Proof) == 0 {
		t.Fatalf("request: %+v %v", good, err)
	}
	var smaller []byte
	for s := cosigned - 1; s > 0 && smaller == nil; s-- {
		smaller, _ = a.led.CheckpointAt(s)
	}
	if smaller == nil {
		t.Fatal("no checkpoint below the cosigned size")
	}
	strangerCP, err := stranger.led.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	frame := func(req *witness.Request, cert []byte) *witnessReq {
		body, err := witness.EncodeRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		return &witnessReq{Body: body, KeyCert: cert}
	}
	wrong := *good
	wrong.Proof = append([][]byte{bytes.Repeat([]byte{7}, 32)}, good.Proof[1:]...)
	none := *good
	none.Proof = nil
	for _, tc := range []struct {
		name string
		from *Node
		req  *witnessReq
		code string
	}{
		{"no business", stranger, frame(&witness.Request{Checkpoint: strangerCP}, stranger.keyCert), protocol.CodeUnauthorized},
		{"wrong proof", a, frame(&wrong, a.keyCert), protocol.CodeBadRequest},
		{"no proof", a, frame(&none, a.keyCert), protocol.CodeBadRequest},
		{"rollback", a, frame(&witness.Request{Checkpoint: smaller}, a.keyCert), protocol.CodeConflict},
		{"another's certificate", a, frame(good, stranger.keyCert), protocol.CodeUnauthorized},
		{"not a frame", a, &witnessReq{Body: []byte("old 1\n"), KeyCert: []byte("x")}, protocol.CodeBadRequest},
	} {
		before := witnessState(t, b, a)
		n0 := metric(t, b, "asp_witness_requests_total", "code", tc.code)
		resp, err := tc.from.requestWitness(ctx, b.peerID, tc.req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if resp.Code != tc.code {
			t.Errorf("%s: code %q (%s), want %q", tc.name, resp.Code, resp.Message, tc.code)
		}
		if after := witnessState(t, b, a); after != before {
			t.Errorf("%s changed the witness: %s -> %s", tc.name, before, after)
		}
		if n := metric(t, b, "asp_witness_requests_total", "code", tc.code); n != n0+1 {
			t.Errorf("%s: counted %v, want %v", tc.name, n, n0+1)
		}
	}
	// The genuine request is cosigned.
	resp, err := a.requestWitness(ctx, b.peerID, frame(good, a.keyCert))
	if err != nil || resp.Code != "" {
		t.Fatalf("genuine request: %+v %v", resp, err)
	}
}

// TestForgedEquivocationProofRefused: a proof whose checkpoints are
// consistent, or whose signature does not verify, is refused by the
// topic's validator, counted, and nothing is held against the accused.
func TestForgedEquivocationProofRefused(t *testing.T) {
	p := newPair(t)
	a, b := p.buyerNode, p.vendorNode
	ctx := context.Background()
	cp, err := a.led.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var cert ledger.KeyCertificate
	if err := json.Unmarshal(a.keyCert, &cert); err != nil {
		t.Fatal(err)
	}
	encode := func(e *witness.Equivocation) []byte {
		e, err := e.WithCertificate(&cert)
		if err != nil {
			t.Fatal(err)
		}
		out, err := witness.EncodeEquivocation(e)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// Another root under A's signature line: the signature fails.
	lines := bytes.SplitN(cp, []byte("\n"), 4)
	lines[2] = []byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	badSig := bytes.Join(lines, []byte("\n"))
	forged := map[string][]byte{
		"consistent":    encode(witness.SameSizeEquivocation(cp, cp)),
		"bad signature": encode(witness.SameSizeEquivocation(cp, badSig)),
		"garbage":       []byte("not a proof"),
	}
	for name, proof := range forged {
		n0 := metric(t, b, "asp_equivocation_proofs_total", "outcome", "refused")
		msg := &pubsub.Message{Message: &pb.Message{Data: proof}}
		if r := b.validateProof(ctx, a.host.ID(), msg); r != pubsub.ValidationReject {
			t.Errorf("%s: validator said %v", name, r)
		}
		if n := metric(t, b, "asp_equivocation_proofs_total", "outcome", "refused"); n != n0+1 {
			t.Errorf("%s: counted %v", name, n-n0)
		}
		// Published by a node, it is refused at its own validator.
		if err := b.wit.topic.Publish(ctx, proof); err == nil {
			t.Errorf("%s: published", name)
		}
	}
	if b.equivocated(a.peerID) {
		t.Fatal("a forged proof is held against A")
	}
	if ents, _ := b.led.ByKind(ledger.KindEquivocation, 0, 10); len(ents) != 0 {
		t.Fatalf("%d proofs recorded", len(ents))
	}
	// B fetches the buyer's card: an agent B never heard of has no score.
	if _, err := b.AgentCard(ctx, p.buyer); err != nil {
		t.Fatal(err)
	}
	if tr, _ := b.Trust(ctx, p.buyer); tr.Score == 0 {
		t.Fatalf("A's trust at B: %+v", tr)
	}
}

// FuzzWitnessFrame: the witness protocol's frames decode strictly or not
// at all, and what decodes encodes back to a frame that decodes the same.
func FuzzWitnessFrame(f *testing.F) {
	f.Add([]byte{0xa2, 0x01, 0x41, 0x00, 0x02, 0x41, 0x01})
	f.Add([]byte{0xa1, 0x01, 0x66, 'c', 'o', 'n', 'f', 'l', 'i'})
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var req witnessReq
		if decodeWitnessFrame(b, &req) == nil {
			out, err := cbor.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			var again witnessReq
			if err := decodeWitnessFrame(out, &again); err != nil || !bytes.Equal(again.Body, req.Body) || !bytes.Equal(again.KeyCert, req.KeyCert) {
				t.Fatalf("re-encoded request: %+v %v", again, err)
			}
		}
		var resp witnessResp
		if decodeWitnessFrame(b, &resp) == nil {
			out, _ := cbor.Marshal(resp)
			var again witnessResp
			if err := decodeWitnessFrame(out, &again); err != nil || again.Code != resp.Code || !bytes.Equal(again.Body, resp.Body) {
				t.Fatalf("re-encoded response: %+v %v", again, err)
			}
		}
	})
}
