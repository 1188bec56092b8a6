package attest

import (
	"bytes"
	"testing"
	"time"
)

// FuzzDecode: Decode never panics; what it accepts re-encodes to the same
// bytes; Verify never panics on it.
func FuzzDecode(f *testing.F) {
	fx := newFixture(f, "fuzz")
	now := t0.Add(time.Hour)
	good := fx.attest(f, Fulfilled, now)
	f.Add(mustEncode(f, good))
	bad := fx.attest(f, Breached, now)
	resign(f, bad, fx.outsider.AgentKey, fx.outsiderCert)
	f.Add(mustEncode(f, bad))
	one := fx.attest(f, Breached, now) // one receipt only
	one.Receipts = one.Receipts[1:]
	resign(f, one, fx.buyer.AgentKey, fx.buyerCert)
	f.Add(mustEncode(f, one))
	f.Add([]byte{0xa0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := Decode(b)
		if err != nil {
			return
		}
		again, err := a.Encode()
		if err != nil {
			t.Fatalf("decoded attestation does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
		_ = a.Verify(now)
	})
}
