package ledger

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	tlog "github.com/transparency-dev/formats/log"
)

// buildCheckLedger writes 600 entries (two full tiles and an edge of 88)
// with checkpoints at 100, 512 and 600, and returns its file system. Tile 1
// is checked as a whole group, tile 0 leaf by leaf (a checkpoint inside).
func buildCheckLedger(t *testing.T) vfs.FS {
	t.Helper()
	fs := vfs.NewMem()
	l := openTest(t, fs, "db")
	ctx := context.Background()
	for _, upto := range []int{100, 512, 600} {
		var recs []Record
		for i := int(l.Size()); i < upto; i++ {
			recs = append(recs, rec(i))
		}
		if _, err := l.Append(ctx, recs...); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Check(ctx); err != nil {
		t.Fatalf("Check of an intact ledger: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return fs
}

func flipEntryByte(t *testing.T, db *pebble.DB, i uint64, off int) {
	v := mustGet(t, db, entryKey(i))
	if off < 0 {
		off += len(v)
	}
	v[off] ^= 0x20
	mustSet(t, db, entryKey(i), v)
}

func TestCheckNamesFirstBadEntry(t *testing.T) {
	bodyOff := -3 // a byte inside the body
	cases := []struct {
		name   string
		tamper func(t *testing.T, db *pebble.DB)
		what   string
		index  uint64
	}{
		{"flip body in full tile", func(t *testing.T, db *pebble.DB) { flipEntryByte(t, db, 100, bodyOff) }, "entry", 100},
		{"flip body in whole group", func(t *testing.T, db *pebble.DB) { flipEntryByte(t, db, 400, bodyOff) }, "entry", 400},
		{"flip last of whole group", func(t *testing.T, db *pebble.DB) { flipEntryByte(t, db, 511, bodyOff) }, "entry", 511},
		{"flip body in edge", func(t *testing.T, db *pebble.DB) { flipEntryByte(t, db, 550, bodyOff) }, "entry", 550},
		{"flip last entry", func(t *testing.T, db *pebble.DB) { flipEntryByte(t, db, 599, bodyOff) }, "entry", 599},
		{"flip first entry", func(t *testing.T, db *pebble.DB) { flipEntryByte(t, db, 0, bodyOff) }, "entry", 0},
		{"flip prev hash", func(t *testing.T, db *pebble.DB) { flipEntryByte(t, db, 300, 20) }, "entry", 300},
		{"flip prev hash in edge", func(t *testing.T, db *pebble.DB) { flipEntryByte(t, db, 530, 20) }, "entry", 530},
		{"flip time", func(t *testing.T, db *pebble.DB) { flipEntryByte(t, db, 7, 45) }, "entry", 7},
		{"flip kind", func(t *testing.T, db *pebble.DB) { flipEntryByte(t, db, 520, 50) }, "entry", 520},
		{"delete entry", func(t *testing.T, db *pebble.DB) { mustDelete(t, db, entryKey(200)) }, "entry", 200},
		{"delete edge entry", func(t *testing.T, db *pebble.DB) { mustDelete(t, db, entryKey(580)) }, "entry", 580},
		{"insert after the end", func(t *testing.T, db *pebble.DB) {
			e := Entry{Index: 600, Kind: KindAgent}
			mustSet(t, db, entryKey(600), e.Encode())
		}, "entry", 600},
		{"reorder", func(t *testing.T, db *pebble.DB) {
			a, b := mustGet(t, db, entryKey(10)), mustGet(t, db, entryKey(11))
			mustSet(t, db, entryKey(10), b)
			mustSet(t, db, entryKey(11), a)
		}, "entry", 10},
		{"reorder with renumbering", func(t *testing.T, db *pebble.DB) {
			// Swap two entries and fix their index fields: only hashes tell.
			a, _ := DecodeEntry(mustGet(t, db, entryKey(560)))
			b, _ := DecodeEntry(mustGet(t, db, entryKey(561)))
			a.Index, b.Index = 561, 560
			mustSet(t, db, entryKey(560), b.Encode())
			mustSet(t, db, entryKey(561), a.Encode())
		}, "entry", 560},
		{"truncate tail", func(t *testing.T, db *pebble.DB) {
			for i := uint64(590); i < 600; i++ {
				mustDelete(t, db, entryKey(i))
			}
		}, "entry", 590},
		{"truncate into the full tiles", func(t *testing.T, db *pebble.DB) {
			for i := uint64(400); i < 600; i++ {
				mustDelete(t, db, entryKey(i))
			}
		}, "entry", 400},
		{"checkpoint root differs", func(t *testing.T, db *pebble.DB) {
			b := tlog.Checkpoint{Origin: testOrigin(), Size: 512, Hash: bytes.Repeat([]byte{1}, 32)}.Marshal()
			mustSet(t, db, checkpointKey(512), append([]byte{cpIntent}, b...))
		}, "checkpoint", 512},
		{"checkpoint signature", func(t *testing.T, db *pebble.DB) {
			v := mustGet(t, db, checkpointKey(100))
			v[len(v)-5] ^= 1
			mustSet(t, db, checkpointKey(100), v)
		}, "checkpoint", 100},
		{"checkpoint beyond the tree", func(t *testing.T, db *pebble.DB) {
			b := tlog.Checkpoint{Origin: testOrigin(), Size: 700, Hash: bytes.Repeat([]byte{1}, 32)}.Marshal()
			mustSet(t, db, checkpointKey(700), append([]byte{cpIntent}, b...))
		}, "checkpoint", 700},
		{"missing index key", func(t *testing.T, db *pebble.DB) {
			e, _ := DecodeEntry(mustGet(t, db, entryKey(42)))
			mustDelete(t, db, appendKindIndexKey(nil, e.Kind, 42))
		}, "index", 42},
		{"stray index key", func(t *testing.T, db *pebble.DB) {
			mustSet(t, db, appendIDIndexKey(nil, idxCommitment, "cmt_forged", 77), nil)
		}, "index", 77},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := buildCheckLedger(t)
			rawDB(t, fs, "db", func(db *pebble.DB) { tc.tamper(t, db) })
			opts := testOptions(t, fs)
			opts.ReadOnly = true
			l, err := Open("db", opts)
			if err != nil {
				t.Fatalf("read-only open: %v", err)
			}
			defer l.Close()
			err = l.Check(context.Background())
			var ce *CorruptionError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorruption) {
				t.Fatalf("Check: %v", err)
			}
			if ce.What != tc.what || ce.Index != tc.index {
				t.Fatalf("Check named %s %d (%v), want %s %d", ce.What, ce.Index, err, tc.what, tc.index)
			}
			t.Logf("%v", err)
		})
	}
}

func TestCheckTilesAndHead(t *testing.T) {
	cases := map[string]func(t *testing.T, db *pebble.DB){
		"tile leaf":     func(t *testing.T, db *pebble.DB) { flipTile(t, db, 0, 1, 5) },
		"tile interior": func(t *testing.T, db *pebble.DB) { flipTile(t, db, 0, 0, tileOffset(3)*32+7) },
		"tile deleted":  func(t *testing.T, db *pebble.DB) { mustDelete(t, db, tileKey(0, 1)) },
		"tile extra":    func(t *testing.T, db *pebble.DB) { mustSet(t, db, tileKey(0, 9), make([]byte, tileBytes)) },
		"tree head": func(t *testing.T, db *pebble.DB) {
			v := mustGet(t, db, keyTree)
			v[50] ^= 1
			mustSet(t, db, keyTree, v)
		},
		"format": func(t *testing.T, db *pebble.DB) { mustDelete(t, db, keyFormat) },
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			fs := buildCheckLedger(t)
			rawDB(t, fs, "db", func(db *pebble.DB) { tamper(t, db) })
			opts := testOptions(t, fs)
			opts.ReadOnly = true
			l, err := Open("db", opts)
			if err != nil {
				if errors.Is(err, ErrCorruption) {
					return // Open itself refused (format key)
				}
				t.Fatal(err)
			}
			defer l.Close()
			if err := l.Check(context.Background()); !errors.Is(err, ErrCorruption) {
				t.Fatalf("Check: %v", err)
			} else {
				t.Logf("%v", err)
			}
		})
	}
}

func flipTile(t *testing.T, db *pebble.DB, level uint8, index uint64, off int) {
	v := mustGet(t, db, tileKey(level, index))
	v[off] ^= 1
	mustSet(t, db, tileKey(level, index), v)
}

// TestOpenRefusesCorruptTail: a writable Open refuses a ledger whose tail
// does not match its tree head, so that nothing is appended to it or signed.
func TestOpenRefusesCorruptTail(t *testing.T) {
	fs := buildCheckLedger(t)
	rawDB(t, fs, "db", func(db *pebble.DB) { flipEntryByte(t, db, 590, -2) })
	if _, err := Open("db", testOptions(t, fs)); !errors.Is(err, ErrCorruption) {
		t.Fatalf("Open: %v", err)
	}
	opts := testOptions(t, fs)
	opts.ReadOnly = true
	l, err := Open("db", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(context.Background(), rec(1)); err == nil {
		t.Fatal("appended to a read-only ledger")
	}
	if _, err := l.Checkpoint(context.Background()); err == nil {
		t.Fatal("signed a corrupt ledger")
	}
}
