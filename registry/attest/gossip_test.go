package attest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aspnode/asp/protocol"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// testNow is the clock of the gossip tests: an hour after the fixture
// deal's attestations.
var testNow = t0.Add(2 * time.Hour)

// chain starts n nodes connected in a line, 0-1-…-(n-1), so that most
// deliveries take several hops, and waits until each knows its neighbours
// on the topic.
func chain(t *testing.T, n int, cfg Config) []*node {
	t.Helper()
	if cfg.Clock == nil {
		cfg.Clock = fixedClock(testNow)
	}
	nodes := make([]*node, n)
	for i := range nodes {
		nodes[i] = newNode(t, cfg)
	}
	for i, nd := range nodes {
		var nb []peer.ID
		if i > 0 {
			nb = append(nb, nodes[i-1].h.ID())
		}
		if i < n-1 {
			nb = append(nb, nodes[i+1].h.ID())
		}
		nd.only(t, nb...)
	}
	for i := 1; i < n; i++ {
		connect(t, nodes[i-1].h, nodes[i].h)
	}
	waitMesh(t, nodes)
	return nodes
}

func publish(t *testing.T, n *node, a *Attestation) [32]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.svc.Publish(ctx, a); err != nil {
		t.Fatal(err)
	}
	h, err := a.Hash()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func awaitAll(t *testing.T, nodes []*node, h [32]byte) {
	t.Helper()
	for i, n := range nodes {
		waitFor(t, fmt.Sprintf("node %d to deliver %x", i, h[:4]), func() bool { return n.count(h) > 0 })
	}
}

func TestGossipReachesAll(t *testing.T) {
	f := newFixture(t, "reach")
	nodes := chain(t, 5, Config{})

	a := f.attest(t, Fulfilled, t0.Add(time.Hour))
	h := publish(t, nodes[0], a)
	awaitAll(t, nodes, h)

	b, err := FromCommitment(f.c, Fulfilled, t0.Add(time.Hour), f.vendor.AgentKey, f.vendorCert)
	if err != nil {
		t.Fatal(err)
	}
	hb := publish(t, nodes[4], b)
	awaitAll(t, nodes, hb)

	for i, n := range nodes {
		for _, d := range n.deliveries() {
			want := nodes[0]
			if d.Hash == hb {
				want = nodes[4]
			}
			if d.From != want.h.ID() || d.Local != (n == want) {
				t.Errorf("node %d: delivery from %s (local %v), published by %s", i, d.From, d.Local, want.h.ID())
			}
			if err := d.Attestation.Verify(testNow); err != nil {
				t.Errorf("node %d: delivered attestation does not verify: %v", i, err)
			}
			if d.Commitment == nil || d.Commitment.ID != f.c.ID || d.Commitment.Terms.UnitPrice != f.c.Terms.UnitPrice {
				t.Errorf("node %d: delivered with commitment %+v", i, d.Commitment)
			}
		}
		if n.count(h) != 1 || n.count(hb) != 1 {
			t.Errorf("node %d: %d and %d deliveries, want 1 each", i, n.count(h), n.count(hb))
		}
		if i > 0 && n.validations(t, ResultAccept, "ok") < 2 {
			t.Errorf("node %d: %d accepted", i, n.validations(t, ResultAccept, "ok"))
		}
	}
}

// forgeries returns encoded attestations that every validator must reject,
// by the reason it must give.
func forgeries(t *testing.T, f *fixture) map[string][]byte {
	at := t0.Add(90 * time.Minute)
	out := map[string][]byte{}

	a := f.attest(t, Fulfilled, at)
	a.Outcome = Breached // changed after signing
	out["forged"] = mustEncode(t, a)

	a = f.attest(t, Fulfilled, at) // an outsider with genuine evidence
	resign(t, a, f.outsider.AgentKey, f.outsiderCert)
	out["not_party"] = mustEncode(t, a)

	// A commitment with a tampered term, signed again by the offerer: the
	// acceptance no longer names it.
	b, err := protocol.EncodeEnvelope(f.c.Offer)
	if err != nil {
		t.Fatal(err)
	}
	e, err := protocol.DecodeEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	pb := e.Body.(*protocol.ProposeBody)
	terms := *pb.Terms
	terms.Quantity = "1"
	pb.Terms = &terms
	if err := e.Sign(f.buyer.AgentKey); err != nil {
		t.Fatal(err)
	}
	a = f.attest(t, Fulfilled, at)
	if a.Offer, err = protocol.EncodeEnvelope(e); err != nil {
		t.Fatal(err)
	}
	resign(t, a, f.buyer.AgentKey, f.buyerCert)
	out["mismatch"] = mustEncode(t, a)

	// The buyer's attestation without the vendor organisation's receipt:
	// nothing shows that the vendor's side ever formed the commitment.
	a = f.attest(t, Breached, at)
	a.Receipts = a.Receipts[:1]
	resign(t, a, f.buyer.AgentKey, f.buyerCert)
	out["unreceipted"] = mustEncode(t, a)

	out["malformed"] = []byte("not an attestation")
	return out
}

func TestGossipRejectsForgeriesIgnoresStale(t *testing.T) {
	f := newFixture(t, "forged")
	nodes := chain(t, 5, Config{Horizon: time.Hour, MaxSkew: time.Minute})
	// The forger talks to nodes 0 and 2 only.
	forger := newRawPeer(t, nodes[0], nodes[2])

	bad := forgeries(t, f)
	for _, b := range bad {
		forger.publish(t, b)
	}
	stale := map[string][]byte{
		"old":    mustEncode(t, f.attest(t, Fulfilled, testNow.Add(-time.Hour-time.Millisecond))),
		"future": mustEncode(t, f.attest(t, Fulfilled, testNow.Add(2*time.Minute))),
	}
	for _, b := range stale {
		forger.publish(t, b)
	}
	s := f.attest(t, Fulfilled, t0.Add(90*time.Minute))
	sh, _ := s.Hash()
	forger.publish(t, mustEncode(t, s))
	awaitAll(t, nodes, sh)
	for _, i := range []int{0, 2} {
		waitFor(t, fmt.Sprintf("node %d to judge the forger's messages", i), func() bool {
			return nodes[i].validations(t, ResultReject, "") == len(bad) &&
				nodes[i].validations(t, ResultIgnore, "stale") == len(stale)
		})
		for reason := range bad {
			if got := nodes[i].validations(t, ResultReject, reason); got != 1 {
				t.Errorf("node %d: %d rejections for %s, want 1", i, got, reason)
			}
		}
	}
	for i, n := range nodes {
		if got := n.deliveries(); len(got) != 1 || got[0].Hash != sh {
			t.Errorf("node %d delivered %d attestations, want only the good one", i, len(got))
		}
		if i != 0 && i != 2 {
			// Neither rejected nor ignored messages are forwarded.
			if r := n.validations(t, ResultReject, "") + n.validations(t, ResultIgnore, ""); r != 0 {
				t.Errorf("node %d judged %d of the forger's bad messages, want 0", i, r)
			}
		}
	}
}

func TestGossipDuplicatesDeliveredOnce(t *testing.T) {
	f := newFixture(t, "dup")
	nodes := chain(t, 5, Config{})
	echo := newRawPeer(t, nodes[4])

	// One after the other: published by node 0, then echoed by another
	// peer under a new GossipSub message id.
	a := f.attest(t, Fulfilled, t0.Add(time.Hour))
	h := publish(t, nodes[0], a)
	awaitAll(t, nodes, h)
	echo.publish(t, mustEncode(t, a))
	waitFor(t, "node 4 to ignore the echo", func() bool {
		return nodes[4].validations(t, ResultIgnore, "duplicate") == 1
	})
	ctx := context.Background()
	if err := nodes[2].svc.Publish(ctx, a); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("Publish of a seen attestation = %v, want ErrDuplicate", err)
	}

	// At once, from both ends of the chain.
	b := f.attest(t, Breached, t0.Add(time.Hour+time.Second))
	hb, _ := b.Hash()
	done := make(chan error, 1)
	go func() { done <- nodes[0].svc.Publish(ctx, b) }()
	echo.publish(t, mustEncode(t, b))
	if err := <-done; err != nil && !errors.Is(err, ErrDuplicate) {
		t.Fatal(err)
	}
	awaitAll(t, nodes, hb)

	// A last one, so that anything still in flight has arrived.
	c := f.attest(t, Fulfilled, t0.Add(time.Hour+2*time.Second))
	awaitAll(t, nodes, publish(t, nodes[2], c))
	for i, n := range nodes {
		if n.count(h) != 1 || n.count(hb) != 1 {
			t.Errorf("node %d: delivered %d and %d times, want once each", i, n.count(h), n.count(hb))
		}
		if r := n.validations(t, ResultReject, ""); r != 0 {
			t.Errorf("node %d rejected %d duplicates; duplicates are ignored", i, r)
		}
	}
}

func TestGossipRateLimitsFlooder(t *testing.T) {
	const burst, flood = 3, 20
	f := newFixture(t, "flood")
	// The clock stands still, so buckets do not refill during the test.
	nodes := chain(t, 3, Config{Rate: rate.Every(time.Hour), Burst: burst})
	flooder := newRawPeer(t, nodes[0])

	for i := range flood {
		flooder.publish(t, mustEncode(t, f.attest(t, Fulfilled, t0.Add(time.Hour+time.Duration(i)*time.Millisecond))))
	}
	waitFor(t, "node 0 to judge the flood", func() bool {
		return nodes[0].validations(t, ResultAccept, "")+nodes[0].validations(t, ResultIgnore, "") == flood
	})
	if got := nodes[0].validations(t, ResultIgnore, "rate_limited"); got != flood-burst {
		t.Errorf("node 0 ignored %d as rate limited, want %d", got, flood-burst)
	}
	if got := nodes[0].validations(t, ResultReject, ""); got != 0 {
		t.Errorf("node 0 rejected %d: a flood of valid attestations is ignored, not rejected", got)
	}
	// Our own publications are not limited, and still get through.
	s := f.attest(t, Cancelled, t0.Add(time.Hour))
	awaitAll(t, nodes, publish(t, nodes[0], s))
	for i, n := range nodes {
		waitFor(t, fmt.Sprintf("node %d to deliver the burst", i), func() bool { return len(n.deliveries()) == burst+1 })
	}
	for i, n := range nodes {
		if got := len(n.deliveries()); got != burst+1 {
			t.Errorf("node %d delivered %d, want %d", i, got, burst+1)
		}
	}
}
