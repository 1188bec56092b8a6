package attest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aspnode/asp/protocol"
	"github.com/hashicorp/golang-lru/v2/simplelru"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Topic is the GossipSub topic attestations travel on.
// Version 1.1 carries asp/1.1 attestations (with both receipts); nodes
// that speak only asp/1.0 attestations stay on "/asp/trust/1" and neither
// side penalises the other for a format it cannot read.
const Topic = "/asp/trust/1.1"

// Defaults of Config.
const (
	// DefaultHorizon is how old an attestation may be and still be
	// accepted from the network.
	DefaultHorizon = 7 * 24 * time.Hour
	// DefaultMaxSkew is how far ahead of the local clock an attestation's
	// time may be.
	DefaultMaxSkew = time.Minute
	// DefaultSeenSize is how many attestation hashes are remembered to
	// ignore duplicates (and, separately, how many rejected ones).
	DefaultSeenSize = 1 << 16
	// DefaultRate and DefaultBurst are each origin peer's token bucket:
	// attestations per second, and how many may come at once.
	DefaultRate  = 10
	DefaultBurst = 100
	// DefaultRatePeers is how many origin peers' buckets are kept (least
	// recently used ones are forgotten, which refills them).
	DefaultRatePeers = 4096
	// DefaultBufferSize is the capacity of each subscriber's channel.
	DefaultBufferSize = 256
	// evidenceCacheSize is how many verified commitments a Service keeps,
	// so that the second party's attestation about a commitment (and
	// later ones) costs two signature checks instead of six.
	evidenceCacheSize = 4096
)

// Config configures a Service. The zero value is usable: every field has
// a default.
type Config struct {
	// Clock reads the time for the freshness window. Nil: time.Now.
	Clock func() time.Time
	// Horizon: attestations older than this are ignored. Default
	// DefaultHorizon.
	Horizon time.Duration
	// MaxSkew: attestations whose time is more than this after the
	// clock's are ignored. Default DefaultMaxSkew; values above
	// MaxClockSkew act as MaxClockSkew (Verify's own bound).
	MaxSkew time.Duration
	// SeenSize bounds the set of attestation hashes remembered as seen
	// (and the set remembered as rejected). Default DefaultSeenSize.
	SeenSize int
	// Rate and Burst are the token bucket of each origin peer (the peer
	// that published a message, as signed in it): attestations beyond it
	// are ignored. Default DefaultRate and DefaultBurst; rate.Inf turns
	// the limit off.
	Rate  rate.Limit
	Burst int
	// RatePeers bounds how many origin peers' buckets are kept. Default
	// DefaultRatePeers.
	RatePeers int
	// BufferSize is the capacity of each channel Subscribe returns.
	// Default DefaultBufferSize.
	BufferSize int
	// Registerer receives the Service's counters (see metrics.go). Nil:
	// counted but not registered.
	Registerer prometheus.Registerer
	// Logger. Nil: discards.
	Logger *slog.Logger
	// AppScore is the application-specific part of a peer's GossipSub
	// score, typically fed from the trust model: see Service.AppScore.
	// Nil: 0 for every peer.
	AppScore func(peer.ID) float64
}

func (c Config) withDefaults() Config {
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Horizon <= 0 {
		c.Horizon = DefaultHorizon
	}
	if c.MaxSkew <= 0 {
		c.MaxSkew = DefaultMaxSkew
	}
	if c.SeenSize <= 0 {
		c.SeenSize = DefaultSeenSize
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Burst <= 0 {
		c.Burst = DefaultBurst
	}
	if c.RatePeers <= 0 {
		c.RatePeers = DefaultRatePeers
	}
	if c.BufferSize <= 0 {
		c.BufferSize = DefaultBufferSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Delivery is a verified attestation received on the topic (or published
// by this node).
type Delivery struct {
	Attestation *Attestation
	// Commitment is the commitment the evidence forms (its offer,
	// acceptance, parties, terms and both organisations' receipts; state
	// ACTIVE). Shared: do not modify.
	Commitment *protocol.Commitment
	// Hash is SHA-256 of the attestation's encoding (Attestation.Hash).
	Hash [32]byte
	// From is the peer that published it; ReceivedFrom the peer that
	// forwarded it to this node (both this node's id for its own).
	From, ReceivedFrom peer.ID
	// Local is true for attestations this node published.
	Local bool
}

// verified is what the validator leaves in pubsub.Message.ValidatorData;
// Publish passes one in, marked local, for its already verified item.
type verified struct {
	att   *Attestation
	c     *protocol.Commitment
	hash  [32]byte
	local bool
}

// seen states of an attestation hash.
const (
	pending  = iota // being validated
	accepted        // delivered
)

type subscriber struct {
	ch chan Delivery
}

// Service gossips attestations on Topic: it validates what arrives,
// publishes this node's own and hands verified ones to subscribers.
//
// The topic validator rejects only what is provably bad for everyone
// (undecodable, a bad signature, an attester that is not a party, evidence
// that does not form the commitment or lacks an organisation's receipt)
// and ignores duplicates (by
// attestation hash), stale items and items over their origin's rate
// limit, which GossipSub neither forwards nor holds against the sender.
//
// Its methods are safe for concurrent use.
type Service struct {
	cfg      Config
	m        *metrics
	appScore atomic.Pointer[func(peer.ID) float64]

	mu       sync.Mutex
	seen     *simplelru.LRU[[32]byte, int] // pending or accepted
	rejected *simplelru.LRU[[32]byte, error]
	limiters *simplelru.LRU[peer.ID, *rate.Limiter]
	evidence *simplelru.LRU[[32]byte, *protocol.Commitment]
	subs     map[*subscriber]struct{}
	ps       *pubsub.PubSub
	topic    *pubsub.Topic
	sub      *pubsub.Subscription
	cancel   context.CancelFunc
	done     chan struct{}
	joining  bool // Join called (and not failed)
	closed   bool
}

// New returns a Service configured by cfg; it does nothing until Join.
func New(cfg Config) (*Service, error) {
	cfg = cfg.withDefaults()
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("attest: metrics: %w", err)
	}
	s := &Service{cfg: cfg, m: m, subs: make(map[*subscriber]struct{})}
	if s.seen, err = simplelru.NewLRU[[32]byte, int](cfg.SeenSize, nil); err != nil {
		return nil, err
	}
	if s.rejected, err = simplelru.NewLRU[[32]byte, error](cfg.SeenSize, nil); err != nil {
		return nil, err
	}
	if s.limiters, err = simplelru.NewLRU[peer.ID, *rate.Limiter](cfg.RatePeers, nil); err != nil {
		return nil, err
	}
	if s.evidence, err = simplelru.NewLRU[[32]byte, *protocol.Commitment](evidenceCacheSize, nil); err != nil {
		return nil, err
	}
	if cfg.AppScore != nil {
		s.appScore.Store(&cfg.AppScore)
	}
	return s, nil
}

// Join registers the topic validator on ps, joins Topic and starts
// delivering to subscribers. Deliveries stop at Close or when ctx ends.
// A Service joins once.
func (s *Service) Join(ctx context.Context, ps *pubsub.PubSub) error {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return ErrClosed
	case s.joining:
		s.mu.Unlock()
		return errors.New("attest: already joined")
	}
	s.joining = true
	s.mu.Unlock()

	// Not under s.mu: these wait for GossipSub's event loop, while the
	// validator may already be running.
	topic, sub, err := s.join(ps)
	if err != nil {
		s.mu.Lock()
		s.joining = false
		s.mu.Unlock()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed { // Close ran meanwhile; it found nothing to release
		cancel()
		sub.Cancel()
		_ = topic.Close()
		_ = ps.UnregisterTopicValidator(Topic)
		return ErrClosed
	}
	s.ps, s.topic, s.sub, s.cancel = ps, topic, sub, cancel
	s.done = make(chan struct{})
	go s.run(ctx, sub, s.done)
	return nil
}

func (s *Service) join(ps *pubsub.PubSub) (*pubsub.Topic, *pubsub.Subscription, error) {
	if err := ps.RegisterTopicValidator(Topic, s.validate); err != nil {
		return nil, nil, fmt.Errorf("attest: register validator: %w", err)
	}
	topic, err := ps.Join(Topic)
	if err != nil {
		_ = ps.UnregisterTopicValidator(Topic)
		return nil, nil, fmt.Errorf("attest: join %s: %w", Topic, err)
	}
	sub, err := topic.Subscribe(pubsub.WithBufferSize(s.cfg.BufferSize))
	if err != nil {
		_ = topic.Close()
		_ = ps.UnregisterTopicValidator(Topic)
		return nil, nil, fmt.Errorf("attest: subscribe %s: %w", Topic, err)
	}
	return topic, sub, nil
}

// Publish verifies a, then publishes it. It returns an error wrapping
// ErrDuplicate if this Service has already seen a, ErrStale if a's time
// is outside the window, Verify's error if a does not verify, and
// ErrClosed before Join or after Close. Peers receive it only once
// GossipSub knows them as subscribers of the topic (see Peers).
func (s *Service) Publish(ctx context.Context, a *Attestation) error {
	s.mu.Lock()
	topic := s.topic
	s.mu.Unlock()
	if topic == nil {
		return ErrClosed
	}
	data, err := a.Encode()
	if err != nil {
		return err
	}
	h := sha256.Sum256(data)
	if !s.claim(h) {
		return fmt.Errorf("%w: %x", ErrDuplicate, h[:8])
	}
	now := s.cfg.Clock()
	if err := s.window(a.Time, now); err != nil {
		s.release(h)
		return err
	}
	c, err := a.verify(now, s)
	if err != nil {
		s.release(h)
		return err
	}
	if err := topic.Publish(ctx, data, pubsub.WithValidatorData(&verified{att: a, c: c, hash: h, local: true})); err != nil {
		s.release(h)
		return fmt.Errorf("attest: publish: %w", err)
	}
	s.m.published.Inc()
	return nil
}

// Subscribe returns a channel of verified attestations, each delivered
// once, in arrival order, this node's own included; and a function that
// ends the subscription and closes the channel. Deliveries that find the
// channel full are dropped (and counted): read promptly or size
// Config.BufferSize. Close closes every channel.
func (s *Service) Subscribe() (<-chan Delivery, func()) {
	sb := &subscriber{ch: make(chan Delivery, s.cfg.BufferSize)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		close(sb.ch)
		return sb.ch, func() {}
	}
	s.subs[sb] = struct{}{}
	var once sync.Once
	return sb.ch, func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if _, ok := s.subs[sb]; ok {
				delete(s.subs, sb)
				close(sb.ch)
			}
		})
	}
}

// Peers lists the peers GossipSub knows as subscribed to Topic.
func (s *Service) Peers() []peer.ID {
	s.mu.Lock()
	topic := s.topic
	s.mu.Unlock()
	if topic == nil {
		return nil
	}
	return topic.ListPeers()
}

// AppScore is the application-specific score of peer p, for GossipSub's
// peer scoring: the value of Config.AppScore (or of the function last
// given to SetAppScore), 0 when there is none or it is not finite. Give it
// to the host: p2p.Host.SetAppSpecificScore(svc.AppScore).
func (s *Service) AppScore(p peer.ID) float64 {
	f := s.appScore.Load()
	if f == nil {
		return 0
	}
	v := (*f)(p)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// SetAppScore replaces the function behind AppScore; nil makes every
// score 0.
func (s *Service) SetAppScore(f func(peer.ID) float64) {
	if f == nil {
		s.appScore.Store(nil)
		return
	}
	s.appScore.Store(&f)
}

// Close leaves the topic, removes the validator, stops deliveries and
// closes subscribers' channels. It is safe to call more than once.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ps, topic, sub, cancel, done := s.ps, s.topic, s.sub, s.cancel, s.done
	s.topic = nil
	s.mu.Unlock()

	var errs []error
	if ps != nil {
		cancel()
		sub.Cancel()
		<-done
		// After the host (and so the router) stopped these fail; there is
		// nothing left to release then.
		if err := topic.Close(); err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("attest: close topic: %w", err))
		}
		if err := ps.UnregisterTopicValidator(Topic); err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("attest: unregister validator: %w", err))
		}
	}
	s.mu.Lock()
	for sb := range s.subs {
		close(sb.ch)
		delete(s.subs, sb)
	}
	s.mu.Unlock()
	return errors.Join(errs...)
}

// run hands accepted messages to subscribers until ctx ends or the
// subscription is cancelled.
func (s *Service) run(ctx context.Context, sub *pubsub.Subscription, done chan<- struct{}) {
	defer close(done)
	for {
		msg, err := sub.Next(ctx)
		if err != nil {
			return
		}
		v, ok := msg.ValidatorData.(*verified)
		if !ok {
			continue // only the validator sets it; never happens
		}
		d := Delivery{
			Attestation:  v.att,
			Commitment:   v.c,
			Hash:         v.hash,
			From:         msg.GetFrom(),
			ReceivedFrom: msg.ReceivedFrom,
			Local:        v.local,
		}
		s.mu.Lock()
		for sb := range s.subs {
			select {
			case sb.ch <- d:
				s.m.delivered.Inc()
			default:
				s.m.dropped.Inc()
			}
		}
		s.mu.Unlock()
	}
}

// validate is the topic validator.
func (s *Service) validate(_ context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	r, err := s.judge(msg)
	s.m.count(r, err)
	if err != nil && r == pubsub.ValidationReject {
		s.cfg.Logger.Debug("attestation rejected", "from", from, "origin", msg.GetFrom(), "err", err)
	}
	return r
}

func (s *Service) judge(msg *pubsub.Message) (pubsub.ValidationResult, error) {
	data := msg.GetData()
	if len(data) > MaxSize {
		return pubsub.ValidationReject, fmt.Errorf("%w: %d bytes", ErrMalformed, len(data))
	}
	h := sha256.Sum256(data)
	// Only Publish sets ValidatorData before validation (pubsub clears it
	// on messages from the network); Publish has verified and claimed h.
	if v, ok := msg.ValidatorData.(*verified); ok && v.local && v.hash == h {
		s.settle(h)
		return pubsub.ValidationAccept, nil
	}
	s.mu.Lock()
	if err, bad := s.rejected.Get(h); bad {
		s.mu.Unlock()
		return pubsub.ValidationReject, err
	}
	if s.seen.Contains(h) {
		s.mu.Unlock()
		return pubsub.ValidationIgnore, ErrDuplicate
	}
	if !s.allowLocked(msg.GetFrom()) {
		s.mu.Unlock()
		return pubsub.ValidationIgnore, ErrRateLimited
	}
	s.seen.Add(h, pending)
	s.mu.Unlock()

	var c *protocol.Commitment
	a, err := Decode(data)
	if err == nil {
		now := s.cfg.Clock()
		if err = s.window(a.Time, now); err == nil {
			c, err = a.verify(now, s)
		}
	}
	switch {
	case err == nil:
		s.settle(h)
		msg.ValidatorData = &verified{att: a, c: c, hash: h}
		return pubsub.ValidationAccept, nil
	case Provable(err):
		s.mu.Lock()
		s.seen.Remove(h)
		s.rejected.Add(h, err)
		s.mu.Unlock()
		return pubsub.ValidationReject, err
	default:
		s.release(h)
		return pubsub.ValidationIgnore, err
	}
}

// get and put make the Service an evidenceCache.
func (s *Service) get(key [32]byte) (*protocol.Commitment, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.evidence.Get(key)
}

func (s *Service) put(key [32]byte, c *protocol.Commitment) {
	s.mu.Lock()
	s.evidence.Add(key, c)
	s.mu.Unlock()
}

// claim marks h pending unless it is already seen; it reports whether it
// did.
func (s *Service) claim(h [32]byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen.Contains(h) {
		return false
	}
	s.seen.Add(h, pending)
	return true
}

// settle marks h accepted.
func (s *Service) settle(h [32]byte) {
	s.mu.Lock()
	s.seen.Add(h, accepted)
	s.mu.Unlock()
}

// release forgets a pending h, which was ignored for a reason that may
// pass (its time, the rate limit).
func (s *Service) release(h [32]byte) {
	s.mu.Lock()
	if st, ok := s.seen.Peek(h); ok && st == pending {
		s.seen.Remove(h)
	}
	s.mu.Unlock()
}

// window checks t against the freshness window at now.
func (s *Service) window(t, now time.Time) error {
	if t.Before(now.Add(-s.cfg.Horizon)) {
		return fmt.Errorf("%w: %s is older than %v", ErrStale, protocol.FormatTime(t), s.cfg.Horizon)
	}
	if t.After(now.Add(s.cfg.MaxSkew)) {
		return fmt.Errorf("%w: %s is ahead of %s", ErrStale, protocol.FormatTime(t), protocol.FormatTime(now))
	}
	return nil
}

// allowLocked takes a token from origin's bucket.
// REQUIRES: s.mu.
func (s *Service) allowLocked(origin peer.ID) bool {
	if s.cfg.Rate == rate.Inf {
		return true
	}
	l, ok := s.limiters.Get(origin)
	if !ok {
		l = rate.NewLimiter(s.cfg.Rate, s.cfg.Burst)
		s.limiters.Add(origin, l)
	}
	return l.AllowN(s.cfg.Clock(), 1)
}
