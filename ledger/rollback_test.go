package ledger

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// writeSynced builds a ledger of n entries on disk with real syncs,
// appending in runs of 97 and signing a checkpoint after each, then closes
// it. It returns the size at the last checkpoint.
func writeSynced(t *testing.T, dir string, n int) (lastCP uint64) {
	t.Helper()
	l := openTest(t, vfs.Default, dir)
	ctx := context.Background()
	for i := 0; i < n; {
		var recs []Record
		for j := 0; j < 97 && i < n; j++ {
			recs = append(recs, rec(i))
			i++
		}
		if _, err := l.Append(ctx, recs...); err != nil {
			t.Fatal(err)
		}
		if i < n-50 {
			if _, err := l.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
			lastCP = l.Size()
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return lastCP
}

// newestLog returns the path of the write-ahead log with the highest number.
func newestLog(t *testing.T, dir string) string {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(logs) == 0 {
		t.Fatal("no write-ahead log")
	}
	sort.Strings(logs)
	return logs[len(logs)-1]
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

// walDamage are the ways the tests damage the newest write-ahead log.
var walDamage = []struct {
	name   string
	damage func(t *testing.T, path string)
}{
	{"overwrite-64-bytes-mid", func(t *testing.T, path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i := len(b) / 2; i < len(b)/2+64; i++ {
			b[i] ^= 0x5a
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}},
	{"truncate-half", func(t *testing.T, path string) {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, fi.Size()/2); err != nil {
			t.Fatal(err)
		}
	}},
	{"truncate-to-5-bytes", func(t *testing.T, path string) {
		if err := os.Truncate(path, 5); err != nil {
			t.Fatal(err)
		}
	}},
}

// Damage to the newest write-ahead log, which Pebble replays as a torn
// tail, never opens as a smaller ledger: Open names the acknowledged and
// the found size; AllowRollback opens it, records the rollback and makes
// the new size the acknowledged one.
func TestWALDamageIsRollback(t *testing.T) {
	const n = 3000
	orig := filepath.Join(t.TempDir(), "orig")
	writeSynced(t, orig, n)
	for _, tc := range walDamage {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ledger")
			copyDir(t, orig, dir)
			tc.damage(t, newestLog(t, dir))

			for _, ro := range []bool{false, true} {
				opts := testOptions(t, vfs.Default)
				opts.ReadOnly = ro
				l, err := Open(dir, opts)
				var rb *RolledBackError
				if !errors.As(err, &rb) || !errors.Is(err, ErrRolledBack) {
					if err == nil {
						t.Fatalf("read-only %v: opened with %d of %d entries", ro, l.Size(), n)
					}
					t.Fatalf("read-only %v: %v; want ErrRolledBack", ro, err)
				}
				if rb.Acknowledged != n || rb.Found >= n || !strings.Contains(err.Error(), "allow-rollback") {
					t.Errorf("read-only %v: %v (acknowledged %d, found %d); want %d acknowledged", ro, err, rb.Acknowledged, rb.Found, n)
				}
			}

			opts := testOptions(t, vfs.Default)
			opts.AllowRollback = true
			l, err := Open(dir, opts)
			if err != nil {
				t.Fatalf("allow rollback: %v", err)
			}
			size := l.Size()
			last, err := l.Entry(size - 1)
			if err != nil {
				t.Fatal(err)
			}
			if last.Kind != KindRollback || !strings.Contains(string(last.Body), "acknowledged 3000 ") {
				t.Errorf("last entry: %v %q; want the rollback recorded", last.Kind, last.Body)
			}
			if err := l.Check(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			// The mark was reset: a plain Open succeeds.
			l = openTest(t, vfs.Default, dir)
			if l.Size() != size {
				t.Errorf("reopened with %d entries, want %d", l.Size(), size)
			}
			l.Close()
		})
	}
}

// A checkpoint makes its size acknowledged durably: it survives a crash
// (no Close) that loses everything not synced, and the store opens.
func TestAcknowledgedSizeFollowsCheckpoints(t *testing.T) {
	fs := vfs.NewCrashableMem()
	l := openTest(t, fs, "db")
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		if _, err := l.Append(ctx, rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	l.Close()
	rec, err := readAck(crashed, "db")
	if err != nil || rec.size != 10 {
		t.Fatalf("acknowledged record: %+v, %v; want size 10", rec, err)
	}
	l2 := openTest(t, crashed, "db")
	l2.Close()
}

// The record is replaced in place, slot by slot: a torn slot leaves the
// other one; a missing file is refused once the store had one.
func TestAcknowledgedRecordDamage(t *testing.T) {
	fs := vfs.NewMem()
	l := openTest(t, fs, "db")
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := l.Append(ctx, rec(i)); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	cur, err := readAck(fs, "db")
	if err != nil || cur.size != 3 {
		t.Fatalf("record %+v, %v", cur, err)
	}
	// Tear the newest slot: the older one (size 2) counts.
	tearAckSlot(t, fs, "db", cur.seq)
	if r, err := readAck(fs, "db"); err != nil || r.size != 2 {
		t.Errorf("after a torn slot: %+v, %v; want size 2", r, err)
	}
	l = openTest(t, fs, "db")
	l.Close()

	if err := fs.Remove("db/" + AckFile); err != nil {
		t.Fatal(err)
	}
	_, err = Open("db", testOptions(t, fs))
	var rb *RolledBackError
	if !errors.As(err, &rb) || !rb.Missing {
		t.Fatalf("open without the record: %v; want a rollback naming the missing record", err)
	}
}

// A flipped byte in a table file's data block is an error naming the file
// from Check and the read methods, never a panic.
func TestDamagedTableFile(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, vfs.Default, dir)
	ctx := context.Background()
	for i := 0; i < 3000; i += 100 {
		var recs []Record
		for j := i; j < i+100; j++ {
			recs = append(recs, rec(j))
		}
		if _, err := l.Append(ctx, recs...); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.db.Flush(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(ssts) == 0 {
		t.Fatal("no table file")
	}
	sort.Strings(ssts)
	sst := ssts[len(ssts)-1]
	b, err := os.ReadFile(sst)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/4] ^= 0x40
	if err := os.WriteFile(sst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{false, true} {
		opts := testOptions(t, vfs.Default)
		opts.ReadOnly = ro
		l, err := Open(dir, opts)
		if err == nil {
			err = l.Check(ctx)
			if _, rerr := l.Entries(0, 3000); rerr == nil || !strings.Contains(rerr.Error(), filepath.Base(sst)) {
				t.Errorf("read-only %v: Entries: %v; want the damaged file named", ro, rerr)
			}
			l.Close()
		}
		var ce *CorruptionError
		if !errors.As(err, &ce) || ce.What != "file" || ce.File != sst {
			t.Errorf("read-only %v: %v; want a corruption naming %s", ro, err, sst)
		}
	}
}

// tearAckSlot overwrites part of the acknowledged-size record's slot that
// holds the record of sequence seq, as a torn write would.
func tearAckSlot(t *testing.T, fs vfs.FS, dir string, seq uint64) {
	t.Helper()
	f, err := fs.OpenReadWrite(dir+"/"+AckFile, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("torn"), int64(seq%2)*ackSlot+20); err != nil {
		t.Fatal(err)
	}
}
