package registry

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aspnode/asp/protocol"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestNewRefusesBadConfig(t *testing.T) {
	n := newTestNode(t, netOptions{})
	defer n.close()
	if _, err := New(Config{Host: n.h, Routing: n.d}); err == nil {
		t.Error("New without a key succeeded")
	}
	if _, err := New(Config{Host: n.h, Routing: n.d, Key: seedKey(7)}); err == nil {
		t.Error("New with another peer's key succeeded")
	}
	if _, err := New(Config{Routing: n.d, Key: n.key}); err == nil {
		t.Error("New without a host succeeded")
	}
}

// A node with no peers publishes locally, says the card is not announced,
// answers discovery from its own agents flagged partial, and announces
// once it has peers (Run retries).
func TestLonelyNodeThenJoins(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := func(c *Config) { c.RetryInterval = 50 * time.Millisecond }
	lone := newTestNode(t, netOptions{configure: cfg})
	defer lone.close()
	c, err := lone.r.Publish(ctx, Agent{Name: "solo", Capabilities: []string{"energy.solar"}, PublicKey: agentKey(t)})
	if !errors.Is(err, ErrNotAnnounced) || c == nil {
		t.Fatalf("Publish with no peers = %v, %v; want the card and ErrNotAnnounced", c, err)
	}
	if got, ok := lone.r.Card(c.AgentID); !ok || got.Version != c.Version {
		t.Fatal("card not kept locally")
	}
	res, err := lone.r.Discover(ctx, "energy", 0, 0)
	if err != nil || len(res.Agents) != 1 || res.Agents[0].Source != SourceLocal || !res.Partial {
		t.Fatalf("lonely Discover = %+v, %v", res, err)
	}

	nodes := newTestNet(t, 3, netOptions{})
	go func() { _ = lone.r.Run(ctx) }()
	if err := lone.h.Connect(ctx, peer.AddrInfo{ID: nodes[0].h.ID(), Addrs: nodes[0].h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "announced after joining", func() error {
		res, err := nodes[2].r.Discover(ctx, "energy.solar", 0, 0, Fresh())
		if err != nil {
			return err
		}
		if len(res.Agents) != 1 || res.Agents[0].Card.AgentID != c.AgentID {
			return errors.New("not found yet")
		}
		return nil
	})
}

func TestPublishWithdrawRepublish(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nodes := newTestNet(t, 3, netOptions{})
	r := nodes[0].r
	pub := agentKey(t)
	if _, err := r.Publish(ctx, Agent{Name: "bad name!", PublicKey: pub}); err == nil {
		t.Error("bad agent name accepted")
	}
	if _, err := r.Publish(ctx, Agent{Name: "x", Capabilities: []string{"Bad..Cap"}, PublicKey: pub}); !errors.Is(err, ErrBadCapability) {
		t.Errorf("bad capability: %v", err)
	}
	if _, err := r.Publish(ctx, Agent{Name: "x", PublicKey: pub[:5]}); err == nil {
		t.Error("short key accepted")
	}
	if _, err := r.Publish(ctx, Agent{Name: "x", Description: strings.Repeat("d", MaxDescription+1), PublicKey: pub}); !errors.Is(err, ErrOversized) {
		t.Errorf("long description: %v", err)
	}

	c1, err := r.Publish(ctx, Agent{Name: "vendor", Capabilities: []string{"Compute.GPU-hours", "compute.gpu-hours"}, PublicKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c1.Capabilities, []string{"compute.gpu-hours"}) || c1.Certificate == nil || len(c1.Endpoints) == 0 {
		t.Fatalf("card %+v", c1)
	}
	if err := r.Withdraw(ctx, c1.AgentID); err != nil {
		t.Fatal(err)
	}
	if err := r.Withdraw(ctx, c1.AgentID); err != nil {
		t.Fatalf("second Withdraw: %v", err)
	}
	if _, err := nodes[1].r.Lookup(ctx, c1.AgentID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Lookup after Withdraw: %v", err)
	}
	c2, err := r.Publish(ctx, Agent{Name: "vendor", Capabilities: []string{"compute.gpu-hours"}, PublicKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	if c2.Version <= c1.Version+1 {
		t.Fatalf("republished version %d not above the tombstone (> %d)", c2.Version, c1.Version+1)
	}
	got, err := nodes[2].r.Lookup(ctx, c2.AgentID)
	if err != nil || got.Version != c2.Version {
		t.Fatalf("Lookup after republish: %+v %v", got, err)
	}
	if got, err := nodes[2].r.dhtCard(ctx, c2.AgentID); err != nil || got.Version != c2.Version {
		t.Fatalf("DHT after republish: %+v %v", got, err)
	}
	if _, err := nodes[2].r.Lookup(ctx, "not an agent id"); !errors.Is(err, protocol.ErrBadAgentID) {
		t.Errorf("Lookup of a bad id: %v", err)
	}
	if _, err := nodes[2].r.Discover(ctx, "Bad Cap", 0, 0); !errors.Is(err, ErrBadCapability) {
		t.Errorf("Discover of a bad capability: %v", err)
	}
}

func TestGivenCertificate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nodes := newTestNet(t, 2, netOptions{})
	r := nodes[0].r
	pub, _, _ := ed25519.GenerateKey(nil)
	id := protocol.AgentID{Org: nodes[0].id(), Name: "certified"}
	notAfter := time.Now().Add(2 * time.Hour)
	cert, err := protocol.IssueCertificate(nodes[0].key, id, pub, []string{"compute"}, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Publish(ctx, Agent{Name: "certified", Capabilities: []string{"compute.gpu-hours"}, PublicKey: pub, Certificate: cert})
	if err != nil {
		t.Fatal(err)
	}
	if c.Certificate.Signature == nil || !c.NotAfter.Equal(protocol.Millis(notAfter)) {
		t.Fatalf("card notAfter %s, want clamped to the certificate's %s", c.NotAfter, notAfter)
	}
	// A certificate for another key, or not granting the capability, is refused.
	if _, err := r.Publish(ctx, Agent{Name: "certified", Capabilities: []string{"compute"}, PublicKey: agentKey(t), Certificate: cert}); err == nil {
		t.Error("certificate of another key accepted")
	}
	if _, err := r.Publish(ctx, Agent{Name: "certified", Capabilities: []string{"legal"}, PublicKey: pub, Certificate: cert}); !errors.Is(err, ErrForged) {
		t.Errorf("ungranted capability: %v", err)
	}
	res, err := nodes[1].r.Discover(ctx, "compute", 0, 0)
	if err != nil || len(res.Agents) != 1 || !slices.Equal(res.Agents[0].Card.Certificate.Signature, cert.Signature) {
		t.Fatalf("Discover = %+v %v", res, err)
	}
}

// The ProtocolID handler refuses oversized and malformed requests.
func TestServeLimits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nodes := newTestNet(t, 2, netOptions{})
	if _, err := nodes[0].r.Publish(ctx, Agent{Name: "a", Capabilities: []string{"compute"}, PublicKey: agentKey(t)}); err != nil {
		t.Fatal(err)
	}
	s, err := nodes[1].h.NewStream(ctx, nodes[0].h.ID(), ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFrame(s, make([]byte, maxRequestSize+1)); err != nil {
		t.Fatal(err)
	}
	if _, err := readAnswer(bufio.NewReader(s), maxResponseSize); err == nil {
		t.Error("oversized request answered")
	}
	_ = s.Reset()

	if _, err := nodes[1].r.request(ctx, nodes[0].h.ID(), wireRequest{Op: "delete"}); err == nil || !strings.Contains(err.Error(), "unknown op") {
		t.Errorf("unknown op: %v", err)
	}
	if _, err := nodes[1].r.request(ctx, nodes[0].h.ID(), wireRequest{Op: opFind, Capability: "BAD CAP"}); err == nil {
		t.Error("bad capability answered")
	}
	raws, err := nodes[1].r.request(ctx, nodes[0].h.ID(), wireRequest{Op: opFind, Capability: "compute"})
	if err != nil || len(raws) != 1 {
		t.Fatalf("find = %d cards, %v", len(raws), err)
	}
}

// Close stops serving and waits; later calls fail with ErrClosed.
func TestClose(t *testing.T) {
	ctx := context.Background()
	nodes := newTestNet(t, 2, netOptions{configure: func(c *Config) { c.CacheTTL = 40 * time.Millisecond; c.RetryInterval = 10 * time.Millisecond }})
	r := nodes[1].r
	if _, err := nodes[0].r.Publish(ctx, Agent{Name: "a", Capabilities: []string{"compute"}, PublicKey: agentKey(t)}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Discover(ctx, "compute", 0, 0); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	r.mu.Lock()
	first := r.mu.cache["compute"].snap
	r.mu.Unlock()
	waitFor(t, 10*time.Second, "cache refreshed in the background", func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.mu.cache["compute"].snap == first {
			return errors.New("not yet")
		}
		return nil
	})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close = %v", err)
	}
	rcancel()
	if _, err := r.Discover(ctx, "compute", 0, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Discover after Close: %v", err)
	}
	if _, err := r.Publish(ctx, Agent{Name: "b", PublicKey: agentKey(t)}); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close: %v", err)
	}
	if _, err := nodes[0].r.request(ctx, nodes[1].h.ID(), wireRequest{Op: opFind, Capability: "compute"}); err == nil {
		t.Error("closed registry still serves")
	}
}
