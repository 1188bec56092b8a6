package ledger

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// tracker records what the ledger acknowledged: entries returned by
// Append and checkpoints returned by Checkpoint.
type tracker struct {
	mu     sync.Mutex
	acked  map[uint64]Record
	signed map[uint64][32]byte
}

func newTracker() *tracker {
	return &tracker{acked: map[uint64]Record{}, signed: map[uint64][32]byte{}}
}

func (tr *tracker) ack(es []Entry, recs []Record) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for i, e := range es {
		tr.acked[e.Index] = recs[i]
	}
}

func (tr *tracker) sign(t testing.TB, cp []byte) {
	_, _, v := testKeys(t)
	body, _, err := ParseCheckpoint(cp, testOrigin(), v)
	if err != nil {
		t.Errorf("checkpoint does not verify: %v", err)
		return
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if r, ok := tr.signed[body.Size]; ok && r != body.Root {
		t.Errorf("two checkpoints signed for size %d", body.Size)
	}
	tr.signed[body.Size] = body.Root
}

func (tr *tracker) snapshot() (map[uint64]Record, map[uint64][32]byte) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return maps.Clone(tr.acked), maps.Clone(tr.signed)
}

// workload appends records (unique bodies) from several writers and signs
// checkpoints, returning at the first error.
func workload(ctx context.Context, t testing.TB, l *Ledger, tr *tracker, writers, perWriter int) error {
	var wg sync.WaitGroup
	var first atomic.Value
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				n := 1 + (i % 3) // 1 to 3 records per call
				recs := make([]Record, n)
				for j := range recs {
					recs[j] = Record{
						Kind:    Kind(1 + (w+i+j)%12),
						Time:    time.Unix(1_700_000_000, 0),
						Session: fmt.Sprintf("s%d", w),
						Body:    fmt.Appendf(nil, "w%d-%d-%d", w, i, j),
					}
				}
				es, err := l.Append(ctx, recs...)
				if err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
				tr.ack(es, recs)
				if w == 0 && i%4 == 3 {
					cp, err := l.Checkpoint(ctx)
					if err != nil {
						first.CompareAndSwap(nil, err)
						return
					}
					tr.sign(t, cp)
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := first.Load().(error); ok {
		return err
	}
	return nil
}

// truth holds the entries of the ledger that ran to the end: every crash
// image must hold a prefix of them.
type truth struct {
	enc   [][]byte
	roots map[uint64][32]byte // root at every size
}

func truthOf(t testing.TB, l *Ledger) *truth {
	t.Helper()
	es, err := l.Entries(0, l.Size())
	if err != nil {
		t.Fatal(err)
	}
	tr := &truth{roots: map[uint64][32]byte{0: emptyRoot}}
	rng := rangeFactory.NewEmptyRange(0)
	for _, e := range es {
		b := e.Encode()
		tr.enc = append(tr.enc, b)
		h := LeafHash(b)
		rng.Append(h[:], nil)
		r, _ := rng.GetRootHash(nil)
		tr.roots[uint64(len(tr.enc))] = [32]byte(r)
	}
	return tr
}

// verifyImage opens a crash image and checks it: it opens, Check passes,
// every acknowledged entry is there, every checkpoint signed before the
// crash is recorded with the same root, and it signs and appends again
// without ever contradicting an earlier checkpoint.
func verifyImage(t testing.TB, fs vfs.FS, acked map[uint64]Record, signed map[uint64][32]byte, tru *truth, global *tracker) {
	t.Helper()
	ctx := context.Background()
	l, err := Open("db", testOptions(t, fs))
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer l.Close()
	if err := l.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	size := l.Size()
	for i, r := range acked {
		if i >= size {
			t.Fatalf("acknowledged entry %d lost (size %d)", i, size)
		}
		e, err := l.Entry(i)
		if err != nil || !sameRecord(e, r) {
			t.Fatalf("acknowledged entry %d differs: %v", i, err)
		}
	}
	if tru != nil {
		if size > uint64(len(tru.enc)) {
			t.Fatalf("image holds %d entries, the log only ever had %d", size, len(tru.enc))
		}
		es, err := l.Entries(0, size)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range es {
			if !bytes.Equal(e.Encode(), tru.enc[i]) {
				t.Fatalf("entry %d differs from the log's", i)
			}
		}
	}
	for s, root := range signed {
		v, err := l.get(checkpointKey(s))
		if err != nil {
			t.Fatalf("checkpoint %d signed before the crash is not recorded: %v", s, err)
		}
		r, err := parseCheckpointRecord(s, v)
		if err != nil || r.root != root {
			t.Fatalf("checkpoint %d recorded with another root: %v", s, err)
		}
	}
	cp, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatalf("checkpoint after reopen: %v", err)
	}
	global.sign(t, cp)
	if _, err := l.Append(ctx, Record{Kind: KindAgent, Body: []byte("after the crash")}); err != nil {
		t.Fatalf("append after reopen: %v", err)
	}
	if err := l.Check(ctx); err != nil {
		t.Fatalf("Check after reopen and append: %v", err)
	}
}

// TestCrashAtEveryStep takes a crash image of the file system before every
// file system operation of a concurrent append and checkpoint workload,
// keeping only synced data (and, in a second pass, a random part of the
// unsynced data too), and checks that each image reopens to a consistent
// ledger that lost nothing it acknowledged.
func TestCrashAtEveryStep(t *testing.T) {
	for _, pct := range []int{0, 50} {
		t.Run(fmt.Sprintf("unsynced=%d%%", pct), func(t *testing.T) {
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			rng := rand.New(rand.NewPCG(seed, 2))
			mem := vfs.NewCrashableMem()
			tr := newTracker()
			type image struct {
				fs     *vfs.MemFS
				op     errorfs.Op
				acked  map[uint64]Record
				signed map[uint64][32]byte
			}
			var (
				mu     sync.Mutex
				images []image
				armed  atomic.Bool
			)
			inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
				if !armed.Load() {
					return nil
				}
				mu.Lock()
				defer mu.Unlock()
				// What was acknowledged before this operation must survive it.
				acked, signed := tr.snapshot()
				cfg := vfs.CrashCloneCfg{UnsyncedDataPercent: pct}
				if pct > 0 {
					cfg.RNG = rand.New(rand.NewPCG(rng.Uint64(), 3))
				}
				images = append(images, image{mem.CrashClone(cfg), op, acked, signed})
				return nil
			})
			l := openTest(t, errorfs.Wrap(mem, inj), "db")
			armed.Store(true)
			if err := workload(context.Background(), t, l, tr, 4, 12); err != nil {
				t.Fatal(err)
			}
			armed.Store(false)
			tru := truthOf(t, l)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			t.Logf("%d entries, %d checkpoints, %d crash images", len(tru.enc), len(tr.signed), len(images))
			global := newTracker()
			maps.Copy(global.signed, tr.signed)
			for i, im := range images {
				ok := t.Run(fmt.Sprintf("op%d", i), func(t *testing.T) {
					verifyImage(t, im.fs, im.acked, im.signed, tru, global)
				})
				if !ok {
					t.Fatalf("image %d (before %v %s) failed", i, im.op.Kind, im.op.Path)
				}
			}
		})
	}
}

// TestErrorAtEveryStep fails the file system operation number k of an
// append and checkpoint workload, for every k until the workload runs
// clean: the failing call returns an error, the ledger refuses further
// writes, and a crash image reopens consistent with nothing acknowledged
// lost.
func TestErrorAtEveryStep(t *testing.T) {
	global := newTracker()
	for k := int64(0); ; k++ {
		mem := vfs.NewCrashableMem()
		var count atomic.Int64
		var armed, fired atomic.Bool
		var failedOp errorfs.Op
		inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
			if armed.Load() && count.Add(1)-1 == k {
				failedOp = op
				fired.Store(true)
				return errorfs.ErrInjected
			}
			return nil
		})
		l := openTest(t, errorfs.Wrap(mem, inj), "db")
		tr := newTracker()
		armed.Store(true)
		err := workload(context.Background(), t, l, tr, 1, 10)
		if fired.Load() {
			t.Logf("op %d (%v %s): workload error: %v", k, failedOp.Kind, failedOp.Path, err)
		}
		if err != nil {
			if !fired.Load() {
				t.Fatalf("op %d: error without injection: %v", k, err)
			}
			if errors.Is(err, ErrFailed) {
				if _, err := l.Append(context.Background(), rec(1)); !errors.Is(err, ErrFailed) {
					t.Fatalf("op %d: append after a failed commit: %v", k, err)
				}
			}
		}
		armed.Store(false)
		closed := make(chan error, 1)
		go func() { closed <- l.Close() }()
		select {
		case <-closed:
		case <-time.After(20 * time.Second):
			t.Fatalf("op %d: Close hangs after a failure", k)
		}
		acked, signed := tr.snapshot()
		verifyImage(t, mem.CrashClone(vfs.CrashCloneCfg{}), acked, signed, nil, global)
		if !fired.Load() {
			t.Logf("workload ran clean after failing each of its %d operations", k)
			return
		}
		if k > 5000 {
			t.Fatal("workload never runs clean")
		}
	}
}

// TestKillNine appends from a child process that is killed with SIGKILL
// mid-stream, then reopens its ledger: Check passes, every entry and
// checkpoint the child reported as acknowledged is there.
func TestKillNine(t *testing.T) {
	if dir := os.Getenv("ASP_LEDGER_KILL_CHILD"); dir != "" {
		killChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillNine$")
	cmd.Env = append(os.Environ(), "ASP_LEDGER_KILL_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[uint64]string{}
	var cps [][]byte
	sc := bufio.NewScanner(out)
	sc.Buffer(nil, 1<<20)
	killed := false
	deadline := time.Now().Add(60 * time.Second)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 3 && f[0] == "ack":
			i, _ := strconv.ParseUint(f[1], 10, 64)
			acked[i] = f[2]
		case len(f) == 2 && f[0] == "cp":
			b, _ := base64.StdEncoding.DecodeString(f[1])
			cps = append(cps, b)
		}
		if !killed && (len(acked) >= 3000 && len(cps) >= 3 || time.Now().After(deadline)) {
			cmd.Process.Kill() // SIGKILL: no deferred code, no Close
			killed = true
		}
	}
	cmd.Wait()
	if !killed || len(acked) == 0 {
		t.Fatalf("child ended before it was killed (%d acks)", len(acked))
	}
	t.Logf("child killed after %d acknowledged entries and %d checkpoints", len(acked), len(cps))

	l, err := Open(dir, testOptions(t, vfs.Default))
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer l.Close()
	ctx := context.Background()
	if err := l.Check(ctx); err != nil {
		t.Fatal(err)
	}
	size, root := l.Root()
	for i, body := range acked {
		e, err := l.Entry(i)
		if err != nil || string(e.Body) != body {
			t.Fatalf("acknowledged entry %d lost or changed (size %d): %v", i, size, err)
		}
	}
	_, _, v := testKeys(t)
	for _, cp := range cps {
		body, _, err := ParseCheckpoint(cp, testOrigin(), v)
		if err != nil {
			t.Fatal(err)
		}
		p, err := l.ConsistencyProof(body.Size, size)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyConsistency(body.Size, size, p, body.Root, root); err != nil {
			t.Fatalf("checkpoint %d from before the kill: %v", body.Size, err)
		}
	}
	cp, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if body, _, _ := ParseCheckpoint(cp, testOrigin(), v); body.Root != root {
		t.Fatal("checkpoint after reopen")
	}
}

// killChild is the child of TestKillNine: 8 writers append until killed,
// printing "ack <index> <body>" after each durable entry and "cp <base64>"
// after each checkpoint.
func killChild(dir string) {
	s, c, _ := NewCheckpointSigner(testOrg, testOrigin())
	l, err := Open(dir, Options{Origin: testOrigin(), Signer: s, KeyCertificate: c})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	say := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(w, format, args...)
		w.Flush()
		mu.Unlock()
	}
	ctx := context.Background()
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; ; i++ {
				body := fmt.Sprintf("g%d-%d", g, i)
				es, err := l.Append(ctx, Record{Kind: KindMessageSent, Session: fmt.Sprintf("s%d", g), Body: []byte(body)})
				if err != nil {
					fmt.Fprintln(os.Stderr, "child:", err)
					os.Exit(2)
				}
				say("ack %d %s\n", es[0].Index, body)
				if g == 0 && i%200 == 199 {
					cp, err := l.Checkpoint(ctx)
					if err != nil {
						fmt.Fprintln(os.Stderr, "child:", err)
						os.Exit(2)
					}
					say("cp %s\n", base64.StdEncoding.EncodeToString(cp))
				}
			}
		}()
	}
	select {}
}

// TestErrorDuringOpen fails each file system read of Open on an existing
// ledger in turn: Open fails cleanly or succeeds, and a clean reopen finds
// everything. (Write failures in the flush that Pebble starts after
// replaying its log are fatal by Pebble's design and end the process, as
// with Pebble's own logger; a restart recovers.)
func TestErrorDuringOpen(t *testing.T) {
	base := vfs.NewCrashableMem()
	l := openTest(t, base, "db")
	appendN(t, l, 0, 300)
	if _, err := l.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	l.Close()
	tru := truthOf(t, func() *Ledger { l := openTest(t, base, "db"); t.Cleanup(func() { l.Close() }); return l }())
	global := newTracker()
	failures := 0
	for k := int64(0); ; k++ {
		mem := base.CrashClone(vfs.CrashCloneCfg{})
		var count atomic.Int64
		var fired atomic.Bool
		inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
			if op.Kind.ReadOrWrite() == errorfs.OpIsRead && count.Add(1)-1 == k {
				fired.Store(true)
				return errorfs.ErrInjected
			}
			return nil
		})
		l, err := Open("db", testOptions(t, errorfs.Wrap(mem, inj)))
		if err == nil {
			l.Close()
		} else {
			failures++
		}
		acked := map[uint64]Record{}
		for i := 0; i < 300; i++ {
			acked[uint64(i)] = rec(i)
		}
		verifyImage(t, mem.CrashClone(vfs.CrashCloneCfg{}), acked, nil, tru, global)
		if !fired.Load() {
			t.Logf("Open ran clean after failing each of its %d reads (%d failed Open)", k, failures)
			return
		}
	}
}
