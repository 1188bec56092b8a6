package registry

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aspnode/asp/p2p"
)

// writeFrame writes b to w as one p2p frame, as a request.
func writeFrame(w io.Writer, b []byte) error { return p2p.WriteFrame(w, b) }

// readAnswer reads one p2p response frame from r and returns the CBOR
// answer it carries; a refusal (an error frame) is returned as an error.
func readAnswer(r *bufio.Reader, max int) ([]byte, error) {
	b, err := p2p.ReadFrame(r, max)
	if err != nil {
		return nil, err
	}
	switch {
	case len(b) == 0:
		return nil, errors.New("empty response frame")
	case b[0] == 0:
		return b[1:], nil
	default:
		return nil, fmt.Errorf("refused: %q", b[1:])
	}
}

// ProtocolID speaks p2p's request/response frames: a p2p Request gets the
// CBOR answer, several requests share a stream, and refusals arrive as
// p2p.RemoteErrors with their code, including on a stream opened before
// Close.
func TestWireFrames(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nodes := newTestNet(t, 2, netOptions{})
	if _, err := nodes[0].r.Publish(ctx, Agent{Name: "a", Capabilities: []string{"compute.gpu-hours"}, PublicKey: agentKey(t)}); err != nil {
		t.Fatal(err)
	}
	ask := func(b []byte) (wireResponse, error) {
		out, err := nodes[1].p.Request(ctx, nodes[0].h.ID(), ProtocolID, b)
		if err != nil {
			return wireResponse{}, err
		}
		var resp wireResponse
		if err := decMode.Unmarshal(out, &resp); err != nil {
			t.Fatalf("answer is not a CBOR response: %v (%x)", err, out)
		}
		return resp, nil
	}
	mustMarshal := func(req wireRequest) []byte {
		b, err := encMode.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for range 3 {
		resp, err := ask(mustMarshal(wireRequest{Op: opFind, Capability: "compute"}))
		if err != nil || len(resp.Cards) != 1 {
			t.Fatalf("find = %d cards, %v", len(resp.Cards), err)
		}
	}
	refused := func(what string, b []byte, code string) {
		t.Helper()
		_, err := ask(b)
		var re *p2p.RemoteError
		if !errors.As(err, &re) || re.Code != code || re.Message == "" {
			t.Errorf("%s: %v, want a refusal with code %s", what, err, code)
		}
	}
	refused("oversized", mustMarshal(wireRequest{Op: opGet, AgentID: strings.Repeat("x", maxRequestSize)}), codeBadRequest)
	refused("malformed", []byte{0xff, 0x00}, codeBadRequest)
	refused("unknown op", mustMarshal(wireRequest{Op: "delete"}), codeBadRequest)
	refused("bad capability", mustMarshal(wireRequest{Op: opFind, Capability: "BAD CAP"}), codeBadRequest)
	if err := nodes[0].r.Close(); err != nil {
		t.Fatal(err)
	}
	refused("after Close", mustMarshal(wireRequest{Op: opFind, Capability: "compute"}), codeUnavailable)
}
