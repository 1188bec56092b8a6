package witness

import (
	"bytes"
	"errors"
	"testing"

	"github.com/aspnode/asp/ledger"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/fxamacker/cbor/v2"
	"golang.org/x/mod/sumdb/note"
)

// forkedLogs returns two ledgers of one organization (one key) that share
// their first 5 entries and then differ: the log rewritten from a fork
// and re-signed with its real key. a has 10 entries, b 13.
func forkedLogs(t testing.TB) (a, b *ledger.Ledger, cert *ledger.KeyCertificate) {
	a, cert = openLog(t, vfs.NewMem(), "a", logOrg)
	b, _ = openLog(t, vfs.NewMem(), "b", logOrg)
	grow(t, a, "shared", 5)
	grow(t, b, "shared", 5)
	grow(t, a, "deal with X", 5)
	grow(t, b, "deal with Y", 8)
	return a, b, cert
}

func inclusionProof(t testing.TB, a, b *ledger.Ledger, index uint64) *Equivocation {
	t.Helper()
	leafA, _ := a.EntryHash(index)
	leafB, _ := b.EntryHash(index)
	pa, err := a.InclusionProof(index, a.Size())
	if err != nil {
		t.Fatal(err)
	}
	pb, err := b.InclusionProof(index, b.Size())
	if err != nil {
		t.Fatal(err)
	}
	cpA, _ := a.LatestCheckpoint()
	cpB, _ := b.LatestCheckpoint()
	return InclusionEquivocation(cpA, cpB, index, leafA, pa, leafB, pb)
}

// roundTrip encodes and decodes p.
func roundTrip(t testing.TB, p *Equivocation) *Equivocation {
	t.Helper()
	b, err := EncodeEquivocation(p)
	if err != nil {
		t.Fatal(err)
	}
	q, err := DecodeEquivocation(b)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// TestEquivocationProofs: both kinds of proof, built from a log forked and
// re-signed with its real key, verify with the log's certified key, from
// a resolver or from the certificate they carry.
func TestEquivocationProofs(t *testing.T) {
	a, b, cert := forkedLogs(t)
	cpA10, _ := a.LatestCheckpoint()
	cpB10 := signAtWith(t, b, 10)
	for name, p := range map[string]*Equivocation{
		"same size": SameSizeEquivocation(cpA10, cpB10),
		"inclusion": inclusionProof(t, a, b, 7),
	} {
		q := roundTrip(t, p)
		if origin, err := VerifyEquivocation(q, Certificates(cert)); err != nil || origin != originOf(logOrg) {
			t.Fatalf("%s: %q %v", name, origin, err)
		}
		withCert, _ := q.WithCertificate(cert)
		if origin, err := VerifyEquivocation(roundTrip(t, withCert), nil); err != nil || origin != originOf(logOrg) {
			t.Fatalf("%s, self-contained: %q %v", name, origin, err)
		}
		if _, err := VerifyEquivocation(q, nil); !errors.Is(err, ErrInvalidProof) {
			t.Fatalf("%s: no resolver and no certificate: %v", name, err)
		}
	}
}

// signAtWith signs a checkpoint of l at size with logOrg's real key.
func signAtWith(t testing.TB, l *ledger.Ledger, size uint64) []byte {
	s, _, _ := ledger.NewCheckpointSigner(logOrg, originOf(logOrg))
	n, err := note.Sign(&note.Note{Text: checkpointText(originOf(logOrg), size, rootAt(t, l, size))}, s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestEquivocationRefusals: a "proof" whose checkpoints are consistent,
// whose signatures do not verify, or whose inclusion proofs fail convicts
// no one.
func TestEquivocationRefusals(t *testing.T) {
	a, b, cert := forkedLogs(t)
	resolve := Certificates(cert)
	cpA10, _ := a.LatestCheckpoint()
	cpB10 := signAtWith(t, b, 10)
	cpA5 := signAtWith(t, a, 5)
	grow(t, a, "more", 3)
	cpA13, _ := a.LatestCheckpoint()
	leaf7, _ := a.EntryHash(7)
	p10, _ := a.InclusionProof(7, 10)
	p13, _ := a.InclusionProof(7, 13)
	leafB7, _ := b.EntryHash(7)
	pb, _ := b.InclusionProof(7, 13)
	cpB13, _ := b.LatestCheckpoint()

	forged := bytes.Replace(cpB10, []byte("\n10\n"), []byte("\n11\n"), 1)
	_, otherCert, _ := ledger.NewCheckpointSigner(otherOrg, originOf(logOrg))
	otherSigner, _, _ := ledger.NewCheckpointSigner(otherOrg, originOf(logOrg))
	byOther, _ := note.Sign(&note.Note{Text: checkpointText(originOf(logOrg), 10, rootAt(t, b, 10))}, otherSigner)
	// A checkpoint of another log signed with this log's key.
	logSigner, _, _ := ledger.NewCheckpointSigner(logOrg, originOf(logOrg))
	otherLog, _ := note.Sign(&note.Note{Text: checkpointText(originOf(otherOrg), 10, rootAt(t, b, 10))}, logSigner)

	for _, c := range []struct {
		name    string
		p       *Equivocation
		resolve Resolver
		want    error
	}{
		{"same checkpoint twice", SameSizeEquivocation(cpA10, cpA10), resolve, ErrNotContradictory},
		{"consistent sizes as same size", SameSizeEquivocation(cpA10, cpA13), resolve, ErrNotContradictory},
		{"prefix of the fork as same size", SameSizeEquivocation(cpA5, cpB10), resolve, ErrNotContradictory},
		{"one leaf in two consistent checkpoints", InclusionEquivocation(cpA10, cpA13, 7, leaf7, p10, leaf7, p13), resolve, ErrNotContradictory},
		{"a leaf claimed without a valid proof", InclusionEquivocation(cpA10, cpA13, 7, leaf7, p10, leafB7, p13), resolve, ErrInvalidProof},
		{"a genuine proof against the wrong checkpoint", InclusionEquivocation(cpA10, cpA13, 7, leaf7, p10, leafB7, pb), resolve, ErrInvalidProof},
		{"index beyond a size", InclusionEquivocation(cpA5, cpB13, 7, leaf7, p10, leafB7, pb), resolve, ErrInvalidProof},
		{"forged checkpoint", SameSizeEquivocation(cpA10, forged), resolve, ErrBadSignature},
		{"signed by another org", SameSizeEquivocation(cpA10, byOther), resolve, ErrBadSignature},
		{"another org's certificate for the origin", SameSizeEquivocation(byOther, signAtWith(t, a, 10)), Certificates(otherCert), ErrBadSignature},
		{"two origins", SameSizeEquivocation(cpA10, otherLog), resolve, ErrInvalidProof},
		{"unknown origin", SameSizeEquivocation(cpA10, cpB10), Certificates(), ErrUnknownOrigin},
	} {
		_, err := VerifyEquivocation(roundTrip(t, c.p), c.resolve)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// The genuine fork proof passes the same resolver.
	if _, err := VerifyEquivocation(InclusionEquivocation(cpA13, cpB13, 7, leaf7, p13, leafB7, pb), resolve); err != nil {
		t.Fatal(err)
	}
	// A certificate carried in the proof must be the origin's own.
	p, _ := SameSizeEquivocation(byOther, signAtWith(t, a, 10)).WithCertificate(otherCert)
	if _, err := VerifyEquivocation(p, nil); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("carried certificate of another org: %v", err)
	}
}

// TestDecodeEquivocationRefusals: the decoder reads one encoding only.
func TestDecodeEquivocationRefusals(t *testing.T) {
	a, b, _ := forkedLogs(t)
	good, err := EncodeEquivocation(inclusionProof(t, a, b, 7))
	if err != nil {
		t.Fatal(err)
	}
	cpA, _ := a.LatestCheckpoint()
	sameSize, _ := EncodeEquivocation(SameSizeEquivocation(cpA, signAtWith(t, b, 10)))
	if sameSize[0] != 0xa3 || sameSize[1] != 0x01 {
		t.Fatalf("encoding starts % x", sameSize[:2])
	}
	type loose struct {
		Kind  uint8  `cbor:"1,keyasint"`
		A     []byte `cbor:"2,keyasint"`
		B     []byte `cbor:"3,keyasint"`
		Extra []byte `cbor:"10,keyasint,omitempty"`
		Leaf  []byte `cbor:"5,keyasint,omitempty"`
	}
	enc := func(v any) []byte { b, _ := cbor.Marshal(v); return b }
	cp, _ := a.LatestCheckpoint()
	for name, in := range map[string][]byte{
		"empty":            nil,
		"trailing byte":    append(bytes.Clone(good), 0),
		"truncated":        good[:len(good)-1],
		"unknown key":      enc(loose{Kind: 1, A: cp, B: cp, Extra: []byte{1}}),
		"unknown kind":     enc(loose{Kind: 3, A: cp, B: cp}),
		"same size w/leaf": enc(loose{Kind: 1, A: cp, B: cp, Leaf: make([]byte, 32)}),
		"no checkpoint B":  enc(loose{Kind: 1, A: cp}),
		"indefinite map":   append([]byte{0xbf, 0x01, 0x01}, 0xff),
		"non-canonical":    enc(map[int]any{3: cp, 2: cp, 1: 1}),
		"duplicate key":    append([]byte{0xa4, 0x01, 0x01}, sameSize[1:]...),
		"oversize":         make([]byte, MaxEquivocationSize+1),
		"tag":              append([]byte{0xc0}, good...),
	} {
		if _, err := DecodeEquivocation(in); !errors.Is(err, ErrInvalidProof) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzDecodeEquivocation: the decoder never panics and accepts only the
// canonical encoding; verification of whatever decodes never panics,
// refuses with a typed error, and convicts only the log whose real key
// signed both seeds.
func FuzzDecodeEquivocation(f *testing.F) {
	a, b, cert := forkedLogs(f)
	cpA, _ := a.LatestCheckpoint()
	for _, p := range []*Equivocation{SameSizeEquivocation(cpA, signAtWith(f, b, 10)), inclusionProof(f, a, b, 3), inclusionProof(f, a, b, 8)} {
		enc, _ := EncodeEquivocation(p)
		f.Add(enc)
		wc, _ := p.WithCertificate(cert)
		enc, _ = EncodeEquivocation(wc)
		f.Add(enc)
	}
	resolve := Certificates(cert)
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := DecodeEquivocation(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidProof) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again, err := EncodeEquivocation(p)
		if err != nil || !bytes.Equal(again, in) {
			t.Fatalf("decoded proof re-encodes differently: %v", err)
		}
		for _, r := range []Resolver{resolve, nil} {
			origin, err := VerifyEquivocation(p, r)
			switch {
			case err == nil && origin != originOf(logOrg):
				t.Fatalf("convicted %q", origin)
			case err != nil && !errors.Is(err, ErrInvalidProof) && !errors.Is(err, ErrNotContradictory) &&
				!errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrUnknownOrigin):
				t.Fatalf("untyped error %v", err)
			}
		}
	})
}

// TestSameSize: two checkpoints compared as gossip brings them give a
// proof only when they contradict each other.
func TestSameSize(t *testing.T) {
	a, b, cert := forkedLogs(t)
	resolve := Certificates(cert)
	cpA10, _ := a.LatestCheckpoint()
	cpB10 := signAtWith(t, b, 10)
	p, err := SameSize(cpA10, cpB10, resolve)
	if err != nil || p == nil {
		t.Fatalf("fork: %v %v", p, err)
	}
	if _, err := VerifyEquivocation(roundTrip(t, p), resolve); err != nil {
		t.Fatal(err)
	}
	cpB13, _ := b.LatestCheckpoint()
	for name, pair := range map[string][2][]byte{
		"same checkpoint": {cpA10, cpA10},
		"two sizes":       {cpA10, cpB13},
		"shared prefix":   {signAtWith(t, a, 5), signAtWith(t, b, 5)},
	} {
		if p, err := SameSize(pair[0], pair[1], resolve); p != nil || err != nil {
			t.Errorf("%s: %v %v", name, p, err)
		}
	}
	forged := bytes.Replace(cpB10, []byte("\n10\n"), []byte("\n11\n"), 1)
	if p, err := SameSize(cpA10, forged, resolve); p != nil || !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged: %v %v", p, err)
	}
}
