package registry

import (
	"bytes"
	"testing"
)

// FuzzDecodeCard: decoding never panics; whatever decodes re-encodes to
// the same bytes, and Verify never panics on it.
func FuzzDecodeCard(f *testing.F) {
	good := testCard(f, seedKey(1), "vendor", "compute.gpu-hours", "storage")
	raw := mustMarshal(f, good)
	f.Add(raw)
	tomb := &Card{AgentID: good.AgentID, Org: good.Org, Name: good.Name, Version: 2, NotAfter: good.NotAfter, Withdrawn: true}
	_ = tomb.Sign(seedKey(1))
	f.Add(mustMarshal(f, tomb))
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCard(b)
		if err != nil {
			if RejectReason(err) == "" {
				t.Fatalf("decode error without a reason: %v", err)
			}
			return
		}
		again, err := c.Marshal()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatal("decoded card re-encodes differently")
		}
		_ = c.Verify(t0)
		_ = c.A2A("")
	})
}
