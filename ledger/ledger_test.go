package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	tlog "github.com/transparency-dev/formats/log"
	sumtlog "golang.org/x/mod/sumdb/tlog"
)

// refRoot is RFC 6962's MTH, computed naively.
func refRoot(leaves [][32]byte) [32]byte {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	l, r := refRoot(leaves[:k]), refRoot(leaves[k:])
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

func TestAppendAndRead(t *testing.T) {
	fs := vfs.NewMem()
	l := openTest(t, fs, "db")
	defer l.Close()
	ctx := context.Background()

	var leaves [][32]byte
	var prev [32]byte
	for i := 0; i < 700; i++ {
		es, err := l.Append(ctx, rec(i))
		if err != nil {
			t.Fatal(err)
		}
		e := es[0]
		if e.Index != uint64(i) || e.PrevHash != prev || !sameRecord(e, rec(i)) {
			t.Fatalf("entry %d: %+v", i, e)
		}
		prev = e.Hash()
		leaves = append(leaves, prev)
		if i%97 == 0 {
			size, root := l.Root()
			if size != uint64(i+1) || root != refRoot(leaves) {
				t.Fatalf("root after %d entries differs from RFC 6962", i+1)
			}
		}
	}
	// Several records in one call stay contiguous.
	es, err := l.Append(ctx, rec(700), rec(701), rec(702))
	if err != nil || len(es) != 3 || es[0].Index != 700 || es[2].Index != 702 || es[1].PrevHash != es[0].Hash() {
		t.Fatalf("multi-record append: %v %+v", err, es)
	}
	for _, e := range es {
		leaves = append(leaves, e.Hash())
	}
	size, root := l.Root()
	if size != 703 || root != refRoot(leaves) {
		t.Fatal("root differs from RFC 6962")
	}

	for _, i := range []uint64{0, 1, 255, 256, 699, 702} {
		e, err := l.Entry(i)
		if err != nil || e.Index != i || !sameRecord(e, rec(int(i))) {
			t.Fatalf("Entry(%d) = %+v, %v", i, e, err)
		}
		h, err := l.EntryHash(i)
		if err != nil || h != leaves[i] {
			t.Fatalf("EntryHash(%d)", i)
		}
	}
	if _, err := l.Entry(703); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Entry(703): %v", err)
	}
	got, err := l.Entries(250, 10)
	if err != nil || len(got) != 10 || got[0].Index != 250 || got[9].Index != 259 {
		t.Fatalf("Entries: %v %d", err, len(got))
	}
	if got, _ := l.Entries(700, 100); len(got) != 3 {
		t.Fatalf("Entries at the end: %d", len(got))
	}

	// Indexes agree with a scan.
	all, _ := l.Entries(0, 1000)
	bySes, byCmt, byKind := map[string][]uint64{}, map[string][]uint64{}, map[Kind][]uint64{}
	for _, e := range all {
		if e.Session != "" {
			bySes[e.Session] = append(bySes[e.Session], e.Index)
		}
		if e.Commitment != "" {
			byCmt[e.Commitment] = append(byCmt[e.Commitment], e.Index)
		}
		byKind[e.Kind] = append(byKind[e.Kind], e.Index)
	}
	idx := func(es []Entry) []uint64 {
		var out []uint64
		for _, e := range es {
			out = append(out, e.Index)
		}
		return out
	}
	for s, want := range bySes {
		got, err := l.BySession(s)
		if err != nil || !equalU64(idx(got), want) {
			t.Fatalf("BySession(%s): %v %v, want %v", s, err, idx(got), want)
		}
	}
	for c, want := range byCmt {
		got, err := l.ByCommitment(c)
		if err != nil || !equalU64(idx(got), want) {
			t.Fatalf("ByCommitment(%s): %v", c, err)
		}
	}
	for k, want := range byKind {
		got, err := l.ByKind(k, 0, 1000)
		if err != nil || !equalU64(idx(got), want) {
			t.Fatalf("ByKind(%s): %v", k, err)
		}
		got, _ = l.ByKind(k, want[3], 2)
		if !equalU64(idx(got), want[3:5]) {
			t.Fatalf("ByKind(%s) paged: %v", k, idx(got))
		}
	}
	if got, err := l.BySession("none"); err != nil || len(got) != 0 {
		t.Fatal("BySession of an unknown id")
	}
	// A session id that is a prefix of another does not match it.
	if _, err := l.Append(ctx, Record{Kind: KindSessionOpened, Session: "ses-1x"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.BySession("ses-1"); len(got) != len(bySes["ses-1"]) {
		t.Fatal("index prefix leak")
	}
	if err := l.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

func equalU64(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAppendStampsTime(t *testing.T) {
	now := time.Date(2027, 3, 15, 1, 2, 3, 4, time.FixedZone("x", 3600))
	opts := testOptions(t, vfs.NewMem())
	opts.Now = func() time.Time { return now }
	l, err := Open("db", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	es, err := l.Append(context.Background(), Record{Kind: KindAgent})
	if err != nil {
		t.Fatal(err)
	}
	if !es[0].Time.Equal(now) || es[0].Time.Location() != time.UTC {
		t.Fatalf("time %v", es[0].Time)
	}
	if _, err := l.Append(context.Background(), Record{}); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("kind 0: %v", err)
	}
}

func TestReopen(t *testing.T) {
	fs := vfs.NewMem()
	ctx := context.Background()
	var leaves [][32]byte
	for round, n := range []int{1, 255, 1, 300, 65536 - 557, 3} {
		l := openTest(t, fs, "db")
		if l.Size() != uint64(len(leaves)) {
			t.Fatalf("round %d: size %d after reopen, want %d", round, l.Size(), len(leaves))
		}
		var recs []Record
		for i := 0; i < n; i++ {
			recs = append(recs, rec(len(leaves)+i))
		}
		for len(recs) > 0 {
			k := min(len(recs), 1000)
			es, err := l.Append(ctx, recs[:k]...)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range es {
				leaves = append(leaves, e.Hash())
			}
			recs = recs[k:]
		}
		if _, root := l.Root(); root != refRoot(leaves) {
			t.Fatalf("round %d: root differs from RFC 6962", round)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	l := openTest(t, fs, "db")
	defer l.Close()
	if _, root := l.Root(); root != refRoot(leaves) {
		t.Fatal("root after reopen")
	}
	if err := l.Check(ctx); err != nil {
		t.Fatal(err)
	}
	// Proofs reach into stored tiles of levels 0 and 1 and the edges.
	size := uint64(len(leaves))
	for _, i := range []uint64{0, 255, 256, 65535, 65536, size - 1} {
		p, err := l.InclusionProof(i, size)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyInclusion(i, size, leaves[i], p, refRoot(leaves)); err != nil {
			t.Fatalf("inclusion %d: %v", i, err)
		}
	}
}

func TestProofsAgainstSumdbTlog(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 1))
	l := openTest(t, vfs.NewMem(), "db")
	defer l.Close()
	ctx := context.Background()
	var leaves [][32]byte
	roots := [][32]byte{refRoot(nil)}
	for len(leaves) < 1500 {
		n := 1 + rnd.IntN(40)
		var recs []Record
		for i := 0; i < n; i++ {
			recs = append(recs, rec(len(leaves)+i))
		}
		es, err := l.Append(ctx, recs...)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			leaves = append(leaves, e.Hash())
			roots = append(roots, refRoot(leaves))
		}
	}
	size := uint64(len(leaves))
	for k := 0; k < 300; k++ {
		n := 1 + rnd.Uint64N(size)
		i := rnd.Uint64N(n)
		p, err := l.InclusionProof(i, n)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyInclusion(i, n, leaves[i], p, roots[n]); err != nil {
			t.Fatalf("inclusion %d in %d: %v", i, n, err)
		}
		if err := sumtlog.CheckRecord(toTlog(p), int64(n), sumtlog.Hash(roots[n]), int64(i), sumtlog.Hash(leaves[i])); err != nil {
			t.Fatalf("sumdb/tlog rejects inclusion %d in %d: %v", i, n, err)
		}
		bad := roots[n]
		bad[0] ^= 1
		if VerifyInclusion(i, n, leaves[i], p, bad) == nil {
			t.Fatal("inclusion verified against a wrong root")
		}

		m := rnd.Uint64N(n + 1)
		c, err := l.ConsistencyProof(m, n)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyConsistency(m, n, c, roots[m], roots[n]); err != nil {
			t.Fatalf("consistency %d→%d: %v", m, n, err)
		}
		if m > 0 {
			if err := sumtlog.CheckTree(toTlog(c), int64(n), sumtlog.Hash(roots[n]), int64(m), sumtlog.Hash(roots[m])); err != nil {
				t.Fatalf("sumdb/tlog rejects consistency %d→%d: %v", m, n, err)
			}
			if m < n && VerifyConsistency(m, n, c, roots[m], bad) == nil {
				t.Fatal("consistency verified against a wrong root")
			}
		}
	}
	if _, err := l.InclusionProof(3, size+1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("proof beyond the log: %v", err)
	}
	if _, err := l.InclusionProof(5, 5); err == nil {
		t.Fatal("inclusion proof for index = size")
	}
	if VerifyConsistency(0, 5, nil, [32]byte{1}, roots[5]) == nil {
		t.Fatal("consistency from a wrong empty root")
	}
}

func toTlog(p [][]byte) []sumtlog.Hash {
	out := make([]sumtlog.Hash, len(p))
	for i := range p {
		copy(out[i][:], p[i])
	}
	return out
}

func TestCheckpoint(t *testing.T) {
	fs := vfs.NewMem()
	ctx := context.Background()
	l := openTest(t, fs, "db")
	_, _, v := testKeys(t)

	cp0, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	body, _, err := ParseCheckpoint(cp0, testOrigin(), v)
	if err != nil || body.Size != 0 || body.Root != emptyRoot {
		t.Fatalf("empty checkpoint: %+v %v", body, err)
	}
	appendN(t, l, 0, 10)
	cp, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// C2SP format, readable by transparency-dev/formats.
	c, _, _, err := tlog.ParseCheckpoint(cp, testOrigin(), v)
	if err != nil || c.Size != 10 {
		t.Fatalf("formats/log: %+v %v", c, err)
	}
	if !strings.HasPrefix(string(cp), testOrigin()+"\n10\n") || !strings.Contains(string(cp), "\n\n— "+testOrigin()+" ") {
		t.Fatalf("checkpoint text:\n%s", cp)
	}
	_, root := l.Root()
	if !bytes.Equal(c.Hash, root[:]) {
		t.Fatal("checkpoint root")
	}
	again, _ := l.Checkpoint(ctx)
	if !bytes.Equal(again, cp) {
		t.Fatal("a second checkpoint for the same size differs")
	}
	if latest, err := l.LatestCheckpoint(); err != nil || !bytes.Equal(latest, cp) {
		t.Fatalf("LatestCheckpoint: %v", err)
	}
	if at, err := l.CheckpointAt(0); err != nil || !bytes.Equal(at, cp0) {
		t.Fatalf("CheckpointAt(0): %v", err)
	}
	if _, err := l.CheckpointAt(5); !errors.Is(err, ErrNotFound) {
		t.Fatalf("CheckpointAt(5): %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// A recorded intent for the current size with another root (a store
	// rolled back, or tampered with): the ledger refuses to sign.
	rawDB(t, fs, "db", func(db *pebble.DB) {
		b := tlog.Checkpoint{Origin: testOrigin(), Size: 10, Hash: make([]byte, 32)}.Marshal()
		mustSet(t, db, checkpointKey(10), append([]byte{cpIntent}, b...))
	})
	l = openTest(t, fs, "db")
	defer l.Close()
	if _, err := l.Checkpoint(ctx); !errors.Is(err, ErrCorruption) {
		t.Fatalf("signed over a conflicting intent: %v", err)
	}
	if err := l.Check(ctx); !errors.Is(err, ErrCorruption) {
		t.Fatalf("Check missed a conflicting checkpoint: %v", err)
	}
}

func TestNoSigner(t *testing.T) {
	l, err := Open("db", Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Checkpoint(context.Background()); !errors.Is(err, ErrNoSigner) {
		t.Fatal(err)
	}
	s, _, _ := testKeys(t)
	if _, err := Open("db2", Options{FS: vfs.NewMem(), Signer: s, Origin: "other"}); err == nil {
		t.Fatal("opened with a signer named differently from the origin")
	}
}

func TestKeyCertificate(t *testing.T) {
	s, c, v := testKeys(t)
	if err := c.Verify(); err != nil {
		t.Fatal(err)
	}
	if c.Org != testPeerID() || c.Origin != testOrigin() || v.Name() != testOrigin() {
		t.Fatalf("certificate %+v", c)
	}
	// Deterministic derivation.
	s2, c2, _ := testKeys(t)
	if s2.KeyHash() != s.KeyHash() || c2.Key != c.Key {
		t.Fatal("derivation is not deterministic")
	}
	bad := *c
	bad.Origin = "asp-ledger/someone-else"
	if bad.Verify() == nil {
		t.Fatal("certificate verified with a changed origin")
	}
	bad = *c
	bad.Signature = bytes.Clone(c.Signature)
	bad.Signature[0] ^= 1
	if bad.Verify() == nil {
		t.Fatal("certificate verified with a bad signature")
	}
	// A certificate for another key does not match the signer.
	k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	_, oc, err := NewCheckpointSigner(k, testOrigin())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open("db", Options{FS: vfs.NewMem(), Origin: testOrigin(), Signer: s, KeyCertificate: oc}); err == nil {
		t.Fatal("opened with a certificate for another key")
	}
}

func TestFormatVersion(t *testing.T) {
	fs := vfs.NewMem()
	l := openTest(t, fs, "db")
	appendN(t, l, 0, 3)
	l.Close()
	rawDB(t, fs, "db", func(db *pebble.DB) {
		mustSet(t, db, keyFormat, binary.BigEndian.AppendUint32(nil, FormatVersion+1))
	})
	if _, err := Open("db", testOptions(t, fs)); !errors.Is(err, ErrFormatTooNew) {
		t.Fatalf("opened a newer format: %v", err)
	}
}

// TestGroupCommit: appends queued while a commit is in flight share the
// next one. The committer is held until every appender is parked.
func TestGroupCommit(t *testing.T) {
	l := openTest(t, vfs.NewMem(), "db")
	defer l.Close()
	const writers = 64
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	l.testHookBeforeCommit = func(int) { once.Do(func() { close(entered); <-release }) }
	var releaseOnce sync.Once
	defer releaseOnce.Do(func() { close(release) })

	var wg sync.WaitGroup
	results := make([]uint64, writers+1)
	ctx := context.Background()
	wg.Add(1)
	go func() {
		defer wg.Done()
		es, err := l.Append(ctx, rec(0))
		if err != nil {
			t.Error(err)
			return
		}
		results[0] = es[0].Index
	}()
	<-entered // the first batch is held in the committer
	for w := 1; w <= writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			es, err := l.Append(ctx, rec(w))
			if err != nil {
				t.Error(err)
				return
			}
			results[w] = es[0].Index
		}()
	}
	waitParked(t, writers, "ledger.(*Ledger).Append") // all queued behind the held batch
	releaseOnce.Do(func() { close(release) })
	wg.Wait()
	if st := l.Stats(); st.Batches != 2 || st.Entries != writers+1 {
		t.Fatalf("stats %+v: want 2 batches of %d entries", st, writers+1)
	}
	seen := map[uint64]bool{}
	for _, i := range results {
		seen[i] = true
	}
	if len(seen) != writers+1 {
		t.Fatal("indexes not unique")
	}
	if err := l.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// waitParked waits until n goroutines blocked waiting for a result (a
// channel receive) have fn on their stack.
func waitParked(t *testing.T, n int, fn string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		buf := make([]byte, 1<<22)
		buf = buf[:runtime.Stack(buf, true)]
		count := 0
		for _, g := range strings.Split(string(buf), "\n\n") {
			head, _, _ := strings.Cut(g, "\n")
			if strings.Contains(g, fn) && strings.Contains(head, "[chan receive") {
				count++
			}
		}
		if count >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d goroutines parked in %s", count, fn)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestConcurrentAppendsAndReads(t *testing.T) {
	l := openTest(t, vfs.NewMem(), "db")
	defer l.Close()
	ctx := context.Background()
	const writers, per = 16, 40
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				if _, err := l.Append(ctx, rec(w*per+i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // readers and checkpoints alongside
		defer wg.Done()
		for i := 0; i < 20; i++ {
			size, _ := l.Root()
			if size > 0 {
				if _, err := l.InclusionProof(size-1, size); err != nil {
					t.Error(err)
				}
			}
			if _, err := l.Checkpoint(ctx); err != nil {
				t.Error(err)
			}
			if err := l.Check(ctx); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	if l.Size() != writers*per {
		t.Fatalf("size %d", l.Size())
	}
	if err := l.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestClose(t *testing.T) {
	l := openTest(t, vfs.NewMem(), "db")
	appendN(t, l, 0, 2)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(context.Background(), rec(3)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, err := l.Entry(0); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
}
