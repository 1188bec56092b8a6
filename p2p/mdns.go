package p2p

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// mdnsConnectTimeout bounds the dials to a node that mDNS found.
const mdnsConnectTimeout = 10 * time.Second

// mdnsDials is how many times a node mDNS found is dialled. Two hosts that
// find each other at once dial each other at once, and both dials can fail
// (each side's handshake cut by the other's); the mDNS service reports a
// node only once per record, so a failed dial is tried again after a
// random wait (past the swarm's dial backoff), while neither side is
// connected.
const mdnsDials = 4

// mdnsNotifee connects the host to the nodes mDNS finds on the LAN (see
// WithMDNS).
//
// Anyone on the LAN can announce any peer id and addresses: an announcement
// is only a hint to dial. The connection that follows is authenticated
// (Noise or TLS prove the peer id) and passes the gater like any other, so a
// forged announcement yields at most a failed dial, logged at debug level.
type mdnsNotifee struct{ h *Host }

// HandlePeerFound is called by the mDNS service, each time on a goroutine of
// its own; Close waits for the calls in progress.
func (m mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	h := m.h
	if ai.ID == h.ID() {
		return
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.bg.Add(1)
	h.mu.Unlock()
	defer h.bg.Done()

	ctx, cancel := context.WithTimeout(h.ctx, mdnsConnectTimeout)
	defer cancel()
	wait := 200 * time.Millisecond
	for dial := 1; ; dial++ {
		dctx := ctx
		if dial > 1 {
			// The first failure put the address in the swarm's dial
			// backoff, which would refuse every retry at once.
			dctx = network.WithForceDirectDial(ctx, "mdns: dial again after a failed dial")
		}
		err := h.Connect(dctx, ai)
		if err == nil || h.basic.Network().Connectedness(ai.ID) == network.Connected {
			h.cfg.logger.Info("found a node on the LAN", "peer", ai.ID)
			return
		}
		if dial == mdnsDials {
			h.cfg.logger.Debug("mdns peer not reachable", "peer", ai.ID, "err", err)
			return
		}
		t := time.NewTimer(wait + rand.N(wait))
		select {
		case <-ctx.Done():
			t.Stop()
			h.cfg.logger.Debug("mdns peer not reachable", "peer", ai.ID, "err", err)
			return
		case <-t.C:
		}
		wait *= 2
	}
}
