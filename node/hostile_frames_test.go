package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aspnode/asp/p2p"
	"github.com/fxamacker/cbor/v2"
)

func TestHostileFrames(t *testing.T) {
	p := newPair(t)
	v := p.vendorNode
	m := newHostilePeer(t, "frames", v)
	before := fingerprint(t, v)
	proto := string(p2p.SessionProtocol)

	// Frame-level garbage: the stream is reset before any handler runs.
	oversize := binary.AppendUvarint(nil, p2p.MaxFrameSize+1)
	frames := []struct {
		name       string
		data       []byte
		closeWrite bool
		reason     string
	}{
		{"garbage length prefix", bytes.Repeat([]byte{0xff}, 8), false, p2p.RefusedMalformed},
		{"non-minimal length prefix", []byte{0x85, 0x00, 1, 2, 3, 4, 5}, false, p2p.RefusedMalformed},
		{"another protocol's bytes", []byte("GET / HTTP/1.1\r\nHost: asp\r\n\r\n"), true, p2p.RefusedMalformed},
		{"truncated frame", []byte{0x40, 1, 2, 3}, true, p2p.RefusedMalformed},
		{"frame of 1 MiB + 1", append(oversize, bytes.Repeat([]byte{0xa0}, 64)...), false, p2p.RefusedOversize},
		{"frame of 256 MiB - 1", []byte{0xff, 0xff, 0xff, 0x7f}, false, p2p.RefusedOversize},
	}
	for _, tc := range frames {
		t.Run(tc.name, func(t *testing.T) {
			refused := metric(t, v, frameRefused, "protocol", proto, "reason", tc.reason)
			handled := metric(t, v, wireRefused)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := m.h.Host().NewStream(ctx, v.host.ID(), p2p.SessionProtocol)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Reset()
			_ = s.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := s.Write(tc.data); err != nil {
				t.Fatal(err)
			}
			if tc.closeWrite {
				_ = s.CloseWrite()
			}
			out, err := io.ReadAll(s)
			if err == nil {
				t.Fatalf("stream ended in order with %d bytes; want it reset", len(out))
			}
			var te interface{ Timeout() bool }
			if errors.As(err, &te) && te.Timeout() {
				t.Fatalf("stream not reset: %v", err)
			}
			if len(out) > 0 {
				t.Fatalf("got %d bytes of answer to a refused frame", len(out))
			}
			awaitMetric(t, v, refused+1, frameRefused, "protocol", proto, "reason", tc.reason)
			if got := metric(t, v, wireRefused); got != handled {
				t.Fatalf("the handler ran on a refused frame (%s went %v -> %v)", wireRefused, handled, got)
			}
		})
	}

	// Well-framed requests the node cannot use: answered with a typed
	// refusal on a stream that stays usable.
	cborOf := func(x any) []byte {
		b, err := cbor.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	deep := bytes.Repeat([]byte{0x81}, 64) // 64 nested one-element arrays
	deep = append(deep, 0x00)
	bigMap := map[int]int{}
	for i := range 100 {
		bigMap[i] = i
	}
	reqs := []struct {
		name  string
		data  []byte
		codes []string // acceptable codes
	}{
		{"text, not CBOR", []byte("hello, this is not CBOR at all"), []string{"bad_request"}},
		{"CBOR break byte", []byte{0xff}, []string{"bad_request"}},
		{"empty frame", []byte{}, []string{"bad_request"}},
		{"CBOR array", cborOf([]int{1, 2, 3}), []string{"bad_request"}},
		{"CBOR nested 64 deep", deep, []string{"bad_request"}},
		{"CBOR map of 100 pairs", cborOf(bigMap), []string{"bad_request"}},
		{"CBOR float as type", cborOf(map[int]float64{1: 1.5}), []string{"bad_request"}},
		{"request type 99", cborOf(&wireReq{Type: 99}), []string{"bad_request"}},
		{"request without a type", cborOf(map[string]string{}), []string{"bad_request"}},
		{"envelope request without an envelope", cborOf(&wireReq{Type: wireEnvelope}), []string{"bad_request"}},
		{"envelope request with garbage", cborOf(&wireReq{Type: wireEnvelope, Envelope: []byte("garbage")}), []string{"bad_request"}},
		{"receipt request with garbage", cborOf(&wireReq{Type: wireReceipt, Receipt: []byte{0xa1, 0x01}}), []string{"bad_request"}},
		{"action request with garbage", cborOf(&wireReq{Type: wireAction, Action: []byte{0x00}}), []string{"bad_request", "unsupported"}},
		{"envelope of 1 MiB - 64 bytes", cborOf(&wireReq{Type: wireEnvelope, Envelope: bytes.Repeat([]byte{0x61}, p2p.MaxFrameSize-64)}), []string{"bad_request"}},
	}
	for _, tc := range reqs {
		t.Run(tc.name, func(t *testing.T) {
			frames := metric(t, v, frameRefused)
			counts := map[string]float64{}
			for _, c := range tc.codes {
				counts[c] = metric(t, v, wireRefused, "code", c)
			}
			resp := m.requestRaw(t, v, tc.data)
			if !slices.Contains(tc.codes, resp.Code) {
				t.Fatalf("answer code %q (%s), want one of %v", resp.Code, resp.Message, tc.codes)
			}
			expectRefusal(t, v, resp, resp.Code, counts[resp.Code])
			if got := metric(t, v, frameRefused); got != frames {
				t.Errorf("a well-framed request was counted as a refused frame")
			}
		})
	}
	assertUnchanged(t, "hostile frames", v, before)

	// The counters are exposed on GET /metrics.
	tok, err := ReadAdminToken(v.cfg.Home)
	if err != nil {
		t.Fatal(err)
	}
	code, body := apiCall(t, v.Handler(), "GET", "/metrics", tok, "")
	if code != 200 {
		t.Fatalf("GET /metrics: %d", code)
	}
	for _, want := range []string{
		`asp_p2p_frames_refused_total{protocol="/asp/session/1.0.0",reason="malformed"} 4`,
		`asp_p2p_frames_refused_total{protocol="/asp/session/1.0.0",reason="oversize"} 2`,
		`asp_wire_refused_total{code="bad_request"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("GET /metrics lacks %s", want)
		}
	}

	// The victim still serves honest peers.
	id := seedDeal(t, p)
	awaitActive(t, p.buyerNode, id)
	awaitActive(t, p.vendorNode, id)
}
