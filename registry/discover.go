package registry

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aspnode/asp/protocol"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
)

// Source says where discovery obtained a card.
type Source string

// Sources of a discovered card.
const (
	SourceLocal Source = "local" // an agent of this node
	SourcePeer  Source = "peer"  // served by its organization over ProtocolID
	SourceDHT   Source = "dht"   // read from the DHT (organization unreachable)
)

// Match is one agent found by Discover.
type Match struct {
	Card   *Card  // verified, not withdrawn, not expired
	Trust  Trust  // the local trust view at the time of the answer
	Source Source // where the card came from
}

// Result is the answer of Discover.
type Result struct {
	Capability string  // the normalized capability searched
	Agents     []Match // ranked: trust score, then completed, then agent id
	// Partial is set when the answer may be incomplete: the deadline
	// passed before every provider was found and asked, or the node has
	// no peers.
	Partial bool
	// Cached is set when the network part of the answer came from the
	// cache (at most CacheTTL old).
	Cached bool
	// Providers counts the other organizations that advertise the
	// capability; Skipped those of them that gave no valid matching card.
	Providers, Skipped int
}

// DiscoverOption adjusts one Discover call.
type DiscoverOption func(*discoverOptions)

type discoverOptions struct{ fresh bool }

// Fresh makes Discover search the network even if a cached answer is
// still fresh (the new answer replaces it).
func Fresh() DiscoverOption { return func(o *discoverOptions) { o.fresh = true } }

// found is a verified card and where it came from.
type found struct {
	card   *Card
	source Source
}

// snapshot is what one network search found for a capability.
type snapshot struct {
	cards              []found // by agent id
	providers, skipped int
	partial            bool
	fetched            time.Time
}

type cacheEntry struct {
	snap     *snapshot
	lastUsed time.Time
}

const (
	fetchConcurrency = 32
	maxCacheEntries  = 1024
	maxSeen          = 1 << 16
	maxKnownOrgs     = 1 << 12
	maxFallbackCards = 16
)

// Discover finds agents offering capability (or a child of it: "compute"
// finds "compute.gpu-hours") across the network, this node's own agents
// included. It finds the organizations that provide the capability on the
// DHT, asks each for its matching cards over ProtocolID (falling back to
// the DHT records of agents it answered with before when it cannot be
// reached), verifies every card, attaches the trust view, drops agents
// scoring below minTrust, ranks the rest and returns at most limit of
// them (limit <= 0: all).
//
// Discover answers by ctx's deadline (DiscoverTimeout if it has none)
// with what it found, setting Partial if the search was cut short. The
// network part of a complete answer is cached for CacheTTL. An unknown
// capability gives an empty list; a malformed one an error wrapping
// ErrBadCapability.
func (r *Registry) Discover(ctx context.Context, capability string, minTrust float64, limit int, opts ...DiscoverOption) (*Result, error) {
	start := time.Now()
	q, err := NormalizeCapability(capability)
	if err != nil {
		return nil, err
	}
	var o discoverOptions
	for _, f := range opts {
		f(&o)
	}
	if r.isClosed() {
		return nil, ErrClosed
	}
	now := r.clock()
	var snap *snapshot
	cached := false
	if !o.fresh {
		r.mu.Lock()
		if e := r.mu.cache[q]; e != nil {
			e.lastUsed = now
			if now.Sub(e.snap.fetched) < r.cacheTTL {
				snap, cached = e.snap, true
			}
		}
		r.mu.Unlock()
	}
	if snap == nil {
		lctx, cancel := r.withDeadline(ctx)
		snap = r.lookup(lctx, q)
		cancel()
		r.store(q, snap, now)
	}
	res := r.assemble(q, snap, minTrust, limit, r.clock())
	res.Cached = cached
	switch {
	case cached:
		r.metrics.discoveries.WithLabelValues("cached").Inc()
	case res.Partial:
		r.metrics.discoveries.WithLabelValues("partial").Inc()
	default:
		r.metrics.discoveries.WithLabelValues("complete").Inc()
	}
	r.metrics.latency.Observe(time.Since(start).Seconds())
	return res, nil
}

func (r *Registry) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.closed
}

// withDeadline returns ctx bounded by its deadline (DiscoverTimeout if
// none) less a small margin to assemble the answer in.
func (r *Registry) withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok {
		d = time.Now().Add(r.discoverTimeout)
	}
	margin := min(25*time.Millisecond, time.Until(d)/10)
	return context.WithDeadline(ctx, d.Add(-margin))
}

// lookup searches the network for the remote cards matching q.
func (r *Registry) lookup(ctx context.Context, q string) *snapshot {
	snap := &snapshot{fetched: r.clock()}
	var mu sync.Mutex
	byID := map[string]found{}
	add := func(f found) {
		mu.Lock()
		defer mu.Unlock()
		if old, ok := byID[f.card.AgentID]; !ok || f.card.Version > old.card.Version {
			byID[f.card.AgentID] = f
		}
	}
	var wg sync.WaitGroup
	var skipped atomic.Int64
	sem := make(chan struct{}, fetchConcurrency)
	asked := map[peer.ID]bool{}
	for p := range r.routing.FindProvidersAsync(ctx, CapabilityCID(q), 0) {
		if p.ID == r.self || asked[p.ID] {
			continue
		}
		asked[p.ID] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				skipped.Add(1)
				return
			}
			defer func() { <-sem }()
			if r.fetchProvider(ctx, p, q, add) == 0 {
				skipped.Add(1)
			}
		}()
	}
	wg.Wait()
	snap.providers = len(asked)
	snap.skipped = int(skipped.Load())
	snap.partial = ctx.Err() != nil
	for _, f := range byID {
		snap.cards = append(snap.cards, f)
	}
	slices.SortFunc(snap.cards, func(a, b found) int { return cmp.Compare(a.card.AgentID, b.card.AgentID) })
	return snap
}

// fetchProvider asks provider p for its cards matching q and adds the
// valid ones; it returns how many it added.
func (r *Registry) fetchProvider(ctx context.Context, p peer.AddrInfo, q string, add func(found)) int {
	if len(p.Addrs) > 0 {
		r.host.Peerstore().AddAddrs(p.ID, p.Addrs, peerstore.TempAddrTTL)
	}
	fctx, cancel := context.WithTimeout(ctx, r.fetchTimeout)
	raws, err := r.request(fctx, p.ID, wireRequest{Op: opFind, Capability: q})
	cancel()
	if err != nil {
		r.log.Debug("registry: provider unreachable", "peer", p.ID, "capability", q, "err", err)
		return r.fallback(ctx, p.ID, q, add)
	}
	n := 0
	for _, raw := range raws {
		c, err := r.v.CheckFrom(p.ID.String(), raw)
		if err != nil {
			r.log.Debug("registry: card refused", "peer", p.ID, "err", err)
			continue
		}
		if c.Withdrawn || !c.Matches(q) || r.noteSeen(c) != nil {
			continue
		}
		r.noteKnown(p.ID, c.AgentID)
		add(found{card: c, source: SourcePeer})
		n++
	}
	return n
}

// fallback reads from the DHT the cards of the agents p answered with
// before, for when p cannot be reached.
func (r *Registry) fallback(ctx context.Context, p peer.ID, q string, add func(found)) int {
	r.mu.Lock()
	var ids []string
	for id := range r.mu.known[p] {
		ids = append(ids, id)
	}
	r.mu.Unlock()
	slices.Sort(ids)
	if len(ids) > maxFallbackCards {
		ids = ids[:maxFallbackCards]
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := r.dhtCard(ctx, id)
			if err != nil || c.Org != p.String() || c.Withdrawn || !c.Matches(q) {
				return
			}
			add(found{card: c, source: SourceDHT})
			n.Add(1)
		}()
	}
	wg.Wait()
	return int(n.Load())
}

// dhtCard reads and checks the card of agentID from the DHT.
func (r *Registry) dhtCard(ctx context.Context, agentID string) (*Card, error) {
	raw, err := r.routing.GetValue(ctx, CardKey(agentID))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNotFound, agentID, err)
	}
	c, err := r.v.Check(raw)
	if err != nil {
		return nil, err
	}
	if c.AgentID != agentID {
		return nil, r.metrics.reject(fmt.Errorf("%w: card of %s under the key of %s", ErrReplayed, c.AgentID, agentID))
	}
	if err := r.noteSeen(c); err != nil {
		return nil, err
	}
	return c, nil
}

// noteSeen records c's version and refuses (ErrReplayed, counted) a
// version older than one already verified for the agent.
func (r *Registry) noteSeen(c *Card) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v := r.mu.seen[c.AgentID]; c.Version < v {
		return r.metrics.reject(fmt.Errorf("%w: %s version %d after %d", ErrReplayed, c.AgentID, c.Version, v))
	}
	if len(r.mu.seen) >= maxSeen {
		clear(r.mu.seen)
	}
	r.mu.seen[c.AgentID] = c.Version
	return nil
}

func (r *Registry) noteKnown(p peer.ID, agentID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.mu.known[p]
	if m == nil {
		if len(r.mu.known) >= maxKnownOrgs {
			clear(r.mu.known)
		}
		m = map[string]struct{}{}
		r.mu.known[p] = m
	}
	if len(m) < 4*maxFallbackCards {
		m[agentID] = struct{}{}
	}
}

// store caches a complete snapshot.
func (r *Registry) store(q string, snap *snapshot, now time.Time) {
	if snap.partial {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.mu.cache[q]; e != nil {
		e.snap = snap
		return
	}
	if len(r.mu.cache) >= maxCacheEntries {
		var oldest string
		var t time.Time
		for k, e := range r.mu.cache {
			if oldest == "" || e.lastUsed.Before(t) {
				oldest, t = k, e.lastUsed
			}
		}
		delete(r.mu.cache, oldest)
	}
	r.mu.cache[q] = &cacheEntry{snap: snap, lastUsed: now}
}

// refreshCache searches again, in the background, for the cached answers
// used within the last 4 CacheTTL once they are half stale, and drops the
// others.
func (r *Registry) refreshCache(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.closed {
		return
	}
	for q, e := range r.mu.cache {
		if now.Sub(e.lastUsed) > 4*r.cacheTTL {
			delete(r.mu.cache, q)
			continue
		}
		if now.Sub(e.snap.fetched) < r.cacheTTL/2 || r.mu.refreshing[q] {
			continue
		}
		r.mu.refreshing[q] = true
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			ctx, cancel := context.WithTimeout(r.ctx, r.discoverTimeout)
			snap := r.lookup(ctx, q)
			cancel()
			r.store(q, snap, r.clock())
			r.mu.Lock()
			delete(r.mu.refreshing, q)
			r.mu.Unlock()
		}()
	}
}

// assemble merges the local cards with a snapshot, attaches trust,
// filters, ranks and limits.
func (r *Registry) assemble(q string, snap *snapshot, minTrust float64, limit int, now time.Time) *Result {
	res := &Result{Capability: q, Providers: snap.providers, Skipped: snap.skipped, Partial: snap.partial}
	have := map[string]bool{}
	var ms []Match
	r.mu.Lock()
	for _, id := range r.localOrderLocked() {
		c := r.mu.local[id].card
		if c.Matches(q) && !now.After(c.NotAfter) {
			ms = append(ms, Match{Card: c.Clone(), Source: SourceLocal})
			have[id] = true
		}
	}
	r.mu.Unlock()
	for _, f := range snap.cards {
		if have[f.card.AgentID] || now.After(f.card.NotAfter) {
			continue
		}
		ms = append(ms, Match{Card: f.card.Clone(), Source: f.source})
	}
	out := ms[:0]
	for _, m := range ms {
		s, l, n := r.trust(m.Card.AgentID)
		m.Trust = Trust{Score: s, Level: l, Completed: n}
		if s >= minTrust {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b Match) int {
		if c := cmp.Compare(b.Trust.Score, a.Trust.Score); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Trust.Completed, a.Trust.Completed); c != 0 {
			return c
		}
		return cmp.Compare(a.Card.AgentID, b.Card.AgentID)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	res.Agents = out
	if len(r.host.Network().Peers()) == 0 {
		res.Partial = true
	}
	return res
}

// Lookup returns the current card of any agent, local or remote: a local
// agent's own card; else the card its organization serves over
// ProtocolID; else, if the organization cannot be reached, the card on the
// DHT. ErrNotFound if there is none or the agent was withdrawn. Bounded by
// ctx's deadline (DiscoverTimeout if none).
func (r *Registry) Lookup(ctx context.Context, agentID string) (*Card, error) {
	a, err := protocol.ParseAgentID(agentID)
	if err != nil {
		return nil, err
	}
	if a.Org == r.self.String() {
		if c, ok := r.Card(agentID); ok {
			return c, nil
		}
		return nil, fmt.Errorf("%w: %s", ErrNotFound, agentID)
	}
	org, err := peer.Decode(a.Org)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	ctx, cancel := r.withDeadline(ctx)
	defer cancel()
	c, err := r.askOrg(ctx, org, agentID)
	if err != nil {
		r.log.Debug("registry: organization unreachable, reading the DHT", "org", org, "err", err)
		c, err = r.dhtCard(ctx, agentID)
		if err != nil {
			return nil, err
		}
	}
	if c == nil || c.Withdrawn {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, agentID)
	}
	return c, nil
}

// askOrg asks the organization for one card; (nil, nil) if it has none.
func (r *Registry) askOrg(ctx context.Context, org peer.ID, agentID string) (*Card, error) {
	if len(r.host.Peerstore().Addrs(org)) == 0 {
		fctx, cancel := context.WithTimeout(ctx, r.fetchTimeout)
		ai, err := r.routing.FindPeer(fctx, org)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("find %s: %w", org, err)
		}
		r.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
	}
	fctx, cancel := context.WithTimeout(ctx, r.fetchTimeout)
	defer cancel()
	raws, err := r.request(fctx, org, wireRequest{Op: opGet, AgentID: agentID})
	if err != nil {
		return nil, err
	}
	if len(raws) == 0 {
		return nil, nil
	}
	c, err := r.v.CheckFrom(org.String(), raws[0])
	if err != nil {
		return nil, err
	}
	if c.AgentID != agentID {
		return nil, r.metrics.reject(fmt.Errorf("%w: asked for %s, got %s", ErrReplayed, agentID, c.AgentID))
	}
	if err := r.noteSeen(c); err != nil {
		return nil, err
	}
	return c, nil
}
