package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

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
// store (ledger.Snapshot). With sign, the ledger can sign checkpoints
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
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".ledger-snapshot-")
	if err != nil {
		return nil, fmt.Errorf("snapshot ledger: %w", err)
	}
	snap := filepath.Join(tmp, node.LedgerDir)
	if err := ledger.Snapshot(dir, snap); err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	l, err := ledger.Open(snap, opts)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	h.Ledger, h.Snapshot = l, true
	h.release = func() { os.RemoveAll(tmp) }
	return h, nil
}

// errEmptyLedger is returned by openHomeLedger for a node that never ran.
var errEmptyLedger = errors.New("the ledger is empty: the node has not run yet")
