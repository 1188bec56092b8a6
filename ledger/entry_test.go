package ledger

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestEntryRoundTrip(t *testing.T) {
	for i := 0; i < 50; i++ {
		r := rec(i)
		e := Entry{Index: uint64(i), Time: r.Time, Kind: r.Kind, Session: r.Session, Commitment: r.Commitment, Body: r.Body}
		e.PrevHash[3] = byte(i)
		b := e.Encode()
		if len(b) != e.encodedLen() {
			t.Fatalf("encodedLen %d, encoding %d", e.encodedLen(), len(b))
		}
		d, err := DecodeEntry(b)
		if err != nil {
			t.Fatal(err)
		}
		if d.Index != e.Index || d.PrevHash != e.PrevHash || !sameRecord(d, r) {
			t.Fatalf("round trip: %+v != %+v", d, e)
		}
		if !bytes.Equal(d.Encode(), b) {
			t.Fatal("re-encoding differs")
		}
		want := sha256.Sum256(append([]byte{0}, b...))
		if LeafHash(b) != want || e.Hash() != want {
			t.Fatal("leaf hash is not SHA-256(0x00 || entry)")
		}
	}
}

func TestDecodeEntryRejects(t *testing.T) {
	good := (&Entry{Index: 9, Time: time.Unix(5, 0), Kind: KindCommitment, Session: "s", Commitment: "c", Body: []byte("b")}).Encode()
	cases := map[string][]byte{
		"empty":       nil,
		"short":       good[:20],
		"version":     append([]byte{2}, good[1:]...),
		"kind zero":   func() []byte { b := bytes.Clone(good); b[49], b[50] = 0, 0; return b }(),
		"trailing":    append(bytes.Clone(good), 0),
		"truncated":   good[:len(good)-1],
		"long id":     func() []byte { b := bytes.Clone(good); b[51], b[52] = 0xff, 0xff; return b }(),
		"bad utf8 id": func() []byte { b := bytes.Clone(good); b[53] = 0xff; return b }(),
	}
	for name, b := range cases {
		if _, err := DecodeEntry(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func TestRecordValidate(t *testing.T) {
	bad := []Record{
		{},
		{Kind: 1, Session: strings.Repeat("s", MaxIDLen+1)},
		{Kind: 1, Commitment: "\xff"},
		{Kind: 1, Body: make([]byte, MaxBodyLen+1)},
		{Kind: 1, Time: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for i, r := range bad {
		if err := r.validate(); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("record %d: %v", i, err)
		}
	}
}

func TestKindNames(t *testing.T) {
	for k := Kind(1); k < 20; k++ {
		p, err := ParseKind(k.String())
		if err != nil || p != k {
			t.Errorf("kind %d: %q -> %d, %v", k, k.String(), p, err)
		}
	}
	for _, s := range []string{"", "kind-0", "kind-01", "nope", "kind-70000"} {
		if _, err := ParseKind(s); err == nil {
			t.Errorf("ParseKind(%q) succeeded", s)
		}
	}
}

// FuzzDecodeEntry: the decoder never panics and accepts only canonical
// encodings.
func FuzzDecodeEntry(f *testing.F) {
	for i := 0; i < 8; i++ {
		r := rec(i)
		e := Entry{Index: uint64(i), Time: r.Time, Kind: r.Kind, Session: r.Session, Commitment: r.Commitment, Body: r.Body}
		f.Add(e.Encode())
	}
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEntry(b)
		if err != nil {
			return
		}
		if !bytes.Equal(e.Encode(), b) {
			t.Fatalf("accepted a non-canonical encoding %x", b)
		}
		r := Record{Kind: e.Kind, Time: e.Time, Session: e.Session, Commitment: e.Commitment, Body: e.Body}
		if err := r.validate(); err != nil {
			t.Fatalf("decoded an entry that Append would refuse: %v", err)
		}
	})
}
