package node

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/libp2p/go-libp2p/core/crypto"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/aspnode/asp/internal/privfile"
	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/p2p"
	"github.com/aspnode/asp/protocol"
)

// Backups (docs/operating.md). A backup is a directory, archived by the
// command line:
//
//	identity.key, admin.token, config.yaml   copies of the home's
//	ledger/      a snapshot of the ledger (consistent: Pebble's checkpoint,
//	             or a copy under the home's lock when no node runs)
//	state/       a snapshot of the secret store (agent keys, token hashes)
//	checkpoint   the signed checkpoint of exactly the snapshot's size
//	backup.json  the manifest (BackupManifest)
//
// Adversary: a backup holds the identity key and agent keys, so whoever
// reads it can act as the organisation: it is written 0600 under a 0700
// directory, and its keeper must guard it as the home itself. A tampered
// ledger in a backup is caught by asp restore, which verifies the whole
// ledger (hash chain, Merkle tree, every signed checkpoint, every
// signature) before the home can start. A restored home started while the
// original runs would fork the organisation's log (two histories signed by
// one key): the restored home refuses to start while a node answering as
// its identity is reachable at the addresses the backup recorded.
const (
	BackupsDir             = "backups"
	BackupManifestFile     = "backup.json"
	BackupCheckpointFile   = "checkpoint"
	RestoredFile           = "restored" // in a restored home until its first start
	backupCheckpointSignTO = 30 * time.Second
)

// BackupManifest describes a backup.
type BackupManifest struct {
	PeerID  string    `json:"peerId"`
	Org     string    `json:"org"`
	Version string    `json:"version"`
	Time    time.Time `json:"time"`
	// Size is the number of ledger entries in the backup.
	Size uint64 `json:"size"`
	// Running is true when the backup was taken from a running node.
	Running bool `json:"running"`
	// Addrs are the addresses (with /p2p/) the original node had or was
	// configured with: a restored home checks none answers as its
	// identity before it starts.
	Addrs []string `json:"addrs,omitempty"`
}

// Backup implements api.Backuper: a consistent backup of the running node
// in a new directory under DIR/backups.
func (n *Node) Backup(ctx context.Context) (api.BackupResult, error) {
	if n.opts.fs != nil && n.opts.fs != vfs.Default {
		return api.BackupResult{}, errorf(protocol.CodeUnavailable, "backups need the node's stores on the operating system's file system")
	}
	now := n.opts.clock().UTC()
	dir, err := newBackupDir(n.cfg.Home, now)
	if err != nil {
		return api.BackupResult{}, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	if err := n.led.Snapshot(filepath.Join(dir, LedgerDir)); err != nil {
		return api.BackupResult{}, err
	}
	if err := n.agents.secrets.db.Checkpoint(filepath.Join(dir, StateDir), pebble.WithFlushedWAL()); err != nil {
		return api.BackupResult{}, fmt.Errorf("snapshot secret store: %w", err)
	}
	var addrs []string
	if n.host != nil {
		for _, a := range n.host.P2PAddrs() {
			addrs = append(addrs, a.String())
		}
	}
	res, err := finishBackup(ctx, n.cfg, dir, n.key, BackupManifest{
		PeerID: n.peerID, Org: n.cfg.Org, Version: Version, Time: now, Running: true, Addrs: addrs,
	})
	if err != nil {
		return api.BackupResult{}, err
	}
	n.ops.mu.Lock()
	n.ops.lastBackup = now
	n.ops.mu.Unlock()
	ok = true
	return res, nil
}

// BackupHome backs up a home no node runs on, holding the home's lock
// meanwhile (a node starting on it is refused until it is done).
func BackupHome(ctx context.Context, home string) (api.BackupResult, error) {
	cfg, err := LoadConfig(home)
	if err != nil {
		return api.BackupResult{}, err
	}
	key, err := LoadIdentity(home)
	if err != nil {
		return api.BackupResult{}, err
	}
	lock, err := lockHome(home)
	if err != nil {
		return api.BackupResult{}, err
	}
	defer lock.release()
	now := time.Now().UTC()
	dir, err := newBackupDir(home, now)
	if err != nil {
		return api.BackupResult{}, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	for _, d := range []string{LedgerDir, StateDir} {
		if err := ledger.Snapshot(filepath.Join(home, d), filepath.Join(dir, d)); err != nil {
			return api.BackupResult{}, fmt.Errorf("backup %s: %w", d, err)
		}
	}
	orgKey, err := p2p.Ed25519Key(key)
	if err != nil {
		return api.BackupResult{}, err
	}
	peerID := protocol.PeerIDFromPublicKey(orgKey.Public().(ed25519.PublicKey))
	var addrs []string
	for _, l := range cfg.Listen {
		if a, err := ma.NewMultiaddr(l); err == nil && !strings.Contains(l, "/tcp/0") && !strings.Contains(l, "/udp/0/") {
			addrs = append(addrs, a.String()+"/p2p/"+peerID)
		}
	}
	res, err := finishBackup(ctx, cfg, dir, key, BackupManifest{
		PeerID: peerID, Org: cfg.Org, Version: Version, Time: now, Addrs: addrs,
	})
	if err != nil {
		return api.BackupResult{}, err
	}
	ok = true
	return res, nil
}

func newBackupDir(home string, now time.Time) (string, error) {
	parent := filepath.Join(home, BackupsDir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	return os.MkdirTemp(parent, "backup-"+now.Format("20060102T150405Z")+"-")
}

// finishBackup copies the home's files into dir, signs the checkpoint of
// the ledger snapshot's size and writes the manifest.
func finishBackup(ctx context.Context, cfg Config, dir string, key crypto.PrivKey, m BackupManifest) (api.BackupResult, error) {
	for _, f := range []string{IdentityFile, AdminTokenFile, ConfigFile} {
		if err := privfile.Copy(filepath.Join(cfg.Home, f), filepath.Join(dir, f)); err != nil {
			return api.BackupResult{}, fmt.Errorf("backup: %w", err)
		}
	}
	orgKey, err := p2p.Ed25519Key(key)
	if err != nil {
		return api.BackupResult{}, err
	}
	origin := ledger.OriginFor(m.PeerID)
	signer, cert, err := ledger.NewCheckpointSigner(orgKey, origin)
	if err != nil {
		return api.BackupResult{}, err
	}
	l, err := ledger.Open(filepath.Join(dir, LedgerDir), ledger.Options{Origin: origin, Signer: signer, KeyCertificate: cert})
	if err != nil {
		return api.BackupResult{}, fmt.Errorf("backup: open the ledger snapshot: %w", err)
	}
	m.Size = l.Size()
	var cp []byte
	if m.Size > 0 {
		sctx, cancel := context.WithTimeout(ctx, backupCheckpointSignTO)
		cp, err = l.Checkpoint(sctx)
		cancel()
	}
	if cerr := l.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return api.BackupResult{}, fmt.Errorf("backup: sign the checkpoint: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, BackupCheckpointFile), cp, 0o600); err != nil {
		return api.BackupResult{}, err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return api.BackupResult{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, BackupManifestFile), append(b, '\n'), 0o600); err != nil {
		return api.BackupResult{}, err
	}
	return api.BackupResult{Dir: dir, PeerID: m.PeerID, Size: m.Size, Checkpoint: string(cp), Time: m.Time}, nil
}

// ReadBackupManifest reads DIR/backup.json.
func ReadBackupManifest(dir string) (BackupManifest, error) {
	var m BackupManifest
	b, err := os.ReadFile(filepath.Join(dir, BackupManifestFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return m, fmt.Errorf("not a backup: no %s", BackupManifestFile)
		}
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: %w", BackupManifestFile, err)
	}
	return m, nil
}

var _ api.Backuper = (*Node)(nil)
