package protocol

import (
	"crypto/ed25519"
	"encoding/hex"
	"math/big"
	"testing"
)

// Encodings of points that verifiers are known to treat differently:
// identity, small-order points, non-canonical encodings of y, and a set
// sign bit on x = 0.
var oddPoints = []string{
	"0100000000000000000000000000000000000000000000000000000000000000", // identity
	"0100000000000000000000000000000000000000000000000000000000000080", // identity, x sign set
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p+1 (identity, non-canonical)
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = -1, order 2
	"0000000000000000000000000000000000000000000000000000000000000000", // y = 0, order 4
	"0000000000000000000000000000000000000000000000000000000000000080", // y = 0, order 4, x sign set
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p (non-canonical 0)
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", // y = p, x sign set
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", // order 8
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", // order 8
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", // order 8
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85", // order 8
	"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", // not on the curve
}

// groupOrder is L, the order of the Ed25519 base point.
var groupOrder, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

func leScalar(n *big.Int) []byte {
	be := n.FillBytes(make([]byte, 32))
	for i, j := 0, len(be)-1; i < j; i, j = i+1, j-1 {
		be[i], be[j] = be[j], be[i]
	}
	return be
}

func fromLE(b []byte) *big.Int {
	be := make([]byte, len(b))
	for i := range b {
		be[len(b)-1-i] = b[i]
	}
	return new(big.Int).SetBytes(be)
}

// agreementCases returns (public key, message, signature) triples: valid
// signatures, the same with S+L (non-canonical S), and every combination of
// odd points as key and as R with small S.
func agreementCases(tb testing.TB) (cases [][3][]byte) {
	tb.Helper()
	msg := []byte("asp/1.0 verify agreement")
	seed := make([]byte, ed25519.SeedSize)
	for i := 0; i < 4; i++ {
		seed[0] = byte(i)
		priv := ed25519.NewKeyFromSeed(seed)
		pub := priv.Public().(ed25519.PublicKey)
		sig := ed25519.Sign(priv, msg)
		cases = append(cases, [3][]byte{pub, msg, sig})
		s := new(big.Int).Add(fromLE(sig[32:]), groupOrder)
		if s.BitLen() <= 256 {
			nc := append(append([]byte(nil), sig[:32]...), leScalar(s)...)
			cases = append(cases, [3][]byte{pub, msg, nc})
		}
		flipped := append([]byte(nil), sig...)
		flipped[5] ^= 1
		cases = append(cases, [3][]byte{pub, msg, flipped})
	}
	for _, a := range oddPoints {
		pub, _ := hex.DecodeString(a)
		for _, r := range oddPoints {
			rb, _ := hex.DecodeString(r)
			for _, s := range []*big.Int{big.NewInt(0), big.NewInt(1), groupOrder} {
				sig := append(append([]byte(nil), rb...), leScalar(s)...)
				cases = append(cases, [3][]byte{pub, msg, sig})
			}
		}
	}
	return cases
}

// TestVerifyAgreesWithStdlib checks that the verifier the protocol uses
// reaches crypto/ed25519's verdict on valid, forged and edge-case
// signatures.
func TestVerifyAgreesWithStdlib(t *testing.T) {
	accepted := 0
	for i, c := range agreementCases(t) {
		want := ed25519.Verify(c[0], c[1], c[2])
		if got := verifyEd25519(c[0], c[1], c[2]); got != want {
			t.Errorf("case %d: key %x sig %x: verifyEd25519 = %v, crypto/ed25519 = %v", i, c[0], c[2], got, want)
		}
		if want {
			accepted++
		}
	}
	// The valid signatures at least; the table must exercise both verdicts.
	if accepted < 4 {
		t.Fatalf("only %d cases accepted; the table lost its valid signatures", accepted)
	}
	if verifyEd25519(make([]byte, 31), nil, make([]byte, 64)) || verifyEd25519(make([]byte, 32), nil, make([]byte, 63)) {
		t.Fatal("wrong key or signature length accepted")
	}
}

// FuzzVerifyAgrees: on any input the protocol's verifier and crypto/ed25519
// agree.
func FuzzVerifyAgrees(f *testing.F) {
	for _, c := range agreementCases(f) {
		f.Add(c[0], c[1], c[2])
	}
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
			if verifyEd25519(pub, msg, sig) {
				t.Fatal("wrong length accepted")
			}
			return
		}
		if got, want := verifyEd25519(pub, msg, sig), ed25519.Verify(pub, msg, sig); got != want {
			t.Fatalf("key %x sig %x: verifyEd25519 = %v, crypto/ed25519 = %v", pub, sig, got, want)
		}
	})
}
