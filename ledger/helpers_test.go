package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/aspnode/asp/protocol"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/mod/sumdb/note"
)

// testOrg is a fixed organization identity key.
var testOrg = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))

func testPeerID() string { return protocol.PeerIDFromPublicKey(testOrg.Public().(ed25519.PublicKey)) }

func testOrigin() string { return OriginFor(testPeerID()) }

// testKeys returns the checkpoint signer, its certificate and verifier.
func testKeys(t testing.TB) (note.Signer, *KeyCertificate, note.Verifier) {
	t.Helper()
	s, c, err := NewCheckpointSigner(testOrg, testOrigin())
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Verifier()
	if err != nil {
		t.Fatal(err)
	}
	return s, c, v
}

func testOptions(t testing.TB, fs vfs.FS) Options {
	s, c, _ := testKeys(t)
	return Options{FS: fs, Origin: testOrigin(), Signer: s, KeyCertificate: c}
}

func openTest(t testing.TB, fs vfs.FS, dir string) *Ledger {
	t.Helper()
	l, err := Open(dir, testOptions(t, fs))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return l
}

// rec returns a deterministic record number i.
func rec(i int) Record {
	r := Record{
		Kind: Kind(1 + i%12),
		Time: time.Unix(1_700_000_000+int64(i), int64(i)).UTC(),
		Body: []byte(fmt.Sprintf("body of record %d, padded %s", i, bytes.Repeat([]byte{'x'}, i%40))),
	}
	if i%3 == 0 {
		r.Session = fmt.Sprintf("ses-%d", i%7)
	}
	if i%5 == 0 {
		r.Commitment = fmt.Sprintf("cmt_%d", i%4)
	}
	return r
}

func appendN(t testing.TB, l *Ledger, from, n int) []Entry {
	t.Helper()
	var out []Entry
	for i := from; i < from+n; i++ {
		es, err := l.Append(context.Background(), rec(i))
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		out = append(out, es...)
	}
	return out
}

// sameRecord reports whether entry e holds record r.
func sameRecord(e Entry, r Record) bool {
	return e.Kind == r.Kind && e.Time.Equal(r.Time) && e.Session == r.Session &&
		e.Commitment == r.Commitment && bytes.Equal(e.Body, r.Body)
}

// rawDB opens the ledger's Pebble store directly, to tamper with it.
func rawDB(t testing.TB, fs vfs.FS, dir string, fn func(db *pebble.DB)) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{FS: fs, Logger: pebbleLogger{discardLogger()}})
	if err != nil {
		t.Fatal(err)
	}
	fn(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func mustGet(t testing.TB, db *pebble.DB, k []byte) []byte {
	t.Helper()
	v, c, err := db.Get(k)
	if err != nil {
		t.Fatalf("get %x: %v", k, err)
	}
	out := bytes.Clone(v)
	c.Close()
	return out
}

func mustSet(t testing.TB, db *pebble.DB, k, v []byte) {
	t.Helper()
	if err := db.Set(k, v, pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

func mustDelete(t testing.TB, db *pebble.DB, k []byte) {
	t.Helper()
	if err := db.Delete(k, pebble.Sync); err != nil {
		t.Fatal(err)
	}
}
