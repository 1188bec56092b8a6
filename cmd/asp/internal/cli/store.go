package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node"
	"github.com/aspnode/asp/p2p"
)

// homeLedger is a node home's ledger opened by the command line: the store
// itself when no node runs on it, or else a snapshot of it.
type homeLedger struct {
	*ledger.Ledger
	PeerID string
	Origin string
	// Snapshot is true when the ledger is a snapshot of a running node's.
	Snapshot bool

	release func()
}

// Close closes the ledger and removes the snapshot, if any.
func (h *homeLedger) Close() error {
	err := h.Ledger.Close()
	h.release()
	return err
}

// openHomeLedger opens the ledger of the node home dir. A node running on
// it holds the store's lock; then the ledger is opened on a snapshot of the
// store (see snapshotStore). With sign, the ledger can sign checkpoints
// (for export); it is then always a snapshot, so that the command line
// never writes to a node's own store.
func openHomeLedger(home string, sign bool) (*homeLedger, error) {
	key, err := node.LoadIdentity(home)
	if err != nil {
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	h := &homeLedger{PeerID: id.String(), Origin: ledger.OriginFor(id.String()), release: func() {}}
	opts := ledger.Options{Origin: h.Origin, ReadOnly: !sign}
	if sign {
		orgKey, err := p2p.Ed25519Key(key)
		if err != nil {
			return nil, err
		}
		opts.Signer, opts.KeyCertificate, err = ledger.NewCheckpointSigner(orgKey, h.Origin)
		if err != nil {
			return nil, err
		}
	}
	dir := filepath.Join(home, node.LedgerDir)
	if m, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*")); len(m) == 0 {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("no ledger in %s (is it a node home? make one with asp init): %w", home, err)
		}
		return nil, errEmptyLedger
	}

	if !sign {
		lock, err := pebble.LockDirectory(dir, vfs.Default)
		if err == nil {
			// No node runs here: open the store itself, holding its lock
			// throughout so that a node cannot start meanwhile.
			opts.Pebble = func(po *pebble.Options) { po.Lock = lock }
			l, err := ledger.Open(dir, opts)
			if err != nil {
				lock.Close()
				return nil, err
			}
			h.Ledger = l
			h.release = func() { lock.Close() }
			return h, nil
		}
	}
	snap, err := snapshotStore(dir)
	if err != nil {
		return nil, err
	}
	l, err := ledger.Open(snap, opts)
	if err != nil {
		os.RemoveAll(snap)
		return nil, err
	}
	h.Ledger, h.Snapshot = l, true
	h.release = func() { os.RemoveAll(snap) }
	return h, nil
}

// snapshotStore makes a point-in-time copy of the Pebble store in dir,
// which a running node may be writing, and returns its directory (a
// sibling of dir; the caller removes it).
//
// Table and blob files are immutable once written: they are hard-linked
// (copied where links fail). The manifest, its markers, the options and the
// write-ahead logs are copied; a log being appended to may end in a torn
// record, which Pebble ignores as it does after a crash. If the set of files
// or the manifest changed while copying (a flush or compaction ran), the
// copy may be inconsistent and is made again.
func snapshotStore(dir string) (string, error) {
	var lastErr error
	for attempt := 0; attempt < 10; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 50 * time.Millisecond)
		}
		snap, err := os.MkdirTemp(filepath.Dir(dir), ".ledger-snapshot-")
		if err != nil {
			return "", fmt.Errorf("snapshot ledger: %w", err)
		}
		err = copyStore(dir, snap)
		if err == nil {
			return snap, nil
		}
		os.RemoveAll(snap)
		lastErr = err
	}
	return "", fmt.Errorf("snapshot ledger %s (node busy?): %w", dir, lastErr)
}

// errEmptyLedger is returned by openHomeLedger for a node that never ran.
var errEmptyLedger = errors.New("the ledger is empty: the node has not run yet")

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
	// (the node syncs an entry before it counts it).
	order := func(f fileState) int {
		switch {
		case f.name == ledger.AckFile:
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
		if err := copyFile(src, dst); err != nil {
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

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
