package p2p

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// mdnsConnectTimeout bounds the dial to a node that mDNS found.
const mdnsConnectTimeout = 10 * time.Second

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
	if err := h.Connect(ctx, ai); err != nil {
		h.cfg.logger.Debug("mdns peer not reachable", "peer", ai.ID, "err", err)
		return
	}
	h.cfg.logger.Info("found a node on the LAN", "peer", ai.ID)
}
