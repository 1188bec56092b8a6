package attest

import (
	"testing"
	"time"

	"github.com/aspnode/asp/p2p"
	"github.com/libp2p/go-libp2p/core/peer"
)

// A peer whose application-specific score (from Service.AppScore) is below
// the graylist threshold is not heard at all; raised again, it is.
func TestAppScoreGraylists(t *testing.T) {
	f := newFixture(t, "graylist")
	params, thresholds := PeerScoreParams()
	a := newNode(t, Config{Clock: fixedClock(testNow)}, p2p.WithPeerScore(params, thresholds))
	b := newNode(t, Config{Clock: fixedClock(testNow)})
	a.only(t, b.h.ID())
	b.only(t, a.h.ID())
	connect(t, a.h, b.h)
	waitMesh(t, []*node{a, b})
	if err := a.h.SetAppSpecificScore(a.svc.AppScore); err != nil {
		t.Fatal(err)
	}
	raw := newRawPeer(t, a)
	a.svc.SetAppScore(func(p peer.ID) float64 {
		if p == raw.h.ID() {
			return 2 * GraylistThreshold
		}
		return 0
	})

	x := f.attest(t, Fulfilled, t0.Add(time.Hour))
	hx, _ := x.Hash()
	raw.publish(t, mustEncode(t, x))
	// b's publication reaches a: a hears its other peers.
	y := f.attest(t, Breached, t0.Add(time.Hour))
	awaitAll(t, []*node{a, b}, publish(t, b, y))

	// x reached a; once a's event loop has moved on (ListPeers is a
	// round trip through it), it has dropped x. Then lift the score.
	waitFor(t, "x to reach a", func() bool { return a.mesh.received(hx) })
	_ = a.h.PubSub().ListPeers(Topic)
	a.svc.SetAppScore(nil)
	z := f.attest(t, Cancelled, t0.Add(time.Hour))
	raw.publish(t, mustEncode(t, z))
	hz, _ := z.Hash()
	waitFor(t, "a to deliver raw's next message", func() bool { return a.count(hz) == 1 })
	if a.count(hx) != 0 {
		t.Fatal("a delivered a message from a graylisted peer")
	}
	if got := a.validations(t, ResultAccept, ""); got != 2 {
		t.Fatalf("a validated %d messages, want 2 (graylisted ones are not even validated)", got)
	}
}
