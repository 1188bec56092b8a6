package registry

import (
	"context"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aspnode/asp/p2p"
)

// ProtocolID is the libp2p protocol on which a node serves the cards of
// its own agents. It runs on p2p's request/response frames (Host.Handle and
// Host.Request): each request is one frame and gets one response frame, and
// a stream may carry several in turn.
//
//	request  = frame(CBOR {"op": "find", "capability": C})   cards matching C or a child of it
//	         | frame(CBOR {"op": "get", "agentId": A})        the card of A (a tombstone if withdrawn)
//	response = frame(0x00 || CBOR {"cards": [card bytes…]})
//	         | frame(0x01 || uvarint(len(code)) || code || message)   a refusal
//	frame(b) = uvarint(len(b)) || b
//
// Requests are capped at 4 KiB (a longer one is refused with the code
// bad_request), responses at 1 MiB and 128 cards. See registry/README.md,
// "Wire format".
const ProtocolID protocol.ID = "/asp/registry/1.1.0"

const (
	maxRequestSize      = 4 << 10
	maxResponseSize     = p2p.MaxFrameSize
	maxCardsPerResponse = 128
)

// Codes of the refusals the registry answers with.
const (
	codeBadRequest  = "bad_request" // malformed, oversized, unknown op, bad capability
	codeUnavailable = "unavailable" // the registry is closed
)

const (
	opFind = "find"
	opGet  = "get"
)

// Wire is what the registry needs of the node's p2p host to serve and ask
// ProtocolID. *p2p.Host implements it.
type Wire interface {
	Handle(proto protocol.ID, fn p2p.Handler)
	RemoveHandler(proto protocol.ID)
	Request(ctx context.Context, to peer.ID, proto protocol.ID, req []byte) ([]byte, error)
}

var _ Wire = (*p2p.Host)(nil)

type wireRequest struct {
	Op         string `cbor:"op"`
	Capability string `cbor:"capability,omitempty"`
	AgentID    string `cbor:"agentId,omitempty"`
}

type wireResponse struct {
	Cards [][]byte `cbor:"cards"`
}

func refuse(code, format string, args ...any) *p2p.RemoteError {
	return &p2p.RemoteError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// serve answers one request of ProtocolID from the local cards. p2p has
// read the frame (capped at p2p.MaxFrameSize, with its stall deadline); a
// refusal goes back as p2p's error frame.
func (r *Registry) serve(_ context.Context, _ peer.ID, b []byte) ([]byte, error) {
	if len(b) > maxRequestSize {
		return nil, refuse(codeBadRequest, "request of %d bytes, cap %d", len(b), maxRequestSize)
	}
	var req wireRequest
	if err := decMode.Unmarshal(b, &req); err != nil {
		return nil, refuse(codeBadRequest, "malformed request")
	}
	resp, err := r.answer(req)
	if err != nil {
		return nil, err
	}
	return encMode.Marshal(resp)
}

// answer builds the response to a request from the local cards that have
// not expired.
func (r *Registry) answer(req wireRequest) (wireResponse, error) {
	resp := wireResponse{Cards: [][]byte{}}
	now := r.clock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.closed {
		return resp, refuse(codeUnavailable, "registry closed")
	}
	switch req.Op {
	case opFind:
		q, err := NormalizeCapability(req.Capability)
		if err != nil {
			return resp, refuse(codeBadRequest, "%s", err.Error())
		}
		size := 0
		for _, id := range r.localOrderLocked() {
			e := r.mu.local[id]
			if !e.card.Matches(q) || now.After(e.card.NotAfter) {
				continue
			}
			if len(resp.Cards) == maxCardsPerResponse || size+len(e.raw) > maxResponseSize-1024 {
				break
			}
			resp.Cards = append(resp.Cards, e.raw)
			size += len(e.raw)
		}
	case opGet:
		if e, ok := r.mu.local[req.AgentID]; ok && !now.After(e.card.NotAfter) {
			resp.Cards = append(resp.Cards, e.raw)
		}
	default:
		return resp, refuse(codeBadRequest, "unknown op %q", req.Op)
	}
	return resp, nil
}

// request sends one request to p over ProtocolID and returns the raw
// cards of the answer. The request ends with ctx (or p2p's request timeout
// when ctx has no deadline); a refusal is returned wrapping the peer's
// *p2p.RemoteError.
func (r *Registry) request(ctx context.Context, p peer.ID, req wireRequest) ([][]byte, error) {
	b, err := encMode.Marshal(req)
	if err != nil {
		return nil, err
	}
	out, err := r.wire.Request(ctx, p, ProtocolID, b)
	if err != nil {
		var re *p2p.RemoteError
		if errors.As(err, &re) {
			return nil, fmt.Errorf("answer of %s: %w", p, err)
		}
		return nil, fmt.Errorf("ask %s over %s: %w", p, ProtocolID, err)
	}
	var resp wireResponse
	if err := decMode.Unmarshal(out, &resp); err != nil {
		return nil, fmt.Errorf("answer of %s: %w: %v", p, ErrMalformed, err)
	}
	if len(resp.Cards) > maxCardsPerResponse {
		resp.Cards = resp.Cards[:maxCardsPerResponse]
	}
	return resp.Cards, nil
}
