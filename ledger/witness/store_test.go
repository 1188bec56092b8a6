package witness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// stateAt is the deterministic state of size n in the store tests.
func stateAt(n uint64) State {
	root := sha256.Sum256(binary.BigEndian.AppendUint64(nil, n))
	return State{Size: n, Root: root, Checkpoint: fmt.Appendf(nil, "checkpoint %d %x\n", n, bytes.Repeat(root[:], int(n%7)))}
}

func sameState(a, b State) bool {
	return a.Size == b.Size && a.Root == b.Root && bytes.Equal(a.Checkpoint, b.Checkpoint)
}

// TestStoreCompareAndSwap: a check-and-set applies only on the state it
// expects, and a refused one changes nothing.
func TestStoreCompareAndSwap(t *testing.T) {
	db, err := pebble.Open("w", &pebble.Options{FS: vfs.NewMem(), Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, _ := NewPebbleStore(db, []byte("w/"))
	if _, ok, err := st.Latest("o"); ok || err != nil {
		t.Fatal(ok, err)
	}
	s1, s2, s3 := stateAt(1), stateAt(2), stateAt(3)
	if err := st.CompareAndSwap("o", nil, s1); err != nil {
		t.Fatal(err)
	}
	if err := st.CompareAndSwap("o", nil, s2); !errors.Is(err, ErrStale) {
		t.Fatalf("create over an existing state: %v", err)
	}
	wrongRoot := s1
	wrongRoot.Root[0] ^= 1
	if err := st.CompareAndSwap("o", &wrongRoot, s2); !errors.Is(err, ErrStale) {
		t.Fatalf("expected root differs: %v", err)
	}
	if err := st.CompareAndSwap("o", &s2, s3); !errors.Is(err, ErrStale) {
		t.Fatalf("expected size differs: %v", err)
	}
	if got, _, _ := st.Latest("o"); !sameState(got, s1) {
		t.Fatalf("a refused swap changed the state to %d", got.Size)
	}
	if err := st.CompareAndSwap("o", &s1, s2); err != nil {
		t.Fatal(err)
	}
	if err := st.CompareAndSwap("p", nil, s3); err != nil {
		t.Fatal(err)
	}
	var seen []string
	st.Each(func(origin string, s State) bool {
		seen = append(seen, origin+"="+strconv.FormatUint(s.Size, 10))
		return true
	})
	if fmt.Sprint(seen) != "[o=2 p=3]" {
		t.Fatalf("Each: %v", seen)
	}
	// A corrupted value is an error, not a state.
	db.Set([]byte("w/q"), []byte{9, 9}, pebble.Sync)
	if _, _, err := st.Latest("q"); err == nil {
		t.Fatal("malformed stored state read")
	}
}

// TestStoreCrash: a writer runs check-and-sets of increasing sizes while
// the file system is crash-cloned at random points (keeping a random part
// of what was not synced). Every clone reopens holding the last
// acknowledged state or the one being written, never one below an
// acknowledged size, and never a mix of two states.
// ASP_WITNESS_CRASHES=N raises the number of crashes (default 40).
func TestStoreCrash(t *testing.T) {
	crashes := 40
	if s := os.Getenv("ASP_WITNESS_CRASHES"); s != "" {
		crashes, _ = strconv.Atoi(s)
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	fs := vfs.NewCrashableMem()
	db, err := pebble.Open("w", &pebble.Options{FS: fs, Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, _ := NewPebbleStore(db, []byte("w/"))

	var acked, writing atomic.Uint64
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		var prev *State
		for n := uint64(1); ; n++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			writing.Store(n)
			next := stateAt(n)
			if err := st.CompareAndSwap("origin", prev, next); err != nil {
				done <- err
				return
			}
			acked.Store(n)
			prev = &next
		}
	}()
	for i := 0; i < crashes; i++ {
		for j := rng.IntN(200); j > 0; j-- {
			runtime.Gosched()
		}
		a := acked.Load()
		clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
		b := writing.Load()
		got := reopenLatest(t, clone)
		want := stateAt(got.Size)
		if got.Size == 0 {
			want = State{} // nothing stored
		}
		if got.Size < a || got.Size > b || !sameState(got, want) {
			close(stop)
			t.Fatalf("crash %d: reopened at size %d (acknowledged %d, writing at most %d), state intact: %v",
				i, got.Size, a, b, sameState(got, want))
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if acked.Load() < 2 {
		t.Fatalf("only %d writes during the crashes", acked.Load())
	}
}

func reopenLatest(t *testing.T, fs vfs.FS) State {
	t.Helper()
	db, err := pebble.Open("w", &pebble.Options{FS: fs, Logger: quiet{}})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	st, _ := NewPebbleStore(db, []byte("w/"))
	s, ok, err := st.Latest("origin")
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if !ok {
		return State{}
	}
	return s
}

// TestStoreConcurrentSwap: of concurrent check-and-sets from one state,
// exactly one applies, round after round.
func TestStoreConcurrentSwap(t *testing.T) {
	db, err := pebble.Open("w", &pebble.Options{FS: vfs.NewMem(), Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, _ := NewPebbleStore(db, []byte("w/"))
	const writers = 8
	cur := stateAt(1)
	if err := st.CompareAndSwap("o", nil, cur); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 200; round++ {
		var wins atomic.Int32
		start := make(chan struct{})
		errs := make(chan error, writers)
		for i := uint64(1); i <= writers; i++ {
			next := stateAt(cur.Size + i)
			go func() {
				<-start
				err := st.CompareAndSwap("o", &cur, next)
				if err == nil {
					wins.Add(1)
				} else if !errors.Is(err, ErrStale) {
					errs <- err
					return
				}
				errs <- nil
			}()
		}
		close(start)
		for i := 0; i < writers; i++ {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d check-and-sets applied from one state", round, wins.Load())
		}
		cur, _, _ = st.Latest("o")
	}
}

// TestWitnessRestart: every cosignature a witness returned survives a
// crash that keeps only synced data: the reopened witness continues from
// the last size it cosigned and refuses to go below it.
func TestWitnessRestart(t *testing.T) {
	l, cert := openLog(t, vfs.NewMem(), "log", logOrg)
	fs := vfs.NewCrashableMem()
	open := func(fs vfs.FS) (*Witness, *pebble.DB) {
		db, err := pebble.Open("w", &pebble.Options{FS: fs, Logger: quiet{}})
		if err != nil {
			t.Fatal(err)
		}
		st, _ := NewPebbleStore(db, []byte("w/"))
		w, err := New(Config{Key: witnessOrg, Store: st, Now: fixedNow, Verifier: Certificates(cert)})
		if err != nil {
			t.Fatal(err)
		}
		return w, db
	}
	w, db := open(fs)
	defer db.Close()
	var old uint64
	for i := 1; i <= 5; i++ {
		if _, err := add(t, w, l, old, grow(t, l, "m", i)); err != nil {
			t.Fatal(err)
		}
		old = l.Size()
	}
	w2, db2 := open(fs.CrashClone(vfs.CrashCloneCfg{}))
	defer db2.Close()
	st, ok, err := w2.Latest(originOf(logOrg))
	if err != nil || !ok || st.Size != old || st.Root != rootAt(t, l, old) {
		t.Fatalf("after the crash: size %d %v %v, cosigned %d", st.Size, ok, err, old)
	}
	req, _ := NewRequest(l, 10, signAt(t, l, 10))
	if _, err := w2.AddCheckpoint(context.Background(), *req); !errors.Is(err, ErrRollback) {
		t.Fatalf("older size after the crash: %v", err)
	}
	if _, err := add(t, w2, l, old, grow(t, l, "m", 2)); err != nil {
		t.Fatal(err)
	}
}
