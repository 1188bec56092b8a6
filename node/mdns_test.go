package node

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/aspnode/asp/internal/netnstest"
	"github.com/libp2p/go-libp2p/core/network"
)

// TestMDNSInPrivateNetwork checks LAN discovery with mDNS: two nodes with
// mdns: true and no bootstrap peers find each other, connect and close the
// seed deal. mDNS multicasts on every interface, so the test runs the nodes
// in a network namespace of their own whose only interface is loopback
// (netnstest, which needs root): nothing leaves the machine. Where that
// namespace cannot be made, the test is skipped and says why.
func TestMDNSInPrivateNetwork(t *testing.T) {
	if !netnstest.Run(t) {
		return
	}
	dir := t.TempDir()
	withMDNS := func(c *Config) { c.MDNS = true; c.Bootstrap = nil }
	a := startNodeWith(t, filepath.Join(dir, "buyer-org"), withMDNS)
	b := startNodeWith(t, filepath.Join(dir, "vendor-org"), withMDNS)
	t.Cleanup(func() { a.Close(); b.Close() })

	deadline := time.Now().Add(30 * time.Second)
	for a.host.Host().Network().Connectedness(b.host.ID()) != network.Connected {
		if time.Now().After(deadline) {
			t.Fatal("the two nodes did not find each other over mDNS within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("connected over mDNS after %v", 30*time.Second-time.Until(deadline))

	p := withAgents(t, a, b)
	id := seedDeal(t, p)
	awaitActive(t, a, id)
	awaitActive(t, b, id)
}
