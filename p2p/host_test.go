package p2p

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
)

func TestGater(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			b := newHost(t, tr, Config{})
			c := newHost(t, tr, Config{})
			// a denies b, and allows b and c: deny wins over allow.
			a := newHost(t, tr, Config{
				Allow: []string{b.ID().String(), c.ID().String()},
				Deny:  []string{b.ID().String()},
			})
			b.Handle(echoProto, echo)
			a.Handle(echoProto, echo)
			ctx := testCtx(t)

			if err := a.Connect(ctx, b.AddrInfo()); !errors.Is(err, ErrPeerNotAllowed) {
				t.Fatalf("a dialing denied b: got %v, want ErrPeerNotAllowed", err)
			}
			// b's side of the handshake may complete before a refuses the
			// connection (yamux is chosen inside the handshake), so b's
			// Connect can return nil; the connection dies at once either way.
			_ = b.Connect(ctx, a.AddrInfo())
			waitFor(t, "b's connection refused", func() bool {
				return b.Host().Network().Connectedness(a.ID()) != network.Connected
			})
			if a.Host().Network().Connectedness(b.ID()) == network.Connected {
				t.Fatal("a holds a connection from denied b")
			}
			if _, err := b.Request(ctx, a.ID(), echoProto, nil); err == nil {
				t.Fatal("denied b's request was served")
			}
			if _, err := a.Request(ctx, b.ID(), echoProto, nil); err == nil {
				t.Fatal("request to a denied peer succeeded")
			}
			connect(t, c, a) // allowed, inbound to a

			// An allow list keeps everyone else out.
			d := newHost(t, tr, Config{})
			_ = d.Connect(ctx, a.AddrInfo())
			if _, err := d.Request(ctx, a.ID(), echoProto, nil); err == nil {
				t.Fatal("a peer not on the allow list was served")
			}

			// Changing the lists drops connections now refused.
			if err := a.SetAccessLists(nil, []string{c.ID().String()}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "c disconnected", func() bool {
				return a.Host().Network().Connectedness(c.ID()) != network.Connected
			})
			connect(t, d, a) // empty allow list: everyone not denied
			if err := a.SetAccessLists([]string{"not a peer id"}, nil); err == nil {
				t.Fatal("bad peer id accepted")
			}
			if a.Gater().Allowed(c.ID()) || !a.Gater().Allowed(d.ID()) {
				t.Fatal("a failed SetAccessLists changed the lists")
			}
		})
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		cfg  Config
		opts []Option
	}{
		"no key":        {cfg: Config{}},
		"bad allow":     {cfg: Config{Key: newKey(t), Allow: []string{"x"}}},
		"bad deny":      {cfg: Config{Key: newKey(t), Deny: []string{"x"}}},
		"bad bootstrap": {cfg: Config{Key: newKey(t), Bootstrap: []string{"/ip4/127.0.0.1/tcp/1"}}},
		"bad listen":    {cfg: Config{Key: newKey(t), ListenAddrs: []string{"nonsense"}}},
		"bad option":    {cfg: Config{Key: newKey(t)}, opts: []Option{WithIdleTimeout(0)}},
		"double peer score": {cfg: Config{Key: newKey(t)}, opts: []Option{
			WithPeerScore(&pubsub.PeerScoreParams{}, &pubsub.PeerScoreThresholds{}),
			WithPeerScore(&pubsub.PeerScoreParams{}, &pubsub.PeerScoreThresholds{}),
		}},
	} {
		t.Run(name, func(t *testing.T) {
			if h, err := New(ctx, tc.cfg, tc.opts...); err == nil {
				h.Close()
				t.Fatal("New succeeded")
			}
		})
	}
}

func TestCloseOnContextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	h, err := New(ctx, Config{Key: newKey(t), ListenAddrs: []string{listenAddr("tcp")}})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	waitFor(t, "host closed", func() bool { return h.Context().Err() != nil })
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

func TestBootstrap(t *testing.T) {
	seed := newHost(t, "tcp", Config{})
	var addrs []string
	for _, a := range seed.P2PAddrs() {
		addrs = append(addrs, a.String())
	}
	h := newHost(t, "tcp", Config{Bootstrap: addrs})
	if err := h.Bootstrap(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if h.Host().Network().Connectedness(seed.ID()) != network.Connected {
		t.Fatal("not connected to the bootstrap peer")
	}
	waitFor(t, "seed in the routing table", func() bool { return h.DHT().RoutingTable().Find(seed.ID()) != "" })

	// Unreachable bootstrap peers make Bootstrap fail.
	gone := newKey(t)
	id, _ := peer.IDFromPrivateKey(gone)
	lonely := newHost(t, "tcp", Config{Bootstrap: []string{"/ip4/127.0.0.1/tcp/1/p2p/" + id.String()}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := lonely.Bootstrap(ctx); err == nil {
		t.Fatal("Bootstrap succeeded with no reachable peer")
	}
}

// aspValidator accepts records under /asp/ whose value starts with "card:"
// and selects the longest value.
type aspValidator struct{}

func (aspValidator) Validate(key string, value []byte) error {
	if !strings.HasPrefix(key, "/asp/") {
		return fmt.Errorf("key %q outside /asp/", key)
	}
	if !strings.HasPrefix(string(value), "card:") {
		return errors.New("not a card")
	}
	return nil
}

func (aspValidator) Select(_ string, vals [][]byte) (int, error) {
	best := 0
	for i, v := range vals {
		if len(v) > len(vals[best]) {
			best = i
		}
	}
	return best, nil
}

func TestDHTNamespacedRecord(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			hosts := make([]*Host, 3)
			for i := range hosts {
				hosts[i] = newHost(t, tr, Config{}, WithValidator("asp", aspValidator{}))
			}
			connect(t, hosts[0], hosts[1])
			connect(t, hosts[2], hosts[1])
			for _, h := range hosts {
				waitFor(t, "routing table", func() bool { return h.DHT().RoutingTable().Size() > 0 })
			}
			for _, p := range h0Protocols(hosts[1]) {
				if strings.HasPrefix(p, "/ipfs/kad") {
					t.Fatalf("host speaks %s; want only /asp DHT protocols", p)
				}
			}
			ctx := testCtx(t)
			key := "/asp/agent://" + hosts[0].ID().String() + "/vendor"
			if err := hosts[0].DHT().PutValue(ctx, key, []byte("card:v1")); err != nil {
				t.Fatal(err)
			}
			got, err := hosts[2].DHT().GetValue(ctx, key, dht.Quorum(1))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "card:v1" {
				t.Fatalf("got %q", got)
			}
			if err := hosts[0].DHT().PutValue(ctx, key, []byte("forged")); err == nil {
				t.Fatal("an invalid record was stored")
			}
			if err := hosts[0].DHT().PutValue(ctx, "/other/x", []byte("card:x")); err == nil {
				t.Fatal("a record in an unknown namespace was stored")
			}
		})
	}
}

func h0Protocols(h *Host) []string {
	var out []string
	for _, p := range h.Host().Mux().Protocols() {
		out = append(out, string(p))
	}
	return out
}

// TestGossipPublishRightAfterJoin publishes the moment the topic is joined,
// before any mesh can form: flood publishing must still reach both peers.
func TestGossipPublishRightAfterJoin(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			pub := newHost(t, tr, Config{})
			subs := []*Host{newHost(t, tr, Config{}), newHost(t, tr, Config{})}
			const topic = "asp/attestations/1"
			var ss []*pubsub.Subscription
			for _, s := range subs {
				tp, err := s.PubSub().Join(topic)
				if err != nil {
					t.Fatal(err)
				}
				sub, err := tp.Subscribe()
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(sub.Cancel)
				ss = append(ss, sub)
				connect(t, pub, s)
			}
			// The publisher has heard both subscriptions (that takes one
			// message each way); no mesh exists yet, since it has not joined.
			waitFor(t, "subscriptions known", func() bool { return len(pub.PubSub().ListPeers(topic)) == 2 })

			tp, err := pub.PubSub().Join(topic)
			if err != nil {
				t.Fatal(err)
			}
			ctx := testCtx(t)
			if err := tp.Publish(ctx, []byte("attestation")); err != nil {
				t.Fatal(err)
			}
			for i, sub := range ss {
				m, err := sub.Next(ctx)
				if err != nil {
					t.Fatalf("subscriber %d: %v", i, err)
				}
				if string(m.Data) != "attestation" || m.GetFrom() != pub.ID() {
					t.Fatalf("subscriber %d got %q from %s", i, m.Data, m.GetFrom())
				}
			}
		})
	}
}

func TestPeerScoreAppSpecific(t *testing.T) {
	plain := newHost(t, "tcp", Config{})
	if err := plain.SetAppSpecificScore(func(peer.ID) float64 { return 1 }); !errors.Is(err, ErrNoPeerScore) {
		t.Fatalf("got %v, want ErrNoPeerScore", err)
	}
	params := &pubsub.PeerScoreParams{
		AppSpecificWeight:           1,
		IPColocationFactorThreshold: 1,
		DecayInterval:               time.Second,
		DecayToZero:                 0.01,
		Topics:                      map[string]*pubsub.TopicScoreParams{},
	}
	thresholds := &pubsub.PeerScoreThresholds{
		GossipThreshold: -10, PublishThreshold: -20, GraylistThreshold: -30, OpportunisticGraftThreshold: 1,
	}
	h := newHost(t, "tcp", Config{}, WithPeerScore(params, thresholds))
	if got := h.appSpecificScore("x"); got != 0 {
		t.Fatalf("initial app score %v, want 0", got)
	}
	if err := h.SetAppSpecificScore(func(peer.ID) float64 { return 42 }); err != nil {
		t.Fatal(err)
	}
	if got := h.appSpecificScore("x"); got != 42 {
		t.Fatalf("app score %v, want 42", got)
	}
}

func TestSharedRegisterer(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := newHost(t, "tcp", Config{}, WithRegisterer(reg))
	b := newHost(t, "tcp", Config{}, WithRegisterer(reg))
	b.Handle(echoProto, func(context.Context, peer.ID, []byte) ([]byte, error) { return nil, errors.New("x") })
	connect(t, a, b)
	if _, err := a.Request(testCtx(t), b.ID(), echoProto, nil); err == nil {
		t.Fatal("want a remote error")
	}
	for _, name := range []string{"asp_p2p_handler_errors_total", "libp2p_rcmgr_streams"} {
		n, err := seriesCount(reg, name)
		if err != nil || n == 0 {
			t.Fatalf("%s: %d series, %v", name, n, err)
		}
	}
}

func TestPreferTCP(t *testing.T) {
	both := []string{listenAddr("tcp"), listenAddr("quic")}
	b := newHost(t, "", Config{ListenAddrs: both})
	a := newHost(t, "", Config{ListenAddrs: both}, WithPreferTCP())
	connect(t, a, b)
	conns := a.Host().Network().ConnsToPeer(b.ID())
	if len(conns) != 1 || conns[0].ConnState().Transport != "tcp" {
		var got []string
		for _, c := range conns {
			got = append(got, c.ConnState().Transport)
		}
		t.Fatalf("connections over %v, want one over tcp", got)
	}
}
