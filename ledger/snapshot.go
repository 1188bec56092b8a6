package ledger

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aspnode/asp/internal/privfile"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Snapshots: a point-in-time copy of a ledger directory (the Pebble store
// and the acknowledged-size record beside it) that opens as a ledger of its
// own, for reading, checking or exporting a ledger that is in use.
//
// The copy must hold every entry the acknowledged-size record vouches for,
// or it would open as rolled back (acked.go). The record is therefore read
// before the store is copied: the ledger only ever advances the record to
// entries already synced, so the store copied afterwards holds at least
// those.

// Snapshot writes a snapshot of the open ledger to dst, which must not
// exist, with Pebble's checkpoint (table files hard-linked where the file
// system allows), while appends go on. The snapshot holds every entry
// Append returned before the call, and opens as a ledger with the same
// origin. A read-only ledger cannot take a checkpoint (Pebble writes none
// of its own files when read-only): snapshot its directory with Snapshot
// once it is closed.
func (l *Ledger) Snapshot(dst string) (err error) {
	if l.opts.ReadOnly {
		return errors.New("snapshot ledger: the ledger is read-only (use Snapshot on its directory)")
	}
	if err := l.rlock(); err != nil {
		return err
	}
	defer l.runlock()
	if l.broken != nil {
		return fmt.Errorf("snapshot ledger: %w", l.broken)
	}
	var rec ackRecord
	if l.ack != nil {
		l.ack.mu.Lock()
		rec = l.ack.cur
		l.ack.mu.Unlock()
	}
	func() {
		defer recoverFatal(&err)
		err = l.db.Checkpoint(dst, pebble.WithFlushedWAL())
	}()
	if err != nil {
		return fmt.Errorf("snapshot ledger: %w", err)
	}
	if l.ack != nil {
		a, err := createAck(l.opts.FS, dst, rec.size, rec.root)
		if err != nil {
			l.opts.FS.RemoveAll(dst)
			return fmt.Errorf("snapshot ledger: %w", err)
		}
		a.close()
	}
	return nil
}

// Snapshot writes a snapshot of the ledger stored in dir (on the real file
// system) to dst, which must not exist, without writing to dir; for a
// ledger that another process, such as a running node, may hold open.
// Only the process holding a store's lock can take Pebble's checkpoint,
// which also needs the store open for writing. So where no process holds
// the store, Snapshot takes its lock and copies the files, which nothing
// changes meanwhile. Where a process holds it, the files are copied while
// it writes them (see copyLive), which is consistent because Pebble never
// rewrites a table or blob file, only appends to its logs, and replaces
// the manifest only through a flush or compaction, which the copy detects
// and retries.
func Snapshot(dir, dst string) error {
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("snapshot ledger: %w", err)
	}
	lock, err := pebble.LockDirectory(dir, vfs.Default)
	if err != nil {
		return copyLive(dir, dst)
	}
	defer lock.Close()
	if err := os.Mkdir(dst, 0o700); err != nil {
		return fmt.Errorf("snapshot ledger: %w", err)
	}
	if err := copyStore(dir, dst); err != nil {
		os.RemoveAll(dst)
		return fmt.Errorf("snapshot ledger: %w", err)
	}
	return nil
}

// copyLive copies the store in dir, which another process may be writing,
// to dst, retrying while flushes or compactions change it underneath.
//
// Table and blob files are immutable once written: they are hard-linked
// (copied where links fail). The manifest, its markers, the options and the
// write-ahead logs are copied; a log being appended to may end in a torn
// record, which Pebble ignores as it does after a crash. If the set of files
// or the manifest changed while copying (a flush or compaction ran), the
// copy may be inconsistent and is made again.
func copyLive(dir, dst string) error {
	var lastErr error
	for attempt := 0; attempt < 10; attempt++ {
		if attempt > 0 {
			// Back off for the writer's flush or compaction to finish.
			time.Sleep(time.Duration(attempt) * 50 * time.Millisecond)
		}
		if err := os.Mkdir(dst, 0o700); err != nil {
			return fmt.Errorf("snapshot ledger: %w", err)
		}
		err := copyStore(dir, dst)
		if err == nil {
			return nil
		}
		os.RemoveAll(dst)
		lastErr = err
	}
	return fmt.Errorf("snapshot ledger %s (busy?): %w", dir, lastErr)
}

// errStoreChanged means the store changed while it was copied.
var errStoreChanged = errors.New("store changed while copying")

type fileState struct {
	name string
	size int64
}

func listStore(dir string) ([]fileState, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []fileState
	for _, e := range ents {
		if !e.Type().IsRegular() || e.Name() == "LOCK" {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, err
		}
		out = append(out, fileState{e.Name(), fi.Size()})
	}
	return out, nil
}

// immutable reports whether a Pebble file never changes once written.
func immutable(name string) bool {
	return strings.HasSuffix(name, ".sst") || strings.HasSuffix(name, ".blob")
}

// isLog reports whether a file is a write-ahead log, which only grows.
func isLog(name string) bool { return strings.HasSuffix(name, ".log") }

func copyStore(dir, snap string) error {
	before, err := listStore(dir)
	if err != nil {
		return err
	}
	// The acknowledged-size record first, then manifest and markers,
	// tables next, logs last: the logs then hold at least everything the
	// copied manifest does not, and every entry the copied record counts
	// (the ledger syncs an entry before it counts it).
	order := func(f fileState) int {
		switch {
		case f.name == AckFile:
			return -1
		case immutable(f.name):
			return 1
		case isLog(f.name):
			return 2
		default:
			return 0
		}
	}
	files := slices.Clone(before)
	slices.SortStableFunc(files, func(a, b fileState) int { return order(a) - order(b) })
	for _, f := range files {
		src, dst := filepath.Join(dir, f.name), filepath.Join(snap, f.name)
		if immutable(f.name) {
			if err := os.Link(src, dst); err == nil {
				continue
			}
		}
		if err := privfile.Copy(src, dst); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return errStoreChanged
			}
			return err
		}
	}
	after, err := listStore(dir)
	if err != nil {
		return err
	}
	// Logs may grow meanwhile (their tails are torn records at worst);
	// anything else changing means a flush or compaction ran.
	if len(after) != len(before) {
		return errStoreChanged
	}
	for i := range before {
		if before[i].name != after[i].name || (before[i].size != after[i].size && !isLog(before[i].name)) {
			return errStoreChanged
		}
	}
	return nil
}
