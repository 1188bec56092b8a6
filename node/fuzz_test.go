package node

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aspnode/asp/node/api"
	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p/core/peer"
)

// FuzzHandleWire feeds arbitrary requests, as from a connected peer, to a
// real node's session-protocol handler: it never panics, always answers
// with a decodable response, and nothing a peer without a session can send
// changes the node's ledger.
func FuzzHandleWire(f *testing.F) {
	for _, seed := range []wireReq{
		{Type: wireEnvelope, Envelope: []byte{0xa0}},
		{Type: wireReceipt, Receipt: []byte{0xa1, 0x01, 0x02}},
		{Type: wireAction, Action: []byte("x")},
		{Type: wireHead, Session: "01a248f5-3343-7a73-95e6-b577be63b460", Length: 3, Head: make([]byte, 32), Ended: "x"},
		{Type: wireDispute, Filing: []byte{0xa0}, Action: []byte{0xa0}},
		{Type: wireDispute, Step: []byte{0xa1, 0x01, 0x02}},
		{Type: wireCancel, Action: []byte("x")},
		{Type: 9},
	} {
		b, _ := cbor.Marshal(seed)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0x00})
	// One node per run of the target (each fuzzing worker is a process of
	// its own), started on the first input and closed with the target.
	var (
		fuzzOnce sync.Once
		fuzzNode *Node
		fuzzPeer peer.ID
		fuzzErr  error
	)
	tmp := f.TempDir()
	f.Cleanup(func() {
		if fuzzNode != nil {
			fuzzNode.Close()
		}
	})
	f.Fuzz(func(t *testing.T, req []byte) {
		fuzzOnce.Do(func() {
			dir := filepath.Join(tmp, "org")
			if _, err := Init(dir, "fuzz", "test"); err != nil {
				fuzzErr = err
				return
			}
			cfg, err := LoadConfig(dir)
			if err != nil {
				fuzzErr = err
				return
			}
			n, err := New(cfg, WithoutAPI())
			if err != nil {
				fuzzErr = err
				return
			}
			if fuzzErr = n.Start(context.Background()); fuzzErr != nil {
				return
			}
			if _, fuzzErr = n.CreateAgent(context.Background(), api.CreateAgentRequest{Name: "vendor"}); fuzzErr != nil {
				return
			}
			fuzzNode = n
			fuzzPeer, fuzzErr = peer.Decode("12D3KooWDHWRaAu5TqKCdcS6bw88SEDkFp8YU1KdVtzvaL7K6o6Z")
		})
		if fuzzErr != nil {
			t.Fatal(fuzzErr)
		}
		n := fuzzNode
		size := n.led.Size()
		out, err := n.handleWire(context.Background(), fuzzPeer, req)
		if err != nil {
			t.Fatalf("handler error %v", err)
		}
		if _, err := decodeWireResp(out); err != nil {
			t.Fatalf("undecodable response: %v", err)
		}
		if n.led.Size() != size {
			t.Fatalf("ledger grew from %d to %d on input %x", size, n.led.Size(), req)
		}
	})
}
