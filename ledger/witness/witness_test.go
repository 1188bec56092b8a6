package witness

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/aspnode/asp/ledger"
	"github.com/cockroachdb/pebble/v2/vfs"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// TestAddCheckpointRounds: successive rounds from the size last cosigned
// are cosigned; the cosignature verifies as C2SP cosignature/v1 with the
// witness key derived from its peer id, and carries the witness's clock.
func TestAddCheckpointRounds(t *testing.T) {
	l, cert := openLog(t, vfs.NewMem(), "log", logOrg)
	w, _ := newWitness(t, cert)
	vkey, err := VerifierKeyFor(peerOf(witnessOrg))
	if err != nil || vkey != w.VerifierKey() {
		t.Fatalf("vkey %q, witness says %q (%v)", vkey, w.VerifierKey(), err)
	}
	var old uint64
	for i, n := range []int{1, 3, 0, 250, 17} {
		cp := grow(t, l, "main", n)
		cosig, err := add(t, w, l, old, cp)
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		ts, err := VerifyCosignature(cp, cosig, vkey)
		if err != nil || !ts.Equal(fixedNow()) {
			t.Fatalf("round %d: cosignature time %v, %v", i, ts, err)
		}
		// The cosigned checkpoint opens with both the log's and the
		// witness's keys through the reference verifier.
		cv, _ := fnote.NewVerifierForCosignatureV1(vkey)
		lv, _ := cert.Verifier()
		if n, err := note.Open(WithCosignature(cp, cosig), note.VerifierList(lv, cv)); err != nil || len(n.Sigs) != 2 {
			t.Fatalf("round %d: cosigned note: %v", i, err)
		}
		st, ok, err := w.Latest(originOf(logOrg))
		if err != nil || !ok || st.Size != l.Size() {
			t.Fatalf("round %d: latest %d %v %v, log at %d", i, st.Size, ok, err, l.Size())
		}
		old = l.Size()
	}
}

// TestForgedCosignature: a cosignature altered in any byte, made by another
// key, or over another checkpoint does not verify.
func TestForgedCosignature(t *testing.T) {
	l, cert := openLog(t, vfs.NewMem(), "log", logOrg)
	w, _ := newWitness(t, cert)
	cp := grow(t, l, "main", 5)
	cosig, err := add(t, w, l, 0, cp)
	if err != nil {
		t.Fatal(err)
	}
	vkey := w.VerifierKey()
	// Flip one bit of the signature (past the key id and timestamp).
	b := bytes.Clone(cosig)
	i := bytes.LastIndexByte(b, ' ') + 30
	b[i] ^= 'A' ^ 'B'
	if _, err := VerifyCosignature(cp, b, vkey); !errors.Is(err, ErrBadCosignature) {
		t.Fatalf("altered cosignature: %v", err)
	}
	// Another key under the witness's name.
	forger, _ := newWitnessWithKey(t, otherOrg, w.Name(), cert)
	fake, err := forger.AddCheckpoint(context.Background(), Request{Checkpoint: cp})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyCosignature(cp, fake, vkey); !errors.Is(err, ErrBadCosignature) {
		t.Fatalf("cosignature by another key: %v", err)
	}
	// The genuine cosignature on another checkpoint.
	cp2 := grow(t, l, "main", 1)
	if _, err := VerifyCosignature(cp2, cosig, vkey); !errors.Is(err, ErrBadCosignature) {
		t.Fatalf("cosignature moved to another checkpoint: %v", err)
	}
	// Not a signature line at all.
	if _, err := VerifyCosignature(cp, []byte("hello\n"), vkey); !errors.Is(err, ErrBadCosignature) {
		t.Fatalf("garbage: %v", err)
	}
}

func newWitnessWithKey(t *testing.T, key []byte, name string, certs ...*ledger.KeyCertificate) (*Witness, *PebbleStore) {
	_, st := newWitness(t, certs...)
	w2, err := New(Config{Key: key, Name: name, Store: st, Now: fixedNow, Verifier: Certificates(certs...)})
	if err != nil {
		t.Fatal(err)
	}
	return w2, st
}

// refused checks that err matches want and that the witness's state did
// not change.
func refused(t *testing.T, w *Witness, err error, want error, before State) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got %v, want %v", err, want)
	}
	after, _, lerr := w.Latest(originOf(logOrg))
	if lerr != nil || after.Size != before.Size || after.Root != before.Root || !bytes.Equal(after.Checkpoint, before.Checkpoint) {
		t.Fatalf("a refused request changed the state: %d -> %d", before.Size, after.Size)
	}
}

// TestRefusals: every refusal is typed, maps to its C2SP status, and
// changes nothing.
func TestRefusals(t *testing.T) {
	ctx := context.Background()
	l, cert := openLog(t, vfs.NewMem(), "log", logOrg)
	w, _ := newWitness(t, cert)
	cp10 := grow(t, l, "main", 10)
	if _, err := add(t, w, l, 0, cp10); err != nil {
		t.Fatal(err)
	}
	before, _, _ := w.Latest(originOf(logOrg))
	cp20 := grow(t, l, "main", 10)
	good, _ := NewRequest(l, 10, cp20)

	t.Run("missing proof", func(t *testing.T) {
		_, err := w.AddCheckpoint(ctx, Request{OldSize: 10, Checkpoint: cp20})
		refused(t, w, err, ErrBadProof, before)
	})
	t.Run("wrong proof", func(t *testing.T) {
		p := bytes.Clone(good.Proof[0])
		p[0] ^= 1
		_, err := w.AddCheckpoint(ctx, Request{OldSize: 10, Proof: append([][]byte{p}, good.Proof[1:]...), Checkpoint: cp20})
		refused(t, w, err, ErrBadProof, before)
	})
	t.Run("proof from another size", func(t *testing.T) {
		other, _ := l.ConsistencyProof(9, 20)
		_, err := w.AddCheckpoint(ctx, Request{OldSize: 10, Proof: other, Checkpoint: cp20})
		refused(t, w, err, ErrBadProof, before)
	})
	t.Run("conflict", func(t *testing.T) {
		req, _ := NewRequest(l, 5, cp20)
		_, err := w.AddCheckpoint(ctx, *req)
		refused(t, w, err, ErrConflict, before)
		var c *ConflictError
		if !errors.As(err, &c) || c.Size != 10 || !bytes.Equal(c.Checkpoint, before.Checkpoint) || c.Rollback || StatusOf(err) != StatusConflict {
			t.Fatalf("conflict carries %+v", c)
		}
		// A first request with old 0 learns the size the same way.
		_, err = w.AddCheckpoint(ctx, Request{Checkpoint: cp20})
		if !errors.As(err, &c) || c.Size != 10 {
			t.Fatalf("old 0: %v", err)
		}
	})
	t.Run("rollback", func(t *testing.T) {
		cp5 := signAt(t, l, 5)
		req, _ := NewRequest(l, 5, cp5)
		_, err := w.AddCheckpoint(ctx, *req)
		refused(t, w, err, ErrRollback, before)
		if !errors.Is(err, ErrConflict) || StatusOf(err) != StatusConflict {
			t.Fatalf("rollback is a conflict: %v", err)
		}
	})
	t.Run("forged checkpoint", func(t *testing.T) {
		forged := bytes.Replace(cp20, []byte("\n20\n"), []byte("\n21\n"), 1)
		_, err := w.AddCheckpoint(ctx, Request{OldSize: 10, Proof: good.Proof, Checkpoint: forged})
		refused(t, w, err, ErrBadSignature, before)
		if StatusOf(err) != StatusForbidden {
			t.Fatal(StatusOf(err))
		}
	})
	t.Run("signed by another org", func(t *testing.T) {
		// The other organization signs a checkpoint under the log's origin.
		s, _, _ := ledger.NewCheckpointSigner(otherOrg, originOf(logOrg))
		root := rootAt(t, l, 20)
		n, _ := note.Sign(&note.Note{Text: checkpointText(originOf(logOrg), 20, root)}, s)
		_, err := w.AddCheckpoint(ctx, Request{OldSize: 10, Proof: good.Proof, Checkpoint: n})
		refused(t, w, err, ErrBadSignature, before)
	})
	t.Run("unknown origin", func(t *testing.T) {
		ol, _ := openLog(t, vfs.NewMem(), "other", otherOrg)
		_, err := w.AddCheckpoint(ctx, Request{Checkpoint: grow(t, ol, "o", 2)})
		refused(t, w, err, ErrUnknownOrigin, before)
		if StatusOf(err) != StatusNotFound {
			t.Fatal(StatusOf(err))
		}
	})
	t.Run("old above size", func(t *testing.T) {
		_, err := w.AddCheckpoint(ctx, Request{OldSize: 21, Checkpoint: cp20})
		refused(t, w, err, ErrMalformed, before)
	})
	t.Run("too many proof lines", func(t *testing.T) {
		_, err := w.AddCheckpoint(ctx, Request{OldSize: 10, Proof: make([][]byte, 64), Checkpoint: cp20})
		refused(t, w, err, ErrMalformed, before)
	})
	t.Run("same size other root", func(t *testing.T) {
		fork, _ := openLog(t, vfs.NewMem(), "fork", logOrg)
		cpFork := grow(t, fork, "fork", 10)
		_, err := w.AddCheckpoint(ctx, Request{OldSize: 10, Checkpoint: cpFork})
		refused(t, w, err, ErrEquivocation, before)
		var e *EquivocationError
		if !errors.As(err, &e) || StatusOf(err) != StatusUnprocessable {
			t.Fatalf("%v", err)
		}
		// The witness's own evidence convicts the log, for a third party
		// that knows only the certificate.
		p, _ := e.Proof().WithCertificate(cert)
		if origin, err := VerifyEquivocation(p, nil); err != nil || origin != originOf(logOrg) {
			t.Fatalf("proof from the refusal: %q %v", origin, err)
		}
	})
	// After all that, the genuine next round is cosigned.
	if _, err := w.AddCheckpoint(ctx, *good); err != nil {
		t.Fatal(err)
	}
}

// TestEmptyTreeRoot: a size-0 checkpoint must carry the empty tree's root,
// and a first request (old size 0) an empty proof.
func TestEmptyTreeRoot(t *testing.T) {
	l, cert := openLog(t, vfs.NewMem(), "log", logOrg)
	w, _ := newWitness(t, cert)
	cp := grow(t, l, "", 4)
	proof, _ := l.ConsistencyProof(2, 4)
	if _, err := w.AddCheckpoint(context.Background(), Request{Proof: proof, Checkpoint: cp}); !errors.Is(err, ErrBadProof) {
		t.Fatalf("old size 0 with a proof: %v", err)
	}
	l, cert = openLog(t, vfs.NewMem(), "log", logOrg)
	w, _ = newWitness(t, cert)
	if _, err := w.AddCheckpoint(context.Background(), Request{Checkpoint: grow(t, l, "", 0)}); err != nil {
		t.Fatalf("empty log: %v", err)
	}
	s, _, _ := ledger.NewCheckpointSigner(logOrg, originOf(logOrg))
	n, _ := note.Sign(&note.Note{Text: checkpointText(originOf(logOrg), 0, [32]byte{1})}, s)
	_, err := w.AddCheckpoint(context.Background(), Request{Checkpoint: n})
	if !errors.Is(err, ErrBadProof) {
		t.Fatalf("size 0, root not empty: %v", err)
	}
}

// TestConcurrentRequests: of many concurrent requests from one old size to
// different new sizes, exactly one is cosigned and the others get a
// conflict; the stored size is the cosigned one (C2SP's check-and-set race).
func TestConcurrentRequests(t *testing.T) {
	l, cert := openLog(t, vfs.NewMem(), "log", logOrg)
	w, _ := newWitness(t, cert)
	grow(t, l, "main", 4)
	if _, err := add(t, w, l, 0, signAt(t, l, 4)); err != nil {
		t.Fatal(err)
	}
	grow(t, l, "main", 16)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won []uint64
	for size := uint64(5); size <= 20; size++ {
		req, err := NewRequest(l, 4, signAt(t, l, size))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := w.AddCheckpoint(context.Background(), *req)
			if err == nil {
				mu.Lock()
				won = append(won, size)
				mu.Unlock()
			} else if !errors.Is(err, ErrConflict) {
				t.Errorf("size %d: %v", size, err)
			}
		}()
	}
	wg.Wait()
	st, _, _ := w.Latest(originOf(logOrg))
	if len(won) != 1 || st.Size != won[0] {
		t.Fatalf("cosigned %v, stored %d", won, st.Size)
	}
}

// TestCertifiedVerifier: a certificate signed by another organization, or
// for another organization's origin, is refused.
func TestCertifiedVerifier(t *testing.T) {
	_, cert := openLog(t, vfs.NewMem(), "log", logOrg)
	if _, err := CertifiedVerifier(cert); err != nil {
		t.Fatal(err)
	}
	c := *cert
	c.Org = peerOf(otherOrg)
	if _, err := CertifiedVerifier(&c); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("certificate naming another org: %v", err)
	}
	// The other organization certifies a key for the log's origin.
	_, c2, err := ledger.NewCheckpointSigner(otherOrg, originOf(logOrg))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CertifiedVerifier(c2); !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), "origin") {
		t.Fatalf("certificate for another org's origin: %v", err)
	}
}

// TestLostAnswer: if the cosignature is lost after the witness stored the
// new size (a crash, a dropped stream), the log's retry gets 409 whose
// checkpoint carries the cosignature it lost.
func TestLostAnswer(t *testing.T) {
	l, cert := openLog(t, vfs.NewMem(), "log", logOrg)
	w, _ := newWitness(t, cert)
	if _, err := add(t, w, l, 0, grow(t, l, "m", 3)); err != nil {
		t.Fatal(err)
	}
	cp := grow(t, l, "m", 4)
	req, _ := NewRequest(l, 3, cp)
	if _, err := w.AddCheckpoint(context.Background(), *req); err != nil {
		t.Fatal(err)
	}
	_, err := w.AddCheckpoint(context.Background(), *req)
	r, derr := DecodeResponse(mustEncode(t, ResponseFor(nil, err)))
	if derr != nil || r.Status != StatusConflict || r.Size != 7 {
		t.Fatalf("retry: %v / %+v %v", err, r, derr)
	}
	lv, _ := cert.Verifier()
	wv, _ := fnote.NewVerifierForCosignatureV1(w.VerifierKey())
	n, err := note.Open(r.Checkpoint, note.VerifierList(lv, wv))
	if err != nil || len(n.Sigs) != 2 || !strings.HasPrefix(string(cp), n.Text) {
		t.Fatalf("409 checkpoint: %v", err)
	}
}

// TestCheckpointTooLargeToStore: a checkpoint that fits the request but
// not the store once cosigned is refused as malformed, not as a failure.
func TestCheckpointTooLargeToStore(t *testing.T) {
	l, cert := openLog(t, vfs.NewMem(), "log", logOrg)
	w, _ := newWitness(t, cert)
	grow(t, l, "m", 3)
	s, _, _ := ledger.NewCheckpointSigner(logOrg, originOf(logOrg))
	text := checkpointText(originOf(logOrg), 3, rootAt(t, l, 3)) + strings.Repeat("x", MaxCheckpointSize-300) + "\n"
	n, err := note.Sign(&note.Note{Text: text}, s)
	if err != nil || len(n) > MaxCheckpointSize {
		t.Fatalf("%d bytes, %v", len(n), err)
	}
	before, _, _ := w.Latest(originOf(logOrg))
	_, err = w.AddCheckpoint(context.Background(), Request{Checkpoint: n})
	refused(t, w, err, ErrMalformed, before)
}
