package registry

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/aspnode/asp/protocol"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	ma "github.com/multiformats/go-multiaddr"
)

// Defaults of Config.
const (
	DefaultCardTTL           = 24 * time.Hour
	DefaultRepublishInterval = time.Hour
	DefaultRetryInterval     = 30 * time.Second
	DefaultCacheTTL          = 30 * time.Second
	DefaultDiscoverTimeout   = 3 * time.Second
	DefaultFetchTimeout      = 2 * time.Second
)

// Config configures a Registry. Host, Wire, Routing and Key are required.
type Config struct {
	// Host is the node's libp2p host (with the p2p package: h.Host()).
	Host host.Host
	// Wire serves ProtocolID and asks other organizations over it: the
	// node's *p2p.Host, on the same libp2p host as Host, whose request and
	// response frames bring their size caps, stream budgets and stall
	// deadlines.
	Wire Wire
	// Routing is the node's DHT (a *dht.IpfsDHT with the /asp protocol
	// prefix and Validator registered under Namespace).
	Routing routing.Routing
	// Key is the organization key: the Ed25519 key of Host's peer id.
	Key ed25519.PrivateKey
	// Validator is the validator the DHT was built with, so refusals on
	// either path are counted together. Nil: a new one over Metrics and
	// Clock.
	Validator *Validator
	// Metrics, used when Validator is nil. Nil: counted but not registered.
	Metrics *Metrics
	// Trust gives the local trust view of an agent. Nil: NeutralTrust.
	Trust TrustView
	// Clock reads the time for signing and checking cards. Nil: time.Now.
	Clock func() time.Time
	// Logger. Nil: slog.Default().
	Logger *slog.Logger

	// CardTTL is how long a signed card stays valid (default 24 h). Cards
	// are re-signed, with a new version, once half of it has passed.
	CardTTL time.Duration
	// RepublishInterval is how often Run puts every card on the DHT again
	// and re-provides every capability (default 1 h).
	RepublishInterval time.Duration
	// RetryInterval is how soon Run retries a failed announcement
	// (default 30 s).
	RetryInterval time.Duration
	// CacheTTL is how long a discovery answer is reused (default 30 s).
	// Run refreshes answers that are in use before they go stale.
	CacheTTL time.Duration
	// DiscoverTimeout bounds Discover and Lookup when ctx has no deadline
	// (default 3 s).
	DiscoverTimeout time.Duration
	// FetchTimeout bounds one request to a provider (default 2 s).
	FetchTimeout time.Duration
}

// Agent is what Publish needs to know about a local agent.
type Agent struct {
	Name         string   // the agent's name within the organization
	Description  string   // free text, at most MaxDescription bytes
	Capabilities []string // capability names; normalized, sorted, deduplicated
	// PublicKey is the agent's Ed25519 public key.
	PublicKey ed25519.PublicKey
	// Certificate of the agent, issued by the organization key. Nil: the
	// registry issues one for the card's lifetime and renews it with the
	// card. A given certificate is never renewed: the card's notAfter is
	// clamped to it.
	Certificate *protocol.Certificate
	// Endpoints to put on the card. Nil: the host's addresses, with /p2p/.
	Endpoints []string
}

// Registry publishes the cards of this node's agents on the DHT, serves
// them over ProtocolID, and discovers other organizations' agents by
// capability. Call Run to keep cards announced and answers fresh. It is
// safe for concurrent use.
type Registry struct {
	host    host.Host
	wire    Wire
	routing routing.Routing
	key     ed25519.PrivateKey
	self    peer.ID
	v       *Validator
	metrics *Metrics
	trust   TrustView
	clock   func() time.Time
	log     *slog.Logger

	cardTTL, republish, retry, cacheTTL, discoverTimeout, fetchTimeout time.Duration

	ctx    context.Context // ends at Close: background refreshes
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		closed bool
		// local holds the cards of local agents, tombstones included.
		// INVARIANT: raw is card.Marshal().
		local        map[string]*localCard
		lastAnnounce time.Time // last complete announcement
		lastAttempt  time.Time
		failed       bool // the last announcement failed
		cache        map[string]*cacheEntry
		refreshing   map[string]bool
		// seen is the highest verified version per agent id (rollback guard).
		seen map[string]uint64
		// known maps an organization to the agent ids it has answered
		// with, for the DHT fallback when it cannot be reached.
		known map[peer.ID]map[string]struct{}
	}
}

type localCard struct {
	card      *Card
	raw       []byte
	agent     Agent // what was published (nil Certificate: issued here)
	ownedCert bool
}

// New returns a Registry and starts serving ProtocolID on cfg.Wire.
func New(cfg Config) (*Registry, error) {
	if cfg.Host == nil || cfg.Wire == nil || cfg.Routing == nil {
		return nil, errors.New("registry: Host, Wire and Routing are required")
	}
	if len(cfg.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("registry: an Ed25519 organization Key is required")
	}
	if id := protocol.PeerIDFromPublicKey(cfg.Key.Public().(ed25519.PublicKey)); id != cfg.Host.ID().String() {
		return nil, fmt.Errorf("registry: Key is the key of %s, not of host %s", id, cfg.Host.ID())
	}
	r := &Registry{
		host:            cfg.Host,
		wire:            cfg.Wire,
		routing:         cfg.Routing,
		key:             cfg.Key,
		self:            cfg.Host.ID(),
		trust:           cfg.Trust,
		clock:           cfg.Clock,
		log:             cfg.Logger,
		cardTTL:         orDefault(cfg.CardTTL, DefaultCardTTL),
		republish:       orDefault(cfg.RepublishInterval, DefaultRepublishInterval),
		retry:           orDefault(cfg.RetryInterval, DefaultRetryInterval),
		cacheTTL:        orDefault(cfg.CacheTTL, DefaultCacheTTL),
		discoverTimeout: orDefault(cfg.DiscoverTimeout, DefaultDiscoverTimeout),
		fetchTimeout:    orDefault(cfg.FetchTimeout, DefaultFetchTimeout),
	}
	if r.clock == nil {
		r.clock = time.Now
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.trust == nil {
		r.trust = NeutralTrust
	}
	r.v = cfg.Validator
	if r.v == nil {
		m := cfg.Metrics
		if m == nil {
			m, _ = NewMetrics(nil)
		}
		r.v = NewValidator(m, r.clock)
	}
	r.metrics = r.v.metrics
	if r.metrics == nil {
		r.metrics, _ = NewMetrics(nil)
		r.v.metrics = r.metrics
	}
	r.mu.local = map[string]*localCard{}
	r.mu.cache = map[string]*cacheEntry{}
	r.mu.refreshing = map[string]bool{}
	r.mu.seen = map[string]uint64{}
	r.mu.known = map[peer.ID]map[string]struct{}{}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.wire.Handle(ProtocolID, r.serve)
	return r, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Close stops serving ProtocolID (a request on a stream already open is
// refused as unavailable) and waits for background refreshes. It
// does not close the host or the DHT.
func (r *Registry) Close() error {
	r.mu.Lock()
	if r.mu.closed {
		r.mu.Unlock()
		return nil
	}
	r.mu.closed = true
	r.mu.Unlock()
	r.wire.RemoveHandler(ProtocolID)
	r.cancel()
	r.wg.Wait()
	return nil
}

// Validator returns the validator the registry checks cards with.
func (r *Registry) Validator() *Validator { return r.v }

// Metrics returns the registry's metrics.
func (r *Registry) Metrics() *Metrics { return r.metrics }

// nextVersionLocked returns a version above prev: the current time in
// milliseconds, or prev+1 if the clock has not moved past prev. Versions
// therefore keep increasing across restarts without being stored.
func (r *Registry) nextVersionLocked(prev uint64, now time.Time) uint64 {
	v := uint64(max(now.UnixMilli(), 1))
	if v <= prev {
		v = prev + 1
	}
	return v
}

// endpoints returns the host's addresses with /p2p/<self>.
func (r *Registry) endpoints() []string {
	p2p, err := ma.NewComponent("p2p", r.self.String())
	if err != nil {
		return nil
	}
	var all []string
	for _, a := range r.host.Addrs() {
		s := a.Encapsulate(p2p.Multiaddr()).String()
		if len(s) <= maxEndpointLen {
			all = append(all, s)
		}
	}
	return fitEndpoints(all)
}

// fitEndpoints sorts and deduplicates addrs and keeps the first that fit
// within MaxEndpoints and EndpointBudget (3 bytes of it for the array's
// own header), so that a card CheckAgent passed stays within MaxCardSize.
func fitEndpoints(addrs []string) []string {
	addrs = slices.Clone(addrs)
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	var out []string
	used := 3
	for _, s := range addrs {
		if len(out) == MaxEndpoints || used+endpointCost(s) > EndpointBudget {
			break
		}
		out = append(out, s)
		used += endpointCost(s)
	}
	return out
}

// sign builds and signs the card of a at now with the given version.
func (r *Registry) sign(a Agent, version uint64, now time.Time) (*Card, []byte, error) {
	id := protocol.AgentID{Org: r.self.String(), Name: a.Name}
	c := &Card{
		AgentID:      id.String(),
		Org:          id.Org,
		Name:         a.Name,
		Description:  a.Description,
		Capabilities: a.Capabilities,
		Protocols:    []string{protocol.Version},
		Endpoints:    a.Endpoints,
		PublicKey:    slices.Clone(a.PublicKey),
		Version:      version,
		NotAfter:     protocol.Millis(now.Add(r.cardTTL)),
	}
	if c.Endpoints == nil {
		c.Endpoints = r.endpoints()
	}
	if a.Certificate != nil {
		c.Certificate = a.Certificate
		if c.NotAfter.After(a.Certificate.NotAfter) {
			c.NotAfter = a.Certificate.NotAfter
		}
	} else {
		cert, err := protocol.IssueCertificate(r.key, id, a.PublicKey, a.Capabilities, c.NotAfter)
		if err != nil {
			return nil, nil, fmt.Errorf("registry: issue certificate: %w", err)
		}
		c.Certificate = cert
	}
	if err := c.Sign(r.key); err != nil {
		return nil, nil, err
	}
	raw, err := c.Marshal()
	if err != nil {
		return nil, nil, err
	}
	if len(raw) > MaxCardSize {
		return nil, nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrOversized, len(raw), MaxCardSize)
	}
	if err := c.Verify(now); err != nil {
		return nil, nil, err
	}
	return c, raw, nil
}

// Publish signs the card of a local agent (a new version if it existed),
// serves it over ProtocolID at once, and announces it: the card is put
// on the DHT and every prefix of every capability is provided. It returns
// the card. If announcing fails (for example with no peers), the card is
// still published locally, the error wraps ErrNotAnnounced and Run
// retries; any other error means nothing changed.
func (r *Registry) Publish(ctx context.Context, a Agent) (*Card, error) {
	id := protocol.AgentID{Org: r.self.String(), Name: a.Name}
	if err := id.Validate(); err != nil {
		return nil, err
	}
	caps, err := NormalizeCapabilities(a.Capabilities)
	if err != nil {
		return nil, err
	}
	a.Capabilities = caps
	if len(a.PublicKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("registry: agent key of %d bytes", len(a.PublicKey))
	}
	now := r.clock()
	if cert := a.Certificate; cert != nil {
		if err := cert.Verify(now); err != nil {
			return nil, fmt.Errorf("registry: certificate: %w", err)
		}
		if cert.AgentID != id.String() || !slices.Equal(cert.PublicKey, a.PublicKey) {
			return nil, fmt.Errorf("registry: certificate is not that of %s and its key", id)
		}
	}
	r.mu.Lock()
	if r.mu.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	var prev uint64
	if e := r.mu.local[id.String()]; e != nil {
		prev = e.card.Version
	}
	c, raw, err := r.sign(a, r.nextVersionLocked(prev, now), now)
	if err != nil {
		r.mu.Unlock()
		return nil, err
	}
	r.mu.local[c.AgentID] = &localCard{card: c, raw: raw, agent: a, ownedCert: a.Certificate == nil}
	r.updateGaugeLocked()
	r.mu.Unlock()

	if err := r.announce(ctx, []*localCard{{card: c, raw: raw}}, capabilityPrefixes([]*Card{c})); err != nil {
		r.mu.Lock()
		r.mu.failed = true
		r.mu.Unlock()
		return c.Clone(), err
	}
	return c.Clone(), nil
}

// Withdraw removes a local agent: it stops serving its card and puts a
// signed tombstone (a newer, withdrawn version) on the DHT, kept and
// republished until the last card it replaces has expired. Provider
// records cannot be removed from the DHT; they lapse, and discovery skips
// an organization that no longer serves a matching card. ErrNotFound if
// the agent is unknown; an error wrapping ErrNotAnnounced if the tombstone
// could not be put on the DHT (Run retries).
func (r *Registry) Withdraw(ctx context.Context, agentID string) error {
	now := r.clock()
	r.mu.Lock()
	if r.mu.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	e := r.mu.local[agentID]
	if e == nil {
		r.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNotFound, agentID)
	}
	if e.card.Withdrawn {
		r.mu.Unlock()
		return nil
	}
	tomb, raw, err := r.tombstoneLocked(e.card, now)
	if err != nil {
		r.mu.Unlock()
		return err
	}
	r.mu.local[agentID] = &localCard{card: tomb, raw: raw}
	r.updateGaugeLocked()
	r.mu.Unlock()
	if err := r.announce(ctx, []*localCard{{card: tomb, raw: raw}}, nil); err != nil {
		r.mu.Lock()
		r.mu.failed = true
		r.mu.Unlock()
		return err
	}
	return nil
}

// tombstoneLocked signs the withdrawn version that replaces c. It lives
// at least as long as c. REQUIRES: r.mu.
func (r *Registry) tombstoneLocked(c *Card, now time.Time) (*Card, []byte, error) {
	t := &Card{
		AgentID:      c.AgentID,
		Org:          c.Org,
		Name:         c.Name,
		Capabilities: []string{},
		Protocols:    []string{protocol.Version},
		Endpoints:    []string{},
		Version:      r.nextVersionLocked(c.Version, now),
		NotAfter:     protocol.Millis(now.Add(r.cardTTL)),
		Withdrawn:    true,
	}
	if c.NotAfter.After(t.NotAfter) {
		t.NotAfter = c.NotAfter
	}
	if err := t.Sign(r.key); err != nil {
		return nil, nil, err
	}
	raw, err := t.Marshal()
	if err != nil {
		return nil, nil, err
	}
	return t, raw, nil
}

func (r *Registry) updateGaugeLocked() {
	n := 0
	for _, e := range r.mu.local {
		if !e.card.Withdrawn {
			n++
		}
	}
	r.metrics.published.Set(float64(n))
}

// Card returns the card of a local agent (not withdrawn).
func (r *Registry) Card(agentID string) (*Card, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.mu.local[agentID]
	if e == nil || e.card.Withdrawn {
		return nil, false
	}
	return e.card.Clone(), true
}

// Seen reports whether the registry holds a card of the agent: a local
// one, or a verified remote one it has fetched or discovered.
func (r *Registry) Seen(agentID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.mu.seen[agentID]; ok {
		return true
	}
	_, ok := r.mu.local[agentID]
	return ok
}

// Cards returns the cards of all local agents (not withdrawn), by agent id.
func (r *Registry) Cards() []*Card {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*Card
	for _, id := range r.localOrderLocked() {
		if e := r.mu.local[id]; !e.card.Withdrawn {
			out = append(out, e.card.Clone())
		}
	}
	return out
}

// localOrderLocked returns the local agent ids, sorted. REQUIRES: r.mu.
func (r *Registry) localOrderLocked() []string {
	ids := make([]string, 0, len(r.mu.local))
	for id := range r.mu.local {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// capabilityPrefixes returns every prefix of every capability of the live
// cards, sorted.
func capabilityPrefixes(cards []*Card) []string {
	var out []string
	for _, c := range cards {
		if c.Withdrawn {
			continue
		}
		for _, cp := range c.Capabilities {
			out = append(out, Prefixes(cp)...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// announce puts the cards on the DHT and provides the capabilities, a few
// at a time. Errors wrap ErrNotAnnounced.
func (r *Registry) announce(ctx context.Context, cards []*localCard, caps []string) error {
	type job func(context.Context) error
	var jobs []job
	for _, e := range cards {
		key, raw := e.card.Key(), e.raw
		jobs = append(jobs, func(ctx context.Context) error {
			if err := r.routing.PutValue(ctx, key, raw); err != nil {
				return fmt.Errorf("put %s: %w", key, err)
			}
			return nil
		})
	}
	for _, cp := range caps {
		c := CapabilityCID(cp)
		jobs = append(jobs, func(ctx context.Context) error {
			if err := r.routing.Provide(ctx, c, true); err != nil {
				return fmt.Errorf("provide %s (%s): %w", cp, c, err)
			}
			return nil
		})
	}
	errs := make([]error, len(jobs))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = j(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrNotAnnounced, err)
	}
	return nil
}

// Republish re-signs cards past half their lifetime (and renews the
// certificates the registry issued), drops tombstones that outlived what
// they replace, puts every card on the DHT again and provides every
// capability prefix. Run calls it; call it to force an announcement.
func (r *Registry) Republish(ctx context.Context) error {
	now := r.clock()
	r.mu.Lock()
	if r.mu.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	var cards []*localCard
	var live []*Card
	for _, id := range r.localOrderLocked() {
		e := r.mu.local[id]
		if e.card.Withdrawn {
			if now.After(e.card.NotAfter) {
				delete(r.mu.local, id)
				continue
			}
		} else if r.needsRenewal(e, now) {
			a := e.agent
			if e.ownedCert {
				a.Certificate = nil
			}
			c, raw, err := r.sign(a, r.nextVersionLocked(e.card.Version, now), now)
			if err != nil {
				r.log.Warn("registry: cannot renew card", "agent", id, "err", err)
			} else {
				e = &localCard{card: c, raw: raw, agent: e.agent, ownedCert: e.ownedCert}
				r.mu.local[id] = e
			}
		}
		if !now.After(e.card.NotAfter) {
			cards = append(cards, e)
			live = append(live, e.card)
		}
	}
	r.mu.lastAttempt = now
	r.mu.Unlock()

	err := r.announce(ctx, cards, capabilityPrefixes(live))
	r.mu.Lock()
	r.mu.failed = err != nil
	if err == nil {
		r.mu.lastAnnounce = now
	}
	r.mu.Unlock()
	if err != nil && len(r.host.Network().Peers()) == 0 {
		r.log.Warn("registry: no peers: agent cards are served locally but not announced on the DHT")
	}
	return err
}

// Run keeps the registry fresh until ctx ends: it republishes every
// RepublishInterval (sooner after a failure, every RetryInterval, and
// whenever a card needs re-signing) and refreshes cached discovery
// answers that are in use before they go stale. It returns ctx.Err().
func (r *Registry) Run(ctx context.Context) error {
	tick := min(r.republish, r.retry, r.cacheTTL/2)
	tick = max(tick, 10*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.ctx.Done():
			return ErrClosed
		case <-t.C:
			r.maintain(ctx)
		}
	}
}

// maintain is one step of Run.
func (r *Registry) maintain(ctx context.Context) {
	now := r.clock()
	r.mu.Lock()
	due := now.Sub(r.mu.lastAnnounce) >= r.republish ||
		(r.mu.failed && now.Sub(r.mu.lastAttempt) >= r.retry)
	for _, e := range r.mu.local {
		due = due || r.needsRenewal(e, now)
	}
	r.mu.Unlock()
	if due {
		if err := r.Republish(ctx); err != nil && !errors.Is(err, ErrClosed) {
			r.log.Debug("registry: republish", "err", err)
		}
	}
	r.refreshCache(now)
}

// needsRenewal reports whether e is a live card past half its lifetime
// that signing again would extend. REQUIRES: r.mu.
func (r *Registry) needsRenewal(e *localCard, now time.Time) bool {
	if e.card.Withdrawn || e.card.NotAfter.Sub(now) >= r.cardTTL/2 {
		return false
	}
	return e.ownedCert || (e.agent.Certificate != nil && e.agent.Certificate.NotAfter.After(e.card.NotAfter))
}
