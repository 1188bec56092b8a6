package node

import (
	"context"
	"encoding/hex"
	"time"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/p2p"
	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p/core/peer"
)

// requestTimeout bounds one request to another node.
const requestTimeout = 10 * time.Second

// request sends one request to the node of org and decodes its answer. A
// transport failure is an error; a refusal is a response with Code set.
func (n *Node) request(ctx context.Context, org string, req *wireReq) (*wireResp, error) {
	pid, err := peer.Decode(org)
	if err != nil {
		return nil, err
	}
	b, err := cbor.Marshal(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var out []byte
	if n.opts.transport != nil {
		out, err = n.opts.transport.RoundTrip(ctx, pid, b)
	} else {
		out, err = n.host.Request(ctx, pid, p2p.SessionProtocol, b)
	}
	if err != nil {
		return nil, err
	}
	return decodeWireResp(out)
}

// transport carries one session-protocol request to another node and
// brings back its answer. The default is the libp2p host; the node harness
// puts its own queue in its place.
type transport interface {
	RoundTrip(ctx context.Context, to peer.ID, req []byte) ([]byte, error)
}

// spawn runs f in the background, owned by the node (Close waits for it).
// The node harness counts these to know when a step has settled.
func (n *Node) spawn(f func()) {
	if n.opts.spawn != nil {
		n.opts.spawn(f)
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// Checkpoint implements api.Backend.
func (n *Node) Checkpoint(ctx context.Context) ([]byte, error) {
	return n.led.Checkpoint(ctx)
}

// Entries implements api.Backend.
func (n *Node) Entries(ctx context.Context, from, limit uint64) (api.EntriesPage, error) {
	size := n.led.Size()
	page := api.EntriesPage{Size: size, Entries: []api.EntryInfo{}}
	if from >= size {
		return page, nil
	}
	ents, err := n.led.Entries(from, limit)
	if err != nil {
		return page, err
	}
	for _, e := range ents {
		h := e.Hash()
		page.Entries = append(page.Entries, api.EntryInfo{
			Index: e.Index, Time: e.Time, Kind: e.Kind.String(), Session: e.Session, Commitment: e.Commitment,
			PrevHash: hex.EncodeToString(e.PrevHash[:]), Hash: hex.EncodeToString(h[:]), Body: e.Body,
		})
	}
	return page, nil
}
