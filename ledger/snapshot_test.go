package ledger

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestSnapshotWhileAppending takes snapshots of a ledger while entries are
// appended and checkpoints signed (each advancing the acknowledged-size
// record): with the open ledger's Snapshot (Pebble's checkpoint), and with
// Snapshot on its directory, which finds the store locked and copies it
// live. Each snapshot must open (its acknowledged-size record consistent
// with its store), pass Check, and hold a prefix of the log at least as
// long as what Append had returned before the call. Once the ledger is
// closed, Snapshot on the directory takes the checkpoint and holds it all.
func TestSnapshotWhileAppending(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	l, err := Open(dir, testOptions(t, vfs.Default))
	if err != nil {
		t.Fatal(err)
	}
	var acked atomic.Uint64
	progress := make(chan struct{}, 1)
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		ctx := context.Background()
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if _, err := l.Append(ctx, rec(i)); err != nil {
				done <- fmt.Errorf("append %d: %w", i, err)
				return
			}
			acked.Store(uint64(i + 1))
			if i%40 == 39 {
				if _, err := l.Checkpoint(ctx); err != nil {
					done <- fmt.Errorf("checkpoint at %d: %w", i+1, err)
					return
				}
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		}
	}()

	const rounds = 6
	for round := 0; round < rounds; round++ {
		select {
		case <-progress:
		case err := <-done:
			t.Fatal(err)
		}
		n := acked.Load()
		ack, err := readAck(vfs.Default, dir)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(t.TempDir(), "snap")
		how := "Ledger.Snapshot"
		if round%2 == 0 {
			err = l.Snapshot(dst)
		} else {
			how = "Snapshot (store locked)"
			err = Snapshot(dir, dst)
		}
		if err != nil {
			t.Fatalf("round %d, %s: %v", round, how, err)
		}
		size := checkSnapshot(t, dst, n, ack.size)
		t.Logf("round %d, %s: %d entries acknowledged, record at %d, snapshot holds %d", round, how, n, ack.size, size)
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	total := l.Size()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "snap")
	if err := Snapshot(dir, dst); err != nil {
		t.Fatalf("Snapshot of a closed ledger: %v", err)
	}
	if size := checkSnapshot(t, dst, total, total); size != total {
		t.Fatalf("snapshot of the closed ledger holds %d entries, want %d", size, total)
	}
	// The store itself is untouched and still opens.
	l, err = Open(dir, testOptions(t, vfs.Default))
	if err != nil {
		t.Fatal(err)
	}
	if l.Size() != total {
		t.Fatalf("ledger holds %d entries after the snapshot, want %d", l.Size(), total)
	}
	l.Close()
}

// checkSnapshot opens the snapshot in dst read-only, checks it, and
// returns its size, which must be at least n, with an acknowledged-size
// record at least ack; its entries must be the records appended.
func checkSnapshot(t *testing.T, dst string, n, ack uint64) uint64 {
	t.Helper()
	s, err := Open(dst, Options{Origin: testOrigin(), ReadOnly: true})
	if err != nil {
		t.Fatalf("open snapshot: %v", err)
	}
	defer s.Close()
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("check snapshot: %v", err)
	}
	size := s.Size()
	if size < n {
		t.Fatalf("snapshot holds %d entries, %d were acknowledged before it was taken", size, n)
	}
	rec0, err := readAck(vfs.Default, dst)
	if err != nil {
		t.Fatalf("snapshot's acknowledged-size record: %v", err)
	}
	if rec0.size < ack || rec0.size > size {
		t.Fatalf("snapshot's record acknowledges %d entries: the source's said %d, the snapshot holds %d", rec0.size, ack, size)
	}
	for from := uint64(0); from < size; from += 500 {
		es, err := s.Entries(from, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if !sameRecord(e, rec(int(e.Index))) {
				t.Fatalf("snapshot entry %d is not the record appended", e.Index)
			}
		}
	}
	return size
}

// TestSnapshotRefuses: a snapshot never overwrites; a missing store is an
// error, not an empty snapshot.
func TestSnapshotRefuses(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "db")
	l, err := Open(dir, testOptions(t, vfs.Default))
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 0, 3)
	if err := l.Snapshot(base); err == nil {
		t.Fatal("Ledger.Snapshot wrote into an existing directory")
	}
	l.Close()
	if err := Snapshot(dir, base); err == nil {
		t.Fatal("Snapshot wrote into an existing directory")
	}
	if err := Snapshot(filepath.Join(base, "none"), filepath.Join(base, "snap")); err == nil {
		t.Fatal("Snapshot of a missing store succeeded")
	}
	if err := l.Snapshot(filepath.Join(base, "snap2")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Snapshot of a closed ledger: %v, want ErrClosed", err)
	}
}
