package witness

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/protocol"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	tlog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// logOrg is the organization whose ledger is witnessed; witnessOrg the
// witnessing organization.
var (
	logOrg     = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	witnessOrg = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	otherOrg   = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
)

func peerOf(k ed25519.PrivateKey) string {
	return protocol.PeerIDFromPublicKey(k.Public().(ed25519.PublicKey))
}

func originOf(k ed25519.PrivateKey) string { return ledger.OriginFor(peerOf(k)) }

// openLog opens a ledger of org in dir on fs.
func openLog(t testing.TB, fs vfs.FS, dir string, org ed25519.PrivateKey) (*ledger.Ledger, *ledger.KeyCertificate) {
	t.Helper()
	s, c, err := ledger.NewCheckpointSigner(org, originOf(org))
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(dir, ledger.Options{FS: fs, Origin: originOf(org), Signer: s, KeyCertificate: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, c
}

// grow appends n records (labelled tag) and returns a fresh checkpoint.
func grow(t testing.TB, l *ledger.Ledger, tag string, n int) []byte {
	t.Helper()
	for i := 0; i < n; i++ {
		r := ledger.Record{Kind: ledger.KindSessionOpened, Time: time.Unix(1_700_000_000, 0),
			Body: fmt.Appendf(nil, "%s record %d of %d", tag, l.Size(), n)}
		if _, err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := l.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// fixedNow is the witness clock of the tests.
func fixedNow() time.Time { return time.Unix(1_750_000_000, 0) }

// newWitness returns a witness serving the logs certified by certs, with a
// Pebble store on an in-memory file system.
func newWitness(t testing.TB, certs ...*ledger.KeyCertificate) (*Witness, *PebbleStore) {
	t.Helper()
	db, err := pebble.Open("w", &pebble.Options{FS: vfs.NewMem(), Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := NewPebbleStore(db, []byte("w/"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{Key: witnessOrg, Store: st, Now: fixedNow, Verifier: Certificates(certs...)})
	if err != nil {
		t.Fatal(err)
	}
	return w, st
}

type quiet struct{}

func (quiet) Infof(string, ...any)  {}
func (quiet) Errorf(string, ...any) {}
func (q quiet) Fatalf(f string, a ...any) {
	panic(fmt.Sprintf(f, a...))
}

// add builds the request from l and submits it.
func add(t testing.TB, w *Witness, l *ledger.Ledger, old uint64, cp []byte) ([]byte, error) {
	t.Helper()
	req, err := NewRequest(l, old, cp)
	if err != nil {
		t.Fatal(err)
	}
	return w.AddCheckpoint(context.Background(), *req)
}

// rootAt computes the root of entries 0 … size-1 of l.
func rootAt(t testing.TB, l *ledger.Ledger, size uint64) [32]byte {
	t.Helper()
	r := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
	for i := uint64(0); i < size; i++ {
		h, err := l.EntryHash(i)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Append(h[:], nil); err != nil {
			t.Fatal(err)
		}
	}
	if size == 0 {
		return emptyRoot
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	return [32]byte(root)
}

func checkpointText(origin string, size uint64, root [32]byte) string {
	return string(tlog.Checkpoint{Origin: origin, Size: size, Hash: root[:]}.Marshal())
}

// signAt signs, with l's organization's real checkpoint key, a checkpoint
// of l at an earlier size (the ledger itself signs only its current size).
func signAt(t testing.TB, l *ledger.Ledger, size uint64) []byte {
	t.Helper()
	s, _, err := ledger.NewCheckpointSigner(logOrg, originOf(logOrg))
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Sign(&note.Note{Text: checkpointText(originOf(logOrg), size, rootAt(t, l, size))}, s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
