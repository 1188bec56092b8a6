package node

import "time"

// mdnsService is the name nodes announce themselves under on a LAN.
const mdnsService = "asp-node"

// mdnsName is the service name for p2p.Config.MDNS: mdnsService when the
// configuration turns LAN discovery on (mdns: true; off by default), else
// empty. TestMDNSInPrivateNetwork exercises it in a network namespace whose
// only interface is loopback.
func (n *Node) mdnsName() string {
	if !n.cfg.MDNS {
		return ""
	}
	return mdnsService
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
