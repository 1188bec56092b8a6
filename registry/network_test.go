package registry

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aspnode/asp/protocol"
	"github.com/libp2p/go-libp2p/core/peer"
)

const testCardTTL = time.Hour

// model is what the network should know: agent id → capabilities.
type model struct {
	mu   sync.Mutex
	caps map[string][]string
}

func (m *model) set(id string, caps []string) { m.mu.Lock(); m.caps[id] = caps; m.mu.Unlock() }
func (m *model) drop(id string)               { m.mu.Lock(); delete(m.caps, id); m.mu.Unlock() }

// want returns the sorted agent ids that a query for q must find.
func (m *model) want(q string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for id, caps := range m.caps {
		for _, c := range caps {
			if CapabilityMatches(c, q) {
				out = append(out, id)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

func ids(res *Result) []string {
	out := []string{}
	for _, m := range res.Agents {
		out = append(out, m.Card.AgentID)
	}
	sort.Strings(out)
	return out
}

// checkAll runs Discover(q, Fresh) from every given node and compares the
// answer with the model.
func checkAll(t *testing.T, nodes []*testNode, m *model, queries []string) {
	t.Helper()
	ctx := context.Background()
	for i, n := range nodes {
		for _, q := range queries {
			res, err := n.r.Discover(ctx, q, 0, 0, Fresh())
			if err != nil {
				t.Fatalf("node %d Discover(%q): %v", i, q, err)
			}
			want := m.want(q)
			if want == nil {
				want = []string{}
			}
			if got := ids(res); !slices.Equal(got, want) {
				t.Errorf("node %d Discover(%q) = %v, want %v (providers %d, skipped %d, partial %v)",
					i, q, got, want, res.Providers, res.Skipped, res.Partial)
			}
			if res.Partial {
				t.Errorf("node %d Discover(%q) is partial", i, q)
			}
		}
	}
}

// eventually retries checkAll-style comparisons until they hold, for
// changes that need a republish round to reach every node.
func eventuallyAll(t *testing.T, nodes []*testNode, m *model, queries []string) {
	t.Helper()
	waitFor(t, 30*time.Second, "every node sees the model", func() error {
		for i, n := range nodes {
			for _, q := range queries {
				res, err := n.r.Discover(context.Background(), q, 0, 0, Fresh())
				if err != nil {
					return err
				}
				want := m.want(q)
				if want == nil {
					want = []string{}
				}
				if got := ids(res); !slices.Equal(got, want) {
					return fmt.Errorf("node %d Discover(%q) = %v, want %v", i, q, got, want)
				}
			}
		}
		return nil
	})
}

var allQueries = []string{
	"compute", "compute.gpu-hours", "compute.gpu-hours.h100", "compute.cpu-hours", "compute.tpu-hours",
	"storage", "storage.s3", "storage.glacier", "legal", "legal.contracts",
	"unknown.thing", "comp",
}

// TestNetwork runs an in-process network of 20 real libp2p hosts on
// 127.0.0.1 with server-mode DHTs, agents on several of them, and checks
// discovery from every node through publication, forgery, update,
// removal, an unreachable organization, expiry and renewal.
func TestNetwork(t *testing.T) {
	clock := &testClock{}
	var trust sync.Map // agent id → score
	trustView := func(id string) (float64, string, int) {
		if s, ok := trust.Load(id); ok {
			return s.(float64), "L2", int(s.(float64) / 10)
		}
		return NeutralTrust(id)
	}
	nodes := newTestNet(t, 20, netOptions{clock: clock, configure: func(c *Config) {
		c.CardTTL = testCardTTL
		c.RetryInterval = 50 * time.Millisecond
		c.Trust = trustView
	}})
	const (
		forger = 19 // serves forged cards
		silent = 18 // advertises a capability, serves nothing
	)
	honest := nodes[:18]
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	m := &model{caps: map[string][]string{}}
	type spec struct {
		node int
		name string
		caps []string
	}
	specs := []spec{
		{1, "gpu-a", []string{"compute.gpu-hours"}},
		{2, "gpu-b", []string{"compute.gpu-hours", "storage.s3"}},
		{3, "cpu-a", []string{"compute.cpu-hours"}},
		{5, "store", []string{"storage.glacier", "storage.s3"}},
		{8, "legal", []string{"legal.contracts"}},
		{13, "h100", []string{"compute.gpu-hours.h100"}},
		{13, "notary", []string{"legal.notary"}},
	}
	agentID := func(s spec) string { return protocol.AgentID{Org: nodes[s.node].id(), Name: s.name}.String() }
	var wg sync.WaitGroup
	for _, s := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := nodes[s.node].r.Publish(ctx, Agent{Name: s.name, Description: "test agent", Capabilities: s.caps, PublicKey: agentKey(t)})
			if err != nil {
				t.Errorf("Publish %s: %v", s.name, err)
				return
			}
			m.set(c.AgentID, c.Capabilities)
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	t.Run("discover from every node", func(t *testing.T) {
		checkAll(t, nodes, m, allQueries)
		res, err := nodes[0].r.Discover(ctx, "compute.gpu-hours", 0, 0, Fresh())
		if err != nil {
			t.Fatal(err)
		}
		if res.Skipped != 0 || res.Providers != 3 {
			t.Errorf("providers %d skipped %d, want 3 and 0", res.Providers, res.Skipped)
		}
		for _, a := range res.Agents {
			if a.Source != SourcePeer || a.Trust != (Trust{Score: 0, Level: "L0"}) {
				t.Errorf("%s: source %s trust %+v", a.Card.AgentID, a.Source, a.Trust)
			}
		}
		res, _ = nodes[1].r.Discover(ctx, "compute.gpu-hours", 0, 0)
		if src := res.Agents[slices.IndexFunc(res.Agents, func(a Match) bool { return a.Card.AgentID == agentID(specs[0]) })].Source; src != SourceLocal {
			t.Errorf("own agent source %s, want local", src)
		}
	})

	t.Run("trust filter, ranking, limit and cache", func(t *testing.T) {
		trust.Store(agentID(specs[1]), 80.0) // gpu-b
		trust.Store(agentID(specs[5]), 60.0) // h100
		trust.Store(agentID(specs[0]), 20.0) // gpu-a
		defer trust.Clear()
		res, err := nodes[7].r.Discover(ctx, "compute", 50, 0)
		if err != nil {
			t.Fatal(err)
		}
		got := []string{}
		for _, a := range res.Agents {
			got = append(got, a.Card.AgentID)
		}
		if want := []string{agentID(specs[1]), agentID(specs[5])}; !slices.Equal(got, want) {
			t.Errorf("min_trust 50 = %v, want %v", got, want)
		}
		if res.Agents[0].Trust != (Trust{Score: 80, Level: "L2", Completed: 8}) {
			t.Errorf("trust view %+v", res.Agents[0].Trust)
		}
		res, _ = nodes[7].r.Discover(ctx, "compute", 0, 2)
		if len(res.Agents) != 2 || res.Agents[0].Card.AgentID != agentID(specs[1]) || !res.Cached {
			t.Errorf("limit 2 = %v cached %v", ids(res), res.Cached)
		}
	})

	t.Run("forged cards and silent providers are skipped", func(t *testing.T) {
		f := nodes[forger]
		victim := nodes[1]
		genuine, _ := victim.r.Card(agentID(specs[0]))
		now := clock.Now()
		var bad [][]byte
		// A card for an agent of another organization, signed by the forger.
		c := forgeCard(t, f.key, nodes[1].id(), "gpu-z", now)
		bad = append(bad, mustMarshal(t, c))
		// Another organization's genuine card, replayed.
		bad = append(bad, mustMarshal(t, genuine))
		// The forger's own card, altered after signing.
		c = forgeCard(t, f.key, f.id(), "tampered", now)
		c.Description = "altered"
		bad = append(bad, mustMarshal(t, c))
		// The forger's own card, expired.
		c = forgeCard(t, f.key, f.id(), "old", now.Add(-2*testCardTTL))
		bad = append(bad, mustMarshal(t, c))
		// Oversized.
		bad = append(bad, make([]byte, MaxCardSize+100))
		// A capability its certificate does not grant.
		c = forgeCard(t, f.key, f.id(), "ungranted", now)
		c.Capabilities = []string{"compute.gpu-hours", "legal"}
		if err := c.Sign(f.key); err != nil {
			t.Fatal(err)
		}
		bad = append(bad, mustMarshal(t, c))
		f.p.Handle(ProtocolID, func(context.Context, peer.ID, []byte) ([]byte, error) {
			return encMode.Marshal(wireResponse{Cards: bad})
		})
		nodes[silent].h.RemoveStreamHandler(ProtocolID)
		for _, n := range []*testNode{f, nodes[silent]} {
			for _, q := range []string{"compute", "compute.gpu-hours"} {
				if err := n.d.Provide(ctx, CapabilityCID(q), true); err != nil {
					t.Fatal(err)
				}
			}
		}
		checkAll(t, honest, m, []string{"compute", "compute.gpu-hours"})
		for i, n := range honest {
			res, err := n.r.Discover(ctx, "compute.gpu-hours", 0, 0, Fresh())
			if err != nil {
				t.Fatal(err)
			}
			if res.Skipped != 2 {
				t.Errorf("node %d: skipped %d providers, want 2 (forger, silent)", i, res.Skipped)
			}
			for _, r := range []string{ReasonForged, ReasonReplayed, ReasonExpired, ReasonOversized} {
				if n.m.Rejected(r) == 0 {
					t.Errorf("node %d counted no %s card", i, r)
				}
			}
		}
	})

	t.Run("forged DHT record is refused", func(t *testing.T) {
		// An attacker whose own DHT accepts anything puts a forged,
		// higher-version card for gpu-a on the DHT.
		a := newAttacker(t, nodes)
		id := agentID(specs[0])
		forged := forgeCard(t, a.key, nodes[1].id(), "gpu-a", clock.Now())
		forged.Org, forged.Version = a.id(), 1<<60
		if err := forged.Sign(a.key); err != nil {
			t.Fatal(err)
		}
		forged.Org = nodes[1].id()
		_ = a.d.PutValue(ctx, CardKey(id), mustMarshal(t, forged))
		before := 0.0
		for _, n := range honest {
			before += n.m.Rejected(ReasonForged)
		}
		genuine, _ := nodes[1].r.Card(id)
		for i, n := range honest {
			if i == 1 {
				continue
			}
			c, err := n.r.dhtCard(ctx, id)
			if err != nil {
				t.Fatalf("node %d: DHT card of gpu-a: %v", i, err)
			}
			if c.Version != genuine.Version || c.Org != nodes[1].id() {
				t.Errorf("node %d: DHT card version %d org %s, want the genuine %d", i, c.Version, c.Org, genuine.Version)
			}
		}
		after := 0.0
		for _, n := range honest {
			after += n.m.Rejected(ReasonForged)
		}
		if after <= before {
			t.Errorf("no forged DHT record counted (%v → %v)", before, after)
		}
		a.close()
	})

	t.Run("update propagates", func(t *testing.T) {
		old, _ := nodes[1].r.Card(agentID(specs[0]))
		c, err := nodes[1].r.Publish(ctx, Agent{Name: "gpu-a", Description: "now with TPUs",
			Capabilities: []string{"compute.gpu-hours", "compute.tpu-hours"}, PublicKey: old.PublicKey})
		if err != nil {
			t.Fatal(err)
		}
		if c.Version <= old.Version {
			t.Fatalf("version %d after %d", c.Version, old.Version)
		}
		m.set(c.AgentID, c.Capabilities)
		checkAll(t, honest, m, []string{"compute.tpu-hours", "compute"})
		for i, n := range honest {
			got, err := n.r.Lookup(ctx, c.AgentID)
			if err != nil || got.Version != c.Version || got.Description != "now with TPUs" {
				t.Errorf("node %d Lookup: %+v %v", i, got, err)
			}
		}
	})

	t.Run("removal propagates", func(t *testing.T) {
		id := agentID(specs[1]) // gpu-b
		if err := nodes[2].r.Withdraw(ctx, id); err != nil {
			t.Fatal(err)
		}
		m.drop(id)
		checkAll(t, honest, m, []string{"storage.s3", "compute.gpu-hours", "storage"})
		for i, n := range honest {
			if _, err := n.r.Lookup(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("node %d Lookup of a withdrawn agent: %v", i, err)
			}
		}
		// The DHT holds the tombstone.
		c, err := nodes[9].r.dhtCard(ctx, id)
		if err != nil || !c.Withdrawn {
			t.Fatalf("DHT record after withdrawal: %+v %v", c, err)
		}
		if _, ok := nodes[2].r.Card(id); ok {
			t.Error("withdrawn agent still listed locally")
		}
		if err := nodes[2].r.Withdraw(ctx, "agent://"+nodes[2].id()+"/nobody"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Withdraw unknown: %v", err)
		}
	})

	t.Run("unreachable organization is read from the DHT", func(t *testing.T) {
		store := nodes[5]
		store.h.RemoveStreamHandler(ProtocolID)
		defer store.p.Handle(ProtocolID, store.r.serve)
		// Streams already open are served on: drop the connection that
		// holds the asking node's pooled ones.
		_ = nodes[0].h.Network().ClosePeer(store.h.ID())
		res, err := nodes[0].r.Discover(ctx, "storage.glacier", 0, 0, Fresh())
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(res); !slices.Equal(got, m.want("storage.glacier")) || res.Agents[0].Source != SourceDHT {
			t.Fatalf("Discover with the organization unreachable = %v (%+v)", got, res)
		}
		c, err := nodes[0].r.Lookup(ctx, agentID(specs[3]))
		if err != nil || c.Name != "store" {
			t.Fatalf("Lookup with the organization unreachable: %v", err)
		}
	})

	t.Run("republished before expiry, expired when not", func(t *testing.T) {
		versions := func() map[string]uint64 {
			v := map[string]uint64{}
			for _, n := range nodes {
				for _, c := range n.r.Cards() {
					v[c.AgentID] = c.Version
				}
			}
			return v
		}
		startRun := func() (stop func()) {
			rctx, rcancel := context.WithCancel(ctx)
			var wg sync.WaitGroup
			for _, n := range nodes {
				wg.Add(1)
				go func() { defer wg.Done(); _ = n.r.Run(rctx) }()
			}
			return func() { rcancel(); wg.Wait() }
		}
		// Past half the lifetime, Run signs and announces new versions.
		v0 := versions()
		stop := startRun()
		clock.Advance(testCardTTL * 6 / 10)
		waitFor(t, 30*time.Second, "cards renewed", func() error {
			v1 := versions()
			for id, v := range v0 {
				if v1[id] <= v {
					return fmt.Errorf("%s still at version %d", id, v)
				}
			}
			return nil
		})
		// Past the first cards' expiry: the renewed ones still answer.
		clock.Advance(testCardTTL * 6 / 10)
		eventuallyAll(t, honest, m, []string{"compute", "storage", "legal"})
		stop()
		// Without Run nothing is renewed: every card expires everywhere.
		clock.Advance(testCardTTL * 3 / 2)
		before := nodes[0].m.Rejected(ReasonExpired)
		for i, n := range honest {
			for _, q := range []string{"compute", "storage", "legal"} {
				res, err := n.r.Discover(ctx, q, 0, 0, Fresh())
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Agents) != 0 {
					t.Errorf("node %d Discover(%q) after expiry = %v", i, q, ids(res))
				}
			}
		}
		if nodes[0].m.Rejected(ReasonExpired) <= before {
			t.Error("expired cards were not counted")
		}
		// Run again: every card is renewed and discoverable again.
		stop = startRun()
		defer stop()
		eventuallyAll(t, honest, m, []string{"compute", "storage", "legal"})
	})
}

// forgeCard returns a card for agent name of org, signed by key (so valid
// only if key is org's), with a certificate signed by key as well.
func forgeCard(t *testing.T, key ed25519.PrivateKey, org, name string, now time.Time) *Card {
	t.Helper()
	signer := protocol.PeerIDFromPublicKey(key.Public().(ed25519.PublicKey))
	pub := agentKey(t)
	notAfter := protocol.Millis(now.Add(testCardTTL))
	cert, err := protocol.IssueCertificate(key, protocol.AgentID{Org: signer, Name: name}, pub, []string{"compute.gpu-hours"}, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	id := protocol.AgentID{Org: org, Name: name}.String()
	cert.AgentID = id
	c := &Card{AgentID: id, Org: signer, Name: name, Capabilities: []string{"compute.gpu-hours"},
		Protocols: []string{protocol.Version}, PublicKey: pub, Certificate: cert, Version: 1, NotAfter: notAfter}
	if err := c.Sign(key); err != nil {
		t.Fatal(err)
	}
	c.Org = org // claims the organization; the signature is the forger's
	return c
}

// permissive accepts every record: the attacker's own DHT.
type permissive struct{}

func (permissive) Validate(string, []byte) error        { return nil }
func (permissive) Select(string, [][]byte) (int, error) { return 0, nil }

// newAttacker joins a node whose DHT accepts anything to the network.
func newAttacker(t *testing.T, nodes []*testNode) *testNode {
	t.Helper()
	h, key := newHost(t)
	d := newDHT(t, h, permissive{})
	a := &testNode{h: h, d: d, key: key}
	for _, n := range nodes[:3] {
		if err := h.Connect(context.Background(), peer.AddrInfo{ID: n.h.ID(), Addrs: n.h.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "attacker routing table", func() error {
		if d.RoutingTable().Size() == 0 {
			return errors.New("empty")
		}
		return nil
	})
	<-d.RefreshRoutingTable()
	return a
}
