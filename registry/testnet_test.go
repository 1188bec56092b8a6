package registry

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aspnode/asp/p2p"
)

// testClock is real time plus an adjustable offset shared by a network.
type testClock struct{ off atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *testClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// testNode is one organization's node: a real p2p host on 127.0.0.1
// (TCP) with its kad-dht in server mode, the /asp prefix and our
// validator, and a Registry.
type testNode struct {
	p   *p2p.Host // nil for an attacker's bare host
	h   host.Host
	d   *dht.IpfsDHT
	r   *Registry
	key ed25519.PrivateKey
	m   *Metrics
}

func (n *testNode) id() string { return n.h.ID().String() }

type netOptions struct {
	clock     *testClock
	configure func(*Config)
}

// newHost returns a TCP-only loopback host with a fresh Ed25519 identity.
func newHost(tb testing.TB) (host.Host, ed25519.PrivateKey) {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	lk, err := crypto.UnmarshalEd25519PrivateKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	h, err := libp2p.New(
		libp2p.Identity(lk),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.NoTransports,
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
	)
	if err != nil {
		tb.Fatal(err)
	}
	return h, priv
}

// newDHT starts a server-mode DHT with the /asp prefix and validator v.
func newDHT(tb testing.TB, h host.Host, v record.Validator) *dht.IpfsDHT {
	tb.Helper()
	d, err := dht.New(h,
		dht.Mode(dht.ModeServer),
		dht.ProtocolPrefix("/asp"),
		dht.Validator(record.NamespacedValidator{Namespace: v}),
	)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

func newTestNode(tb testing.TB, o netOptions) *testNode {
	tb.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	lk, err := crypto.UnmarshalEd25519PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now
	if o.clock != nil {
		now = o.clock.Now
	}
	v := NewValidator(m, now)
	p, err := p2p.New(context.Background(), p2p.Config{Key: lk, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}},
		p2p.WithValidator(Namespace, v), p2p.WithLogger(quietLog))
	if err != nil {
		tb.Fatal(err)
	}
	h, d := p.Host(), p.DHT()
	// Tests check answers, not latency: generous deadlines keep a loaded
	// machine (or -race) from cutting answers short.
	cfg := Config{Host: h, Wire: p, Routing: d, Key: key, Validator: v, Clock: now, Logger: quietLog,
		DiscoverTimeout: 30 * time.Second, FetchTimeout: 20 * time.Second}
	if o.configure != nil {
		o.configure(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		_ = p.Close()
		tb.Fatal(err)
	}
	return &testNode{p: p, h: h, d: d, r: r, key: key, m: m}
}

func (n *testNode) close() {
	if n.r != nil {
		_ = n.r.Close()
	}
	if n.p != nil {
		_ = n.p.Close()
		return
	}
	_ = n.d.Close()
	_ = n.h.Close()
}

// newTestNet builds n nodes, connects them as a chain plus a binary tree,
// and refreshes every routing table. Everything is closed at cleanup.
func newTestNet(tb testing.TB, n int, o netOptions) []*testNode {
	tb.Helper()
	nodes := make([]*testNode, n)
	for i := range nodes {
		nodes[i] = newTestNode(tb, o)
	}
	tb.Cleanup(func() {
		var wg sync.WaitGroup
		for _, nd := range nodes {
			wg.Add(1)
			go func() { defer wg.Done(); nd.close() }()
		}
		wg.Wait()
	})
	connectNet(tb, nodes)
	return nodes
}

func connectNet(tb testing.TB, nodes []*testNode) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes)*4)
	sem := make(chan struct{}, 4) // bounded handshakes: a starved CPU times them out
	for i := 1; i < len(nodes); i++ {
		// A chain plus a binary tree: connected, no hub.
		for _, j := range []int{i - 1, (i - 1) / 2} {
			if j == i-1 && j == (i-1)/2 && j != 0 {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				t := nodes[j].h
				var err error
				for try := 0; try < 5; try++ { // a loaded machine can time a handshake out
					if err = nodes[i].h.Connect(ctx, peer.AddrInfo{ID: t.ID(), Addrs: t.Addrs()}); err == nil {
						return
					}
					if sw, ok := nodes[i].h.Network().(*swarm.Swarm); ok {
						sw.Backoff().Clear(t.ID())
					}
				}
				errs <- fmt.Errorf("connect %d→%d: %w", i, j, err)
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
	// Wait until every routing table holds a peer (identify is async),
	// then refresh all of them so each node knows its neighbourhood.
	waitFor(tb, 30*time.Second, "routing tables populated", func() error {
		for i, nd := range nodes {
			if nd.d.RoutingTable().Size() == 0 {
				return fmt.Errorf("node %d has an empty routing table", i)
			}
		}
		return nil
	})
	for round := 0; round < 2; round++ {
		for _, nd := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				select {
				case <-nd.d.RefreshRoutingTable():
				case <-ctx.Done():
				}
			}()
		}
		wg.Wait()
	}
}

// waitFor polls check until it returns nil or the deadline passes.
func waitFor(tb testing.TB, d time.Duration, what string, check func() error) {
	tb.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = check(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("%s: not after %s: %v", what, d, err)
}

// agentKey returns a fresh agent key pair.
func agentKey(tb testing.TB) ed25519.PublicKey {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return pub
}
