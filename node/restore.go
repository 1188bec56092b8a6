package node

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// A restored home (asp restore) holds DIR/restored until it first starts:
// the addresses, with /p2p/<its own peer id>, where the original node ran
// or was configured to listen. Before the restored node starts, a
// throwaway libp2p host with a random key dials them: a node that
// completes the handshake as our own peer id there is the original, alive,
// and the start is refused. Two nodes with one identity would fork the
// organisation's log.
//
// Limits: an original that moved to addresses the backup did not record
// is not found (the check does not search the DHT); stop the original
// before restoring when you can.

// ErrIdentityInUse is returned, wrapped, by Start on a restored home whose
// original node answers on the network.
var ErrIdentityInUse = errors.New("identity in use")

// originalDialTimeout bounds the check of each recorded address.
const originalDialTimeout = 5 * time.Second

// WriteRestoredMarker records the original's addresses in a restored home.
func WriteRestoredMarker(home string, addrs []string) error {
	if addrs == nil {
		addrs = []string{}
	}
	b, err := json.Marshal(addrs)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(home, RestoredFile), b, 0o600)
}

// checkOriginalGone refuses to start a restored home while its original
// answers at a recorded address; once it does not, the marker goes.
func (n *Node) checkOriginalGone(ctx context.Context) error {
	path := filepath.Join(n.cfg.Home, RestoredFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var addrs []string
	if err := json.Unmarshal(b, &addrs); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	self, err := peer.IDFromPrivateKey(n.key)
	if err != nil {
		return err
	}
	if live, err := dialIdentity(ctx, self, addrs); err != nil {
		return err
	} else if live != "" {
		return fmt.Errorf("%w: this home was restored from a backup and its original node still runs as %s at %s; stop the original first (two nodes with one identity would fork its ledger)", ErrIdentityInUse, self, live)
	}
	return os.Remove(path)
}

// dialIdentity dials id at each address from a throwaway host and returns
// the first address where the handshake proves id, or "".
func dialIdentity(ctx context.Context, id peer.ID, addrs []string) (string, error) {
	var mas []ma.Multiaddr
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			continue
		}
		ai, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil || ai.ID != id {
			continue
		}
		mas = append(mas, ai.Addrs...)
	}
	if len(mas) == 0 {
		return "", nil
	}
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return "", err
	}
	h, err := libp2p.New(libp2p.Identity(key), libp2p.NoListenAddrs, libp2p.DisableRelay())
	if err != nil {
		return "", fmt.Errorf("check the original node: %w", err)
	}
	defer h.Close()
	for _, a := range mas {
		dctx, cancel := context.WithTimeout(ctx, originalDialTimeout)
		err := h.Connect(dctx, peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{a}})
		cancel()
		if err == nil {
			return a.String(), nil
		}
		h.Peerstore().ClearAddrs(id)
	}
	return "", nil
}
