package attest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aspnode/asp/p2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// node is one real libp2p host on 127.0.0.1 (TCP) running a Service,
// recording what the Service delivers.
type node struct {
	h    *p2p.Host
	svc  *Service
	reg  *prometheus.Registry
	mesh *meshTracer

	mu    sync.Mutex
	allow []peer.ID // nil: any peer
	got   []Delivery
	at    []time.Time // arrival times, as got
}

func newHost(t testing.TB, opts ...p2p.Option) *p2p.Host {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := p2p.New(context.Background(), p2p.Config{Key: k, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// newNode starts a host and a Service joined to its GossipSub.
func newNode(t testing.TB, cfg Config, opts ...p2p.Option) *node {
	t.Helper()
	tr := &meshTracer{mesh: map[peer.ID]bool{}}
	opts = append(opts, p2p.WithPubSubOptions(pubsub.WithRawTracer(tr)))
	n := &node{h: newHost(t, opts...), reg: prometheus.NewRegistry(), mesh: tr}
	cfg.Registerer = n.reg
	var err error
	if n.svc, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	if err := n.svc.Join(context.Background(), n.h.PubSub()); err != nil {
		t.Fatal(err)
	}
	ch, _ := n.svc.Subscribe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for d := range ch {
			now := time.Now()
			n.mu.Lock()
			n.got = append(n.got, d)
			n.at = append(n.at, now)
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if err := n.svc.Close(); err != nil {
			t.Errorf("close service: %v", err)
		}
		<-done
	})
	return n
}

// allowed returns the peers n may meet (nil: any).
func (n *node) allowed() []peer.ID {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.allow)
}

// only restricts n to the given peers.
func (n *node) only(t testing.TB, allow ...peer.ID) {
	t.Helper()
	restrict(t, n.h, allow...)
	n.mu.Lock()
	n.allow = slices.Clone(allow)
	n.mu.Unlock()
}

// deliveries returns a copy of what n received.
func (n *node) deliveries() []Delivery {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.got)
}

// count returns how many deliveries of hash h n received.
func (n *node) count(h [32]byte) int {
	c := 0
	for _, d := range n.deliveries() {
		if d.Hash == h {
			c++
		}
	}
	return c
}

// validations reads asp_attest_validations_total{result, reason}; an
// empty reason sums over reasons.
func (n *node) validations(t testing.TB, result, reason string) int {
	t.Helper()
	mfs, err := n.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, mf := range mfs {
		if mf.GetName() != "asp_attest_validations_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label(m, "result") == result && (reason == "" || label(m, "reason") == reason) {
				total += int(m.GetCounter().GetValue())
			}
		}
	}
	return total
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// connect connects a and b. Hosts find more peers through the DHT; to
// keep a topology, give each host its neighbours with restrict.
func connect(t testing.TB, a, b *p2p.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, b.AddrInfo()); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// meshTracer follows a node's GossipSub mesh for Topic: the peers it
// forwards messages to.
type meshTracer struct {
	mu    sync.Mutex
	mesh  map[peer.ID]bool
	recv  map[[32]byte]bool // hashes of message data received, before any check
	iwant int               // IWANT requests sent: messages missed by the mesh
}

func (m *meshTracer) RecvRPC(rpc *pubsub.RPC) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, msg := range rpc.GetPublish() {
		if m.recv == nil {
			m.recv = map[[32]byte]bool{}
		}
		m.recv[sha256.Sum256(msg.GetData())] = true
	}
}

// received reports whether a message with data hash h arrived.
func (m *meshTracer) received(h [32]byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.recv[h]
}

func (m *meshTracer) Graft(p peer.ID, topic string) {
	if topic == Topic {
		m.mu.Lock()
		m.mesh[p] = true
		m.mu.Unlock()
	}
}

func (m *meshTracer) Prune(p peer.ID, topic string) {
	if topic == Topic {
		m.mu.Lock()
		delete(m.mesh, p)
		m.mu.Unlock()
	}
}

func (m *meshTracer) size() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.mesh)
}

func (m *meshTracer) has(ps []peer.ID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range ps {
		if !m.mesh[p] {
			return false
		}
	}
	return true
}

func (*meshTracer) AddPeer(peer.ID, protocol.ID)             {}
func (*meshTracer) RemovePeer(peer.ID)                       {}
func (*meshTracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (*meshTracer) OnClosedOutboundStream(peer.ID)           {}
func (*meshTracer) Join(string)                              {}
func (*meshTracer) Leave(string)                             {}
func (*meshTracer) ValidateMessage(*pubsub.Message)          {}
func (*meshTracer) DeliverMessage(*pubsub.Message)           {}
func (*meshTracer) RejectMessage(*pubsub.Message, string)    {}
func (*meshTracer) DuplicateMessage(*pubsub.Message)         {}
func (*meshTracer) ThrottlePeer(peer.ID)                     {}
func (m *meshTracer) SendRPC(rpc *pubsub.RPC, _ peer.ID) {
	if c := rpc.GetControl(); c != nil && len(c.GetIwant()) > 0 {
		m.mu.Lock()
		m.iwant++
		m.mu.Unlock()
	}
}
func (*meshTracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (*meshTracer) DropRPC(*pubsub.RPC, peer.ID)                         {}
func (*meshTracer) UndeliverableMessage(*pubsub.Message)                 {}

// waitMesh waits until every node has each of its allowed neighbours in
// its mesh for the topic (GossipSub grafts at its heartbeat, every
// second): until then a node that receives a message forwards it to
// nobody.
func waitMesh(t testing.TB, nodes []*node) {
	t.Helper()
	for i, n := range nodes {
		waitFor(t, fmt.Sprintf("the mesh of node %d", i), func() bool { return n.mesh.has(n.allowed()) })
	}
}

// rawPeer is a hostile host: it joins the topic without a validator and
// publishes whatever bytes it likes.
type rawPeer struct {
	h     *p2p.Host
	topic *pubsub.Topic
}

func newRawPeer(t testing.TB, to ...*node) *rawPeer {
	t.Helper()
	r := &rawPeer{h: newHost(t)}
	restrict(t, r.h, peers(to)...)
	for _, n := range to {
		restrict(t, n.h, append(n.allowed(), r.h.ID())...)
	}
	var err error
	if r.topic, err = r.h.PubSub().Join(Topic); err != nil {
		t.Fatal(err)
	}
	for _, n := range to {
		connect(t, r.h, n.h)
	}
	waitFor(t, "the raw peer to see its neighbours on the topic", func() bool {
		return len(r.topic.ListPeers()) >= len(to)
	})
	for _, n := range to {
		waitFor(t, "a neighbour to see the raw peer", func() bool {
			return slices.Contains(n.h.PubSub().ListPeers(Topic), r.h.ID()) ||
				slices.Contains(n.h.Host().Network().Peers(), r.h.ID())
		})
	}
	return r
}

func (r *rawPeer) publish(t testing.TB, b []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.topic.Publish(ctx, b); err != nil {
		t.Fatal(err)
	}
}

// restrict lets h meet only the given peers.
func restrict(t testing.TB, h *p2p.Host, allow ...peer.ID) {
	t.Helper()
	ids := make([]string, len(allow))
	for i, p := range allow {
		ids[i] = p.String()
	}
	if err := h.SetAccessLists(ids, nil); err != nil {
		t.Fatal(err)
	}
}

func fixedClock(at time.Time) func() time.Time { return func() time.Time { return at } }

// peers returns the ids of nodes.
func peers(nodes []*node) []peer.ID {
	out := make([]peer.ID, len(nodes))
	for i, n := range nodes {
		out[i] = n.h.ID()
	}
	return out
}
