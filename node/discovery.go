package node

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
)

// mdnsService is the name nodes announce themselves under on a LAN.
const mdnsService = "asp-node"

// mdnsNotifee connects to nodes found on the LAN.
type mdnsNotifee struct{ n *Node }

func (m mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	if ai.ID == m.n.host.ID() {
		return
	}
	ctx, cancel := context.WithTimeout(m.n.ctx, 10*time.Second)
	defer cancel()
	if err := m.n.host.Connect(ctx, ai); err != nil {
		m.n.log.Debug("mdns peer not reachable", "peer", ai.ID, "err", err)
		return
	}
	m.n.log.Info("found a node on the LAN", "peer", ai.ID)
}

// startMDNS announces the node on the LAN and connects to the nodes it
// finds there (config mdns: true; off by default). TestMDNSInPrivateNetwork
// exercises it in a network namespace whose only interface is loopback.
func (n *Node) startMDNS() error {
	if !n.cfg.MDNS {
		return nil
	}
	svc := mdns.NewMdnsService(n.host.Host(), mdnsService, mdnsNotifee{n})
	if err := svc.Start(); err != nil {
		return err
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		<-n.ctx.Done()
		svc.Close()
	}()
	return nil
}

// watchPeers says plainly in the log when the node has no peers: it then
// cannot reach other organisations or be discovered.
func (n *Node) watchPeers() {
	defer n.wg.Done()
	alone := false
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		peers := len(n.host.Host().Network().Peers())
		switch {
		case peers == 0 && !alone:
			n.log.Warn("no peers: this node is alone on the network; configure bootstrap peers (--bootstrap) or mdns")
			alone = true
		case peers > 0 && alone:
			n.log.Info("connected to the network", "peers", peers)
			alone = false
		}
	}
}
