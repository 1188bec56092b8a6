package p2p

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults used by New when no Option says otherwise.
const (
	// DefaultIdleTimeout is how long a stream may sit idle between frames
	// before it is reset (see WithIdleTimeout).
	DefaultIdleTimeout = time.Minute

	// DefaultRequestTimeout bounds a Request whose context has no deadline
	// (see WithRequestTimeout).
	DefaultRequestTimeout = 30 * time.Second

	// DefaultStreamPoolSize is how many idle outbound streams are kept per
	// peer and protocol for reuse (see WithStreamPoolSize).
	DefaultStreamPoolSize = 4

	// DHTProtocolPrefix is the Kademlia protocol prefix of ASP nodes: their
	// DHT speaks /asp/kad/1.0.0 and never mixes with the public IPFS DHT.
	DHTProtocolPrefix = "/asp"

	// SessionProtocol is the stream protocol of ASP sessions.
	SessionProtocol = "/asp/session/1.0.0"
)

// DefaultListenAddrs are the addresses a Host listens on when
// Config.ListenAddrs is empty: every IPv4 interface, an ephemeral port, TCP
// and QUIC.
var DefaultListenAddrs = []string{
	"/ip4/0.0.0.0/tcp/0",
	"/ip4/0.0.0.0/udp/0/quic-v1",
}

// Config is what a node's configuration says about its network presence.
type Config struct {
	// Key is the host's identity, an Ed25519 key (see LoadOrCreateKey).
	// Required.
	Key crypto.PrivKey

	// ListenAddrs are multiaddrs to listen on. Empty means
	// DefaultListenAddrs.
	ListenAddrs []string

	// Bootstrap are full multiaddrs (ending in /p2p/<peer id>) of peers that
	// Bootstrap connects to and that the DHT falls back on when its routing
	// table runs low.
	Bootstrap []string

	// Allow, when not empty, lists the only peer ids this host connects to
	// or accepts connections from; empty means every peer. It covers every
	// connection, DHT and GossipSub included, so a node with an allow list
	// meets only the peers on it.
	Allow []string

	// Deny lists peer ids this host never connects to nor accepts. Deny wins
	// over Allow.
	Deny []string

	// MDNS, when not empty, is the service name under which the host
	// announces itself on the LAN with multicast DNS; it then connects to
	// the hosts that announce themselves under the same name (never to
	// itself; a host it cannot reach is logged at debug level, one it
	// connects to at info level). The service starts in New and stops in
	// Close. mDNS multicasts on every interface that allows it. Empty, the
	// default, means off.
	MDNS string
}

// Option configures a Host beyond its Config.
type Option func(*config) error

type config struct {
	registerer      prometheus.Registerer
	validators      record.NamespacedValidator
	dhtOpts         []dht.Option
	psOpts          []pubsub.Option
	scoreParams     *pubsub.PeerScoreParams
	scoreThresholds *pubsub.PeerScoreThresholds
	limiter         rcmgr.Limiter
	idleTimeout     time.Duration
	requestTimeout  time.Duration
	poolSize        int
	maxStreams      int
	logger          *slog.Logger
	preferTCP       bool
	errorMapper     func(error) *RemoteError
	libp2pOpts      []libp2p.Option
	protected       func(peer.ID) bool
}

func defaultConfig() config {
	return config{
		validators:     record.NamespacedValidator{"pk": record.PublicKeyValidator{}},
		idleTimeout:    DefaultIdleTimeout,
		requestTimeout: DefaultRequestTimeout,
		poolSize:       DefaultStreamPoolSize,
		logger:         slog.New(slog.DiscardHandler),
		errorMapper:    defaultErrorMapper,
	}
}

// WithRegisterer registers libp2p's metrics (swarm, resource manager,
// identify, ...) and this package's counters on reg. By default libp2p's
// metrics are off and this package's counters are kept but not registered.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(c *config) error {
		if reg == nil {
			return errors.New("p2p: WithRegisterer: nil registerer")
		}
		if c.registerer != nil {
			return errors.New("p2p: WithRegisterer given twice")
		}
		c.registerer = reg
		return nil
	}
}

// WithValidator makes the DHT accept records under /<ns>/ that v validates,
// and choose among them with v.Select. By default only the "pk" namespace
// (public keys) is served. A namespace may be given once.
func WithValidator(ns string, v record.Validator) Option {
	return func(c *config) error {
		if ns == "" || v == nil {
			return errors.New("p2p: WithValidator: empty namespace or nil validator")
		}
		if _, dup := c.validators[ns]; dup && ns != "pk" {
			return fmt.Errorf("p2p: WithValidator: namespace %q given twice", ns)
		}
		c.validators[ns] = v
		return nil
	}
}

// WithDHTOptions appends options to those New gives dht.New (server mode,
// protocol prefix /asp, the validators, the bootstrap peers). Options given
// here are applied last and win.
func WithDHTOptions(opts ...dht.Option) Option {
	return func(c *config) error {
		c.dhtOpts = append(c.dhtOpts, opts...)
		return nil
	}
}

// WithPubSubOptions appends options to those New gives
// pubsub.NewGossipSub (flood publish on, and the peer score when
// WithPeerScore is given). Options given here are applied last and win.
func WithPubSubOptions(opts ...pubsub.Option) Option {
	return func(c *config) error {
		c.psOpts = append(c.psOpts, opts...)
		return nil
	}
}

// WithPeerScore turns on GossipSub peer scoring with the given parameters
// (pubsub.WithPeerScore). The application-specific part of the score can be
// replaced at any time with Host.SetAppSpecificScore; params.AppSpecificScore,
// when set, is its initial value. Off by default.
func WithPeerScore(params *pubsub.PeerScoreParams, thresholds *pubsub.PeerScoreThresholds) Option {
	return func(c *config) error {
		if params == nil || thresholds == nil {
			return errors.New("p2p: WithPeerScore: nil params or thresholds")
		}
		if c.scoreParams != nil {
			return errors.New("p2p: WithPeerScore given twice")
		}
		c.scoreParams, c.scoreThresholds = params, thresholds
		return nil
	}
}

// WithLimiter replaces the resource manager's limits. The default is
// DefaultLimits().
func WithLimiter(l rcmgr.Limiter) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("p2p: WithLimiter: nil limiter")
		}
		c.limiter = l
		return nil
	}
}

// WithIdleTimeout sets how long a stream served by Handle may wait for the
// next request frame before it is reset (at most UnprotectedIdleTimeout for
// a stream in the shared budget; a frame once started is bound by
// MinFrameRate instead); pooled outbound streams idle for more than half of
// the lesser of the two are closed rather than reused. Default
// DefaultIdleTimeout.
func WithIdleTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("p2p: WithIdleTimeout: %v is not positive", d)
		}
		c.idleTimeout = d
		return nil
	}
}

// WithRequestTimeout bounds Requests whose context has no deadline. Default
// DefaultRequestTimeout.
func WithRequestTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("p2p: WithRequestTimeout: %v is not positive", d)
		}
		c.requestTimeout = d
		return nil
	}
}

// WithStreamPoolSize sets how many idle outbound streams Request keeps per
// peer and protocol for later requests; 0 opens a new stream for every
// request. Default DefaultStreamPoolSize.
func WithStreamPoolSize(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return fmt.Errorf("p2p: WithStreamPoolSize: %d is negative", n)
		}
		c.poolSize = n
		return nil
	}
}

// WithMaxStreamsPerPeer caps the request streams (idle or in use, all
// protocols) open to one peer; a Request beyond the cap waits for another
// to finish with its stream. The default, 0, picks the cap from the
// connection: 224 over QUIC, which allows 256 streams per connection in
// all, or while no connection is known; 896 over TCP, under DefaultLimits'
// 1024 outbound streams per peer.
func WithMaxStreamsPerPeer(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return fmt.Errorf("p2p: WithMaxStreamsPerPeer: %d is negative", n)
		}
		c.maxStreams = n
		return nil
	}
}

// WithLogger sets the logger for this package's own events (refused frames,
// handler panics, bootstrap failures). The default discards them.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("p2p: WithLogger: nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithPreferTCP dials a peer's TCP addresses first and its QUIC addresses
// only if TCP has not connected within 250 ms. libp2p's default ranker, used
// otherwise, prefers QUIC; on loopback and LANs TCP has the lower round trip.
func WithPreferTCP() Option {
	return func(c *config) error {
		c.preferTCP = true
		return nil
	}
}

// WithErrorMapper sets how an error returned by a Handler becomes the
// RemoteError sent to the requesting peer. The default sends a *RemoteError
// found in the chain (errors.As) as it is, and anything else as code
// "internal" with the message "internal error", so that nothing private
// leaks to another organization.
func WithErrorMapper(f func(error) *RemoteError) Option {
	return func(c *config) error {
		if f == nil {
			return errors.New("p2p: WithErrorMapper: nil mapper")
		}
		c.errorMapper = f
		return nil
	}
}

// WithLibp2pOptions appends raw libp2p options, applied after New's own.
// Options that conflict with New's (a second identity, resource manager or
// connection gater) make New fail.
func WithLibp2pOptions(opts ...libp2p.Option) Option {
	return func(c *config) error {
		c.libp2pOpts = append(c.libp2pOpts, opts...)
		return nil
	}
}

// WithProtected names the peers with which the node has live business (for
// example, the counterparties of its open sessions and commitments). Their
// inbound streams are served beyond the budget that all other peers share,
// from the room the resource manager keeps for the protocol, and they are
// never cooled off; see the package documentation, "Stream budgets and
// stalls". f is called only for a peer already beyond that budget, or at its
// StrikeLimit, and must be fast and safe for concurrent use. By default no
// peer is protected.
func WithProtected(f func(peer.ID) bool) Option {
	return func(c *config) error {
		if f == nil {
			return errors.New("p2p: WithProtected: nil function")
		}
		c.protected = f
		return nil
	}
}
