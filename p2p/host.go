package p2p

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	routedhost "github.com/libp2p/go-libp2p/p2p/host/routed"
	yamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// UserAgent is the libp2p user agent a Host announces through identify.
const UserAgent = "asp-node"

// Host is a running libp2p host with the node's DHT, GossipSub and
// request/response handlers. Its methods are safe for concurrent use.
type Host struct {
	cfg       config
	host      host.Host // routed: dials peers without known addresses via the DHT
	basic     host.Host
	rm        network.ResourceManager
	dht       *dht.IpfsDHT
	ps        *pubsub.PubSub
	gater     *Gater
	mdns      mdns.Service // nil unless Config.MDNS
	bootstrap []peer.AddrInfo
	metrics   *metrics
	pool      streamPool
	limiter   rcmgr.Limiter // the resource manager's: Handle derives its stream budget from it
	strikes   strikes

	ctx      context.Context // cancelled by Close
	cancel   context.CancelFunc
	stopCtx  func() bool // detaches Close from the parent context
	appScore atomic.Pointer[func(peer.ID) float64]

	mu       sync.Mutex
	closed   bool
	handlers sync.WaitGroup // served streams; Add under mu while !closed
	bg       sync.WaitGroup // background goroutines

	closeOnce sync.Once
	closeErr  error
}

// New starts a libp2p host: TCP and QUIC transports listening on
// cfg.ListenAddrs, Noise and TLS security, yamux, the resource manager with
// DefaultLimits, a Gater from cfg.Allow and cfg.Deny, a Kademlia DHT in
// server mode under DHTProtocolPrefix, GossipSub with flood publishing, and
// mDNS discovery when cfg.MDNS names a service. It does not connect to the
// bootstrap peers; call Bootstrap.
//
// The host lives until Close is called or ctx is cancelled (which closes
// it); GossipSub runs on the host's context.
func New(ctx context.Context, cfg Config, opts ...Option) (_ *Host, err error) {
	if cfg.Key == nil {
		return nil, errors.New("p2p: Config.Key is required")
	}
	if cfg.Key.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("p2p: Config.Key is %v, want Ed25519", cfg.Key.Type())
	}
	c := defaultConfig()
	for _, o := range opts {
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	allow, err := ParsePeerIDs(cfg.Allow)
	if err != nil {
		return nil, fmt.Errorf("p2p: allow list: %w", err)
	}
	deny, err := ParsePeerIDs(cfg.Deny)
	if err != nil {
		return nil, fmt.Errorf("p2p: deny list: %w", err)
	}
	bootstrap, err := parseAddrInfos(cfg.Bootstrap)
	if err != nil {
		return nil, fmt.Errorf("p2p: bootstrap peers: %w", err)
	}
	listen := cfg.ListenAddrs
	if len(listen) == 0 {
		listen = DefaultListenAddrs
	}
	m, err := newMetrics(c.registerer)
	if err != nil {
		return nil, fmt.Errorf("p2p: metrics: %w", err)
	}

	h := &Host{cfg: c, gater: NewGater(allow, deny), bootstrap: bootstrap, metrics: m}
	h.pool = newStreamPool()

	limiter := c.limiter
	if limiter == nil {
		limiter = rcmgr.NewFixedLimiter(DefaultLimits())
	}
	h.limiter = limiter
	var rmOpts []rcmgr.Option
	if c.registerer == nil {
		rmOpts = append(rmOpts, rcmgr.WithMetricsDisabled())
	}
	h.rm, err = rcmgr.NewResourceManager(limiter, rmOpts...)
	if err != nil {
		return nil, fmt.Errorf("p2p: resource manager: %w", err)
	}
	defer func() {
		if err != nil {
			h.shutdown()
		}
	}()

	lopts := []libp2p.Option{
		libp2p.Identity(cfg.Key),
		libp2p.ListenAddrStrings(listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(h.rm),
		libp2p.ConnectionGater(h.gater),
		libp2p.UserAgent(UserAgent),
		// Nothing here advertises or uses relay addresses (no AutoRelay),
		// so the relay client would be dead weight.
		libp2p.DisableRelay(),
	}
	if c.registerer != nil {
		lopts = append(lopts, libp2p.PrometheusRegisterer(c.registerer))
	} else {
		lopts = append(lopts, libp2p.DisableMetrics())
	}
	if c.preferTCP {
		lopts = append(lopts, libp2p.SwarmOpts(swarm.WithDialRanker(tcpFirstRanker)))
	}
	lopts = append(lopts, c.libp2pOpts...)
	h.basic, err = libp2p.New(lopts...)
	if err != nil {
		return nil, fmt.Errorf("p2p: libp2p host: %w", err)
	}

	// The host's own context: values from ctx, lifetime until Close.
	h.ctx, h.cancel = context.WithCancel(context.WithoutCancel(ctx))

	dopts := []dht.Option{
		dht.Mode(dht.ModeServer),
		dht.ProtocolPrefix(DHTProtocolPrefix),
		dht.Validator(c.validators),
	}
	if len(bootstrap) > 0 {
		dopts = append(dopts, dht.BootstrapPeers(bootstrap...))
	}
	dopts = append(dopts, c.dhtOpts...)
	h.dht, err = dht.New(h.basic, dopts...)
	if err != nil {
		return nil, fmt.Errorf("p2p: dht: %w", err)
	}
	h.host = routedhost.Wrap(h.basic, h.dht)

	psOpts := []pubsub.Option{pubsub.WithFloodPublish(true)}
	if c.scoreParams != nil {
		params := *c.scoreParams
		if f := params.AppSpecificScore; f != nil {
			h.appScore.Store(&f)
		}
		params.AppSpecificScore = h.appSpecificScore
		psOpts = append(psOpts, pubsub.WithPeerScore(&params, c.scoreThresholds))
	}
	psOpts = append(psOpts, c.psOpts...)
	h.ps, err = pubsub.NewGossipSub(h.ctx, h.basic, psOpts...)
	if err != nil {
		return nil, fmt.Errorf("p2p: gossipsub: %w", err)
	}

	for _, ai := range bootstrap {
		h.basic.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.PermanentAddrTTL)
		h.basic.ConnManager().Protect(ai.ID, "asp-bootstrap")
	}
	h.basic.Network().Notify(&network.NotifyBundle{DisconnectedF: h.disconnected})
	h.bg.Add(1)
	go h.janitor()
	if cfg.MDNS != "" {
		h.mdns = mdns.NewMdnsService(h.basic, cfg.MDNS, mdnsNotifee{h})
		if err := h.mdns.Start(); err != nil {
			return nil, fmt.Errorf("p2p: mdns: %w", err)
		}
	}
	h.stopCtx = context.AfterFunc(ctx, func() { _ = h.Close() })
	return h, nil
}

func parseAddrInfos(addrs []string) ([]peer.AddrInfo, error) {
	mas := make([]ma.Multiaddr, 0, len(addrs))
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		mas = append(mas, a)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(mas...)
	if err != nil {
		return nil, err
	}
	return infos, nil
}

// tcpFirstRanker dials TCP addresses at once, QUIC ones after 250 ms and any
// others after 500 ms; libp2p cancels the later dials once one succeeds.
func tcpFirstRanker(addrs []ma.Multiaddr) []network.AddrDelay {
	out := make([]network.AddrDelay, 0, len(addrs))
	for _, a := range addrs {
		var d time.Duration
		switch {
		case hasProtocol(a, ma.P_QUIC_V1):
			d = 250 * time.Millisecond
		case hasProtocol(a, ma.P_TCP) && !hasProtocol(a, ma.P_WS) && !hasProtocol(a, ma.P_WSS):
			d = 0
		default:
			d = 500 * time.Millisecond
		}
		out = append(out, network.AddrDelay{Addr: a, Delay: d})
	}
	return out
}

func hasProtocol(a ma.Multiaddr, code int) bool {
	_, err := a.ValueForProtocol(code)
	return err == nil
}

// ID is the host's peer id.
func (h *Host) ID() peer.ID { return h.basic.ID() }

// Addrs are the addresses the host listens on, as announced to peers
// (without the /p2p/<id> suffix).
func (h *Host) Addrs() []ma.Multiaddr { return h.basic.Addrs() }

// AddrInfo is the host's peer id with its addresses, what another host
// passes to Connect.
func (h *Host) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
}

// P2PAddrs are the host's addresses with the /p2p/<id> suffix, in the form
// Config.Bootstrap takes.
func (h *Host) P2PAddrs() []ma.Multiaddr {
	out, _ := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	return out
}

// Host is the underlying libp2p host. It dials peers whose addresses it does
// not know by looking them up in the DHT.
func (h *Host) Host() host.Host { return h.host }

// DHT is the host's Kademlia DHT (server mode, prefix /asp).
func (h *Host) DHT() *dht.IpfsDHT { return h.dht }

// PubSub is the host's GossipSub router.
func (h *Host) PubSub() *pubsub.PubSub { return h.ps }

// Gater is the host's connection gater.
func (h *Host) Gater() *Gater { return h.gater }

// Context is the host's context, cancelled when the host closes. Handlers
// receive it (or a context derived from it).
func (h *Host) Context() context.Context { return h.ctx }

// Connect connects to a peer, adding its addresses to the peerstore. It
// fails when the gater refuses the peer.
func (h *Host) Connect(ctx context.Context, ai peer.AddrInfo) error {
	if ai.ID == h.ID() {
		return errors.New("p2p: connect to self")
	}
	if !h.gater.Allowed(ai.ID) {
		return fmt.Errorf("p2p: connect %s: %w", ai.ID, ErrPeerNotAllowed)
	}
	if err := h.host.Connect(ctx, ai); err != nil {
		return fmt.Errorf("p2p: connect %s: %w", ai.ID, err)
	}
	return nil
}

// ErrPeerNotAllowed is returned, wrapped, by Connect for a peer that the
// allow and deny lists refuse, or that is cooling off (see CoolOff).
var ErrPeerNotAllowed = errors.New("peer not allowed by the access lists")

// Bootstrap connects to the configured bootstrap peers, in parallel, and
// starts a refresh of the DHT's routing table. It fails only when there are
// bootstrap peers and none could be reached (the error joins each one's);
// the DHT refresh runs on in the background.
func (h *Host) Bootstrap(ctx context.Context) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		ok   int
	)
	for _, ai := range h.bootstrap {
		if ai.ID == h.ID() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := h.Connect(ctx, ai)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				h.cfg.logger.Warn("bootstrap peer unreachable", "peer", ai.ID, "err", err)
				errs = append(errs, err)
				return
			}
			ok++
		}()
	}
	wg.Wait()
	if ok == 0 && len(errs) > 0 {
		return fmt.Errorf("p2p: bootstrap: no peer reachable: %w", errors.Join(errs...))
	}
	if err := h.dht.Bootstrap(ctx); err != nil {
		return fmt.Errorf("p2p: dht bootstrap: %w", err)
	}
	return nil
}

// SetAccessLists replaces the allow and deny lists (peer ids as strings; see
// Config.Allow and Config.Deny) and closes open connections to peers they
// now refuse. On a parse error nothing changes.
func (h *Host) SetAccessLists(allow, deny []string) error {
	a, err := ParsePeerIDs(allow)
	if err != nil {
		return fmt.Errorf("p2p: allow list: %w", err)
	}
	d, err := ParsePeerIDs(deny)
	if err != nil {
		return fmt.Errorf("p2p: deny list: %w", err)
	}
	h.gater.Set(a, d)
	for _, p := range h.basic.Network().Peers() {
		if !h.gater.Allowed(p) {
			_ = h.basic.Network().ClosePeer(p)
		}
	}
	return nil
}

// ErrNoPeerScore is returned by SetAppSpecificScore on a host built without
// WithPeerScore.
var ErrNoPeerScore = errors.New("p2p: GossipSub peer scoring is off (see WithPeerScore)")

// SetAppSpecificScore sets the application-specific component of GossipSub
// peer scores (for example, from the trust model); nil makes it 0. It
// requires WithPeerScore.
func (h *Host) SetAppSpecificScore(f func(peer.ID) float64) error {
	if h.cfg.scoreParams == nil {
		return ErrNoPeerScore
	}
	if f == nil {
		h.appScore.Store(nil)
		return nil
	}
	h.appScore.Store(&f)
	return nil
}

func (h *Host) appSpecificScore(p peer.ID) float64 {
	if f := h.appScore.Load(); f != nil {
		return (*f)(p)
	}
	return 0
}

// Close stops GossipSub, the DHT and the host, resets streams still open,
// and waits for handlers to return (their context is cancelled first; a
// handler that ignores it holds Close up). It is safe to call more than once; later
// calls return the first call's result.
func (h *Host) Close() error {
	h.closeOnce.Do(func() {
		if h.stopCtx != nil {
			h.stopCtx()
		}
		h.closeErr = h.shutdown()
	})
	return h.closeErr
}

// shutdown releases whatever New built, in reverse order.
func (h *Host) shutdown() error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	if h.cancel != nil {
		h.cancel() // stops GossipSub and the janitor; tells handlers
	}
	var errs []error
	if h.mdns != nil {
		if err := h.mdns.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close mdns: %w", err))
		}
	}
	if h.dht != nil {
		if err := h.dht.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close dht: %w", err))
		}
	}
	h.pool.closeAll()
	if h.basic != nil {
		if err := h.basic.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close host: %w", err))
		}
	}
	h.handlers.Wait()
	h.bg.Wait()
	if h.rm != nil {
		if err := h.rm.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close resource manager: %w", err))
		}
	}
	return errors.Join(errs...)
}
