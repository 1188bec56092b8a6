package node

import (
	"context"
	"time"

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
