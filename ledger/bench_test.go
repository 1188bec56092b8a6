package ledger

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aspnode/asp/internal/cputime"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Floors measured on this kind of machine; the
// benchmarks report their figures as ratios to them.
const (
	floorSetSyncPerSec   = 4500   // bare Pebble Set(Sync), one at a time
	floorSetSyncP50      = 220e-6 // its p50 latency, seconds
	floorBatchPerSec     = 1e6    // Pebble batches of 1000, Sync
	floorMerkleRoot1M    = 0.55   // Merkle root over 1M leaves, seconds
	floorInclusionBuild  = 0.6e-6 // inclusion proof build at 2^20, seconds
	floorInclusionVerify = 7e-6   // inclusion proof verify at 2^20, seconds
	floorNoteSign        = 17e-6  // signed-note checkpoint sign, seconds
	benchEntryLen        = 256    // bytes per encoded entry, as in the Tessera comparison
	benchBodyLen         = benchEntryLen - entryHeaderLen - 2 - 2 - 4
)

var fixtureDirs []string

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range fixtureDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// benchNoise is random filler for bench bodies (signed envelopes hardly
// compress).
var benchNoise = func() []byte {
	b := make([]byte, 1<<16)
	rand.NewChaCha8([32]byte{7}).Read(b)
	return b
}()

// benchRecord returns a record whose entry encodes to 256 bytes, with a
// unique body of pseudo-random bytes.
func benchRecord(w, i int) Record {
	body := make([]byte, benchBodyLen)
	o := (i * 131) % (len(benchNoise) - benchBodyLen)
	copy(body, benchNoise[o:])
	binary.BigEndian.PutUint64(body, uint64(w))
	binary.BigEndian.PutUint64(body[8:], uint64(i))
	return Record{Kind: KindMessageSent, Time: time.Unix(1_800_000_000, int64(i)), Body: body}
}

// BenchmarkAppend measures durable appends: each writer appends one
// 256-byte entry at a time and waits until it is synced with the tree
// (group commit, no added delay), on a fresh store on disk.
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			l, err := Open(b.TempDir(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			ctx := context.Background()
			var next atomic.Int64
			lat := make([][]time.Duration, writers)
			b.ResetTimer()
			start, cpu0 := time.Now(), cputime.Process()
			var wg sync.WaitGroup
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						t0 := time.Now()
						if _, err := l.Append(ctx, benchRecord(w, int(i))); err != nil {
							b.Error(err)
							return
						}
						lat[w] = append(lat[w], time.Since(t0))
					}
				}()
			}
			wg.Wait()
			el, cpu := time.Since(start), cputime.Process()-cpu0
			b.StopTimer()
			b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N), "cpu_us/append")
			rate := float64(b.N) / el.Seconds()
			st := l.Stats()
			all := slices.Concat(lat...)
			slices.Sort(all)
			b.ReportMetric(float64(st.CommitTime.Microseconds())/float64(max(st.Batches, 1)), "us/commit")
			b.ReportMetric(float64(st.Bytes)/float64(max(st.Entries, 1)), "bytes/entry")
			b.ReportMetric(rate, "appends/s")
			b.ReportMetric(rate/floorSetSyncPerSec, "x_SetSync_floor")
			b.ReportMetric(rate/floorBatchPerSec, "of_batch_floor")
			b.ReportMetric(float64(st.Entries)/float64(max(st.Batches, 1)), "entries/commit")
			if len(all) > 0 {
				b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50_us")
				b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99_us")
			}
		})
	}
}

// BenchmarkPebbleSetSync is the floor for one durable append: a bare
// Pebble Set(Sync) of a 256-byte value, one at a time, on the same disk.
func BenchmarkPebbleSetSync(b *testing.B) {
	db, err := pebble.Open(b.TempDir(), &pebble.Options{Logger: pebbleLogger{discardLogger()}})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	v := make([]byte, benchEntryLen)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	cpu0 := cputime.Process()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := db.Set(binary.BigEndian.AppendUint64(nil, uint64(i)), v, pebble.Sync); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	b.ReportMetric(float64((cputime.Process()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu_us/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50_us")
	b.ReportMetric(lat[len(lat)/2].Seconds()/floorSetSyncP50, "x_floor_p50")
}

// fixture is a ledger of 2^20 entries of 256 bytes, built once, with its
// bundle exported.
var fixture struct {
	once   sync.Once
	dir    string
	bundle string
	err    error
}

const fixtureSize = 1 << 20

func benchFixture(b *testing.B) (string, string) {
	fixture.once.Do(func() {
		// ASP_LEDGER_BENCH_DIR keeps the fixture between runs.
		dir := os.Getenv("ASP_LEDGER_BENCH_DIR")
		if dir == "" {
			d, err := os.MkdirTemp("", "asp-ledger-bench-")
			if err != nil {
				fixture.err = err
				return
			}
			fixtureDirs = append(fixtureDirs, d)
			dir = d
		}
		fixture.dir = filepath.Join(dir, "db")
		fixture.bundle = filepath.Join(dir, "bundle.tar")
		if _, err := os.Stat(fixture.bundle); err == nil {
			return
		}
		opts := testOptions(b, vfs.Default)
		l, err := Open(fixture.dir, opts)
		if err != nil {
			fixture.err = err
			return
		}
		defer l.Close()
		ctx := context.Background()
		recs := make([]Record, 0, 4096)
		for i := 0; i < fixtureSize; i++ {
			recs = append(recs, benchRecord(0, i))
			if len(recs) == cap(recs) {
				if _, err := l.Append(ctx, recs...); err != nil {
					fixture.err = err
					return
				}
				recs = recs[:0]
			}
			if i%(fixtureSize/4) == 0 {
				if _, err := l.Checkpoint(ctx); err != nil {
					fixture.err = err
					return
				}
			}
		}
		fixture.err = l.Export(ctx, fixture.bundle, BundleExtras{})
	})
	if fixture.err != nil {
		b.Fatal(fixture.err)
	}
	return fixture.dir, fixture.bundle
}

// BenchmarkCheck1M runs Check over 2^20 stored entries.
func BenchmarkCheck1M(b *testing.B) {
	dir, _ := benchFixture(b)
	opts := testOptions(b, vfs.Default)
	opts.ReadOnly = true
	l, err := Open(dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ResetTimer()
	cpu0 := cputime.Process()
	for i := 0; i < b.N; i++ {
		if err := l.Check(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	s := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(s, "s/check")
	b.ReportMetric(s/floorMerkleRoot1M, "x_merkle_floor")
	b.ReportMetric((cputime.Process()-cpu0).Seconds()/float64(b.N), "cpu_s/check")
}

// BenchmarkVerifyBundle1M verifies the exported bundle of 2^20 entries.
func BenchmarkVerifyBundle1M(b *testing.B) {
	_, bundle := benchFixture(b)
	b.ResetTimer()
	cpu0 := cputime.Process()
	for i := 0; i < b.N; i++ {
		rep, err := VerifyBundle(bundle, VerifyOptions{Org: testPeerID()})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Size != fixtureSize {
			b.Fatal(rep.Size)
		}
	}
	s := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(s, "s/verify")
	b.ReportMetric(s/floorMerkleRoot1M, "x_merkle_floor")
	b.ReportMetric((cputime.Process()-cpu0).Seconds()/float64(b.N), "cpu_s/verify")
}

// BenchmarkProof builds and verifies inclusion and consistency proofs in
// the tree of 2^20 entries.
func BenchmarkProof(b *testing.B) {
	dir, _ := benchFixture(b)
	opts := testOptions(b, vfs.Default)
	opts.ReadOnly = true
	l, err := Open(dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	size, root := l.Root()
	b.Run("inclusion-build", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := l.InclusionProof(uint64(i*7919)%size, size); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/floorInclusionBuild, "x_floor")
	})
	b.Run("inclusion-verify", func(b *testing.B) {
		idx := uint64(123456)
		p, _ := l.InclusionProof(idx, size)
		leaf, _ := l.EntryHash(idx)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := VerifyInclusion(idx, size, leaf, p, root); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/floorInclusionVerify, "x_floor")
		b.ReportMetric(float64(32*len(p)), "proof_bytes")
	})
	b.Run("consistency-build", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := l.ConsistencyProof(1+uint64(i*7919)%(size-1), size); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("consistency-verify", func(b *testing.B) {
		old := uint64(700001)
		p, _ := l.ConsistencyProof(old, size)
		oldRoot := rootAt(b, l, old)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := VerifyConsistency(old, size, p, oldRoot, root); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// rootAt computes the root at an earlier size from a consistency proof's
// building blocks: the compact range of [0, size) read through proofs.
func rootAt(b *testing.B, l *Ledger, size uint64) [32]byte {
	es, err := l.Entries(0, size)
	if err != nil {
		b.Fatal(err)
	}
	rng := rangeFactory.NewEmptyRange(0)
	for _, e := range es {
		h := e.Hash()
		rng.Append(h[:], nil)
	}
	r, _ := rng.GetRootHash(nil)
	return [32]byte(r)
}

// BenchmarkCheckpoint signs a checkpoint for a new size each time: the
// synced intent record, the signature and the stored note.
func BenchmarkCheckpoint(b *testing.B) {
	l, err := Open(b.TempDir(), testOptions(b, vfs.Default))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if _, err := l.Append(ctx, benchRecord(0, i)); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := l.Checkpoint(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/floorNoteSign, "x_sign_floor")
}

// BenchmarkPebbleBatchSync is the floor for group commit: bare Pebble
// batches of 256-byte values committed with Sync, one after another.
func BenchmarkPebbleBatchSync(b *testing.B) {
	for _, n := range []int{128, 1000} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			db, err := pebble.Open(b.TempDir(), &pebble.Options{Logger: pebbleLogger{discardLogger()}})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			v := make([]byte, benchEntryLen)
			rand.NewChaCha8([32]byte{}).Read(v)
			b.ResetTimer()
			var k uint64
			for i := 0; i < b.N; i++ {
				bt := db.NewBatch()
				for j := 0; j < n; j++ {
					bt.Set(binary.BigEndian.AppendUint64(nil, k), v, nil)
					k++
				}
				if err := bt.Commit(pebble.Sync); err != nil {
					b.Fatal(err)
				}
				bt.Close()
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "writes/s")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "us/commit")
		})
	}
}
