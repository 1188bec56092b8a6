package p2p

import (
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Gater is a libp2p connection gater admitting peers by id: a peer on the
// deny list is refused; otherwise, when the allow list is not empty, only
// peers on it are admitted; with both lists empty every peer is. Inbound
// connections are judged once the handshake has proven the peer id. Apart
// from the lists, a peer the Host cooled off for misbehaving on its streams
// is refused until its cool-off ends. It is safe for concurrent use.
type Gater struct {
	mu    sync.RWMutex
	allow map[peer.ID]struct{} // empty: everyone
	deny  map[peer.ID]struct{}
	// cooling holds peers refused until the time given (see CoolOff);
	// ended ones are dropped by prune.
	cooling map[peer.ID]time.Time
}

var _ connmgr.ConnectionGater = (*Gater)(nil)

// NewGater returns a Gater for the given lists.
func NewGater(allow, deny []peer.ID) *Gater {
	g := &Gater{}
	g.Set(allow, deny)
	return g
}

// ParsePeerIDs decodes peer ids written as strings (base58 or CID form).
func ParsePeerIDs(ids []string) ([]peer.ID, error) {
	out := make([]peer.ID, 0, len(ids))
	for _, s := range ids {
		p, err := peer.Decode(s)
		if err != nil {
			return nil, fmt.Errorf("peer id %q: %w", s, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// Set replaces both lists. Connections already open are not affected; see
// Host.SetAccessLists.
func (g *Gater) Set(allow, deny []peer.ID) {
	a := make(map[peer.ID]struct{}, len(allow))
	for _, p := range allow {
		a[p] = struct{}{}
	}
	d := make(map[peer.ID]struct{}, len(deny))
	for _, p := range deny {
		d[p] = struct{}{}
	}
	g.mu.Lock()
	g.allow, g.deny = a, d
	g.mu.Unlock()
}

// Allowed reports whether p may connect: the lists admit it and it is not
// cooling off.
func (g *Gater) Allowed(p peer.ID) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if until, cooling := g.cooling[p]; cooling && time.Now().Before(until) {
		return false
	}
	return g.allowedLocked(p)
}

// coolOff refuses p until the given time (or later, if already longer). It
// reports whether p was not cooling off before.
func (g *Gater) coolOff(p peer.ID, until time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cooling == nil {
		g.cooling = make(map[peer.ID]time.Time)
	}
	was := g.cooling[p]
	if until.After(was) {
		g.cooling[p] = until
	}
	return !time.Now().Before(was)
}

// CoolingOff reports whether p is refused for misbehaving on its streams.
func (g *Gater) CoolingOff(p peer.ID) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	until, ok := g.cooling[p]
	return ok && time.Now().Before(until)
}

// prune drops cool-offs that have ended.
func (g *Gater) prune(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for p, until := range g.cooling {
		if !now.Before(until) {
			delete(g.cooling, p)
		}
	}
}

// allowedLocked judges p by the lists. REQUIRES: g.mu (read).
func (g *Gater) allowedLocked(p peer.ID) bool {
	if _, denied := g.deny[p]; denied {
		return false
	}
	if len(g.allow) == 0 {
		return true
	}
	_, ok := g.allow[p]
	return ok
}

// InterceptPeerDial implements connmgr.ConnectionGater.
func (g *Gater) InterceptPeerDial(p peer.ID) bool { return g.Allowed(p) }

// InterceptAddrDial implements connmgr.ConnectionGater.
func (g *Gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return g.Allowed(p) }

// InterceptAccept implements connmgr.ConnectionGater; the peer is not known
// yet, so every connection proceeds to the handshake.
func (g *Gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured implements connmgr.ConnectionGater.
func (g *Gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return g.Allowed(p)
}

// InterceptUpgraded implements connmgr.ConnectionGater.
func (g *Gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
