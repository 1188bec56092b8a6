package registry

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// ProtocolID is the libp2p protocol on which a node serves the cards of
// its own agents. One request, one response, one stream:
//
//	request  = frame(CBOR {"op": "find", "capability": C})   cards matching C or a child of it
//	         | frame(CBOR {"op": "get", "agentId": A})        the card of A (a tombstone if withdrawn)
//	response = frame(CBOR {"cards": [card bytes…], "error"?: text})
//	frame(b) = uvarint(len(b)) || b
//
// Requests are capped at 4 KiB, responses at 1 MiB and 128 cards.
const ProtocolID protocol.ID = "/asp/registry/1.0.0"

const (
	maxRequestSize      = 4 << 10
	maxResponseSize     = 1 << 20
	maxCardsPerResponse = 128
	serveTimeout        = 10 * time.Second
)

const (
	opFind = "find"
	opGet  = "get"
)

type wireRequest struct {
	Op         string `cbor:"op"`
	Capability string `cbor:"capability,omitempty"`
	AgentID    string `cbor:"agentId,omitempty"`
}

type wireResponse struct {
	Cards [][]byte `cbor:"cards"`
	Error string   `cbor:"error,omitempty"`
}

var errFrameTooLarge = errors.New("registry: frame too large")

func writeFrame(w io.Writer, b []byte) error {
	buf := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(b)), uint64(len(b)))
	_, err := w.Write(append(buf, b...))
	return err
}

func readFrame(r *bufio.Reader, max int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > uint64(max) {
		return nil, fmt.Errorf("%w: %d > %d", errFrameTooLarge, n, max)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// handleStream serves one request of ProtocolID from the local cards.
func (r *Registry) handleStream(s network.Stream) {
	_ = s.SetDeadline(time.Now().Add(serveTimeout))
	b, err := readFrame(bufio.NewReader(s), maxRequestSize)
	if err != nil {
		_ = s.Reset()
		return
	}
	var req wireRequest
	var resp wireResponse
	if err := decMode.Unmarshal(b, &req); err != nil {
		resp.Error = "malformed request"
	} else {
		resp = r.answer(req)
	}
	out, err := encMode.Marshal(resp)
	if err != nil || writeFrame(s, out) != nil {
		_ = s.Reset()
		return
	}
	_ = s.Close()
}

// answer builds the response to a request from the local cards that have
// not expired.
func (r *Registry) answer(req wireRequest) wireResponse {
	resp := wireResponse{Cards: [][]byte{}}
	now := r.clock()
	r.mu.Lock()
	defer r.mu.Unlock()
	switch req.Op {
	case opFind:
		q, err := NormalizeCapability(req.Capability)
		if err != nil {
			resp.Error = err.Error()
			return resp
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
		resp.Error = fmt.Sprintf("unknown op %q", req.Op)
	}
	return resp
}

// request sends one request to p over ProtocolID and returns the raw
// cards of the answer. The stream is reset when ctx ends.
func (r *Registry) request(ctx context.Context, p peer.ID, req wireRequest) ([][]byte, error) {
	b, err := encMode.Marshal(req)
	if err != nil {
		return nil, err
	}
	s, err := r.host.NewStream(ctx, p, ProtocolID)
	if err != nil {
		return nil, fmt.Errorf("open %s to %s: %w", ProtocolID, p, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(d)
	}
	if err := writeFrame(s, b); err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("write request to %s: %w", p, err)
	}
	_ = s.CloseWrite()
	out, err := readFrame(bufio.NewReader(s), maxResponseSize)
	if err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("read answer of %s: %w", p, err)
	}
	_ = s.Close()
	var resp wireResponse
	if err := decMode.Unmarshal(out, &resp); err != nil {
		return nil, fmt.Errorf("answer of %s: %w: %v", p, ErrMalformed, err)
	}
	if resp.Error != "" {
		return nil, fmt.Errorf("answer of %s: %s", p, resp.Error)
	}
	if len(resp.Cards) > maxCardsPerResponse {
		resp.Cards = resp.Cards[:maxCardsPerResponse]
	}
	return resp.Cards, nil
}
