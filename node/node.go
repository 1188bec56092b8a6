package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/p2p"
	"github.com/aspnode/asp/protocol"
	"github.com/aspnode/asp/registry"
	"github.com/aspnode/asp/registry/attest"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Version is the node software version.
const Version = "0.1.0"

// Option configures a Node.
type Option func(*options) error

type options struct {
	logger *slog.Logger
	clock  func() time.Time
	fs     vfs.FS
	rand   io.Reader
	noAPI  bool
	// transport and spawn replace the network and background goroutines
	// (the node harness, node/harness_test.go).
	transport transport
	spawn     func(func())
}

// WithRand sets the source of session and message ids and agent keys.
// Default crypto/rand. A deterministic reader makes a run replayable (the
// node harness); never use one in production.
func WithRand(r io.Reader) Option {
	return func(o *options) error { o.rand = r; return nil }
}

// WithLogger sets the logger. Default: discard.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error { o.logger = l; return nil }
}

// WithClock sets the clock. Default time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) error { o.clock = now; return nil }
}

// WithFS sets the filesystem of the ledger and the secret store. Default: the
// operating system's.
func WithFS(fs vfs.FS) Option {
	return func(o *options) error { o.fs = fs; return nil }
}

// WithoutAPI skips the HTTP listener (in-process tests call the Backend
// methods directly or mount Handler themselves).
func WithoutAPI() Option {
	return func(o *options) error { o.noAPI = true; return nil }
}

// Node is one organisation's node.
type Node struct {
	cfg  Config
	opts options
	log  *slog.Logger

	key       crypto.PrivKey
	orgKey    ed25519.PrivateKey
	peerID    string
	adminHash []byte

	led  *ledger.Ledger
	host *p2p.Host
	reg  *prometheus.Registry
	m    *metrics
	bus  *bus
	ckpt checkpointer
	sigs *sigCache // signatures already verified or made here
	// keyCert is our ledger's checkpoint-key certificate (JSON), sent with
	// every receipt so the counterparty can check the receipt's checkpoint.
	keyCert []byte
	// keyCerts holds counterparties' verified checkpoint-key certificates,
	// by certificate (JSON).
	keyCerts memo[keyCertEntry]
	// checkpoints holds the sizes of counterparties' verified checkpoints,
	// by organisation + "\n" + signed note.
	checkpoints memo[uint64]
	pcfg        protocol.Config

	agents *agentStore

	// consent is the invitation policy set at run time (nil: config.yaml's),
	// consentMu serialises its changes (consent.go).
	consent   atomic.Pointer[api.Consent]
	consentMu sync.Mutex

	sessions    *sessionTable
	commitments *commitmentBook
	disputes    *disputeBook

	ext wiring // registry and trust: wired in Start (absent under the node harness)

	wit *witnessing // witnessing (witness.go): absent under the node harness

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	httpSrv *http.Server
	apiURL  string
	handler http.Handler

	lock *homeLock // the home's lock (lock.go), held while running
	ops  opsState  // what asp status reports beside the tables (status.go)
}

// New prepares a node from cfg. It opens nothing; Start does.
func New(cfg Config, opts ...Option) (*Node, error) {
	cfg.fillDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{clock: time.Now, logger: slog.New(slog.DiscardHandler), rand: rand.Reader}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	n := &Node{
		cfg:         cfg,
		opts:        o,
		log:         o.logger,
		agents:      newAgentStore(),
		sessions:    newSessionTable(),
		commitments: newCommitmentBook(),
		disputes:    newDisputeBook(),
		sigs:        newSigCache(),
		keyCerts:    memo[keyCertEntry]{max: keyCertCacheMax},
		checkpoints: memo[uint64]{max: checkpointCacheMax},
	}
	n.pcfg = protocol.Config{InviteTimeout: cfg.InviteTimeout, Verified: n.sigs}
	return n, nil
}

func (n *Node) now() time.Time { return protocol.Millis(n.opts.clock()) }

// PeerID is the node's peer id (its organisation id). Valid after Start.
func (n *Node) PeerID() string { return n.peerID }

// Host is the node's libp2p host. Valid after Start.
func (n *Node) Host() *p2p.Host { return n.host }

// Ledger is the node's ledger. Valid after Start.
func (n *Node) Ledger() *ledger.Ledger { return n.led }

// Config returns the configuration the node runs with.
func (n *Node) Config() Config { return n.cfg }

// APIURL is the base URL of the HTTP API, after Start.
func (n *Node) APIURL() string { return n.apiURL }

// Handler is the HTTP API handler, after Start.
func (n *Node) Handler() http.Handler { return n.handler }

// Start opens the stores, joins the network, recovers sessions and
// commitments from the ledger, resumes pending deliveries and serves the API.
func (n *Node) Start(ctx context.Context) (err error) {
	home := n.cfg.Home
	n.key, err = LoadIdentity(home)
	if err != nil {
		return err
	}
	n.orgKey, err = p2p.Ed25519Key(n.key)
	if err != nil {
		return err
	}
	n.peerID = protocol.PeerIDFromPublicKey(n.orgKey.Public().(ed25519.PublicKey))
	tok, err := ReadAdminToken(home)
	if err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	if err := n.startChecks(tok); err != nil {
		return err
	}
	n.adminHash = tokenHash(tok)
	n.ops.started = n.opts.clock()

	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			n.Close()
		}
	}()

	n.reg = prometheus.NewRegistry()
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n.m = newMetrics(n.reg)
	n.bus = newBus(func() { n.m.eventsDropped.Inc() })

	n.agents.secrets, err = openSecrets(filepath.Join(home, StateDir), n.opts.fs, n.log, n.orgKey.Seed())
	if err != nil {
		return err
	}
	if err := n.openLedger(); err != nil {
		return err
	}
	if err := n.loadAgents(); err != nil {
		return err
	}
	if err := n.loadConsent(); err != nil {
		return err
	}
	if n.opts.transport != nil {
		// The node harness carries the session protocol and drives the
		// timers itself: no host, no registry or trust, no API listener.
		if err := n.recover(ctx); err != nil {
			return fmt.Errorf("recover from ledger: %w", err)
		}
		n.handler = n.apiHandler()
		n.log.Info("ready", "peer", n.peerID, "transport", "harness")
		return nil
	}
	protected, recovered := n.protection()
	n.host, err = p2p.New(n.ctx, p2p.Config{
		Key:         n.key,
		ListenAddrs: n.cfg.Listen,
		Bootstrap:   n.cfg.Bootstrap,
		Allow:       nil,
		Deny:        n.consentPolicy().Deny,
		MDNS:        n.mdnsName(),
	}, p2p.WithRegisterer(n.reg), p2p.WithLogger(n.log), p2p.WithValidator(registry.Namespace, n.registryValidator()), p2p.WithPreferTCP(),
		p2p.WithPeerScore(attest.PeerScoreParams()),
		// Counterparties keep room for their streams when others crowd
		// the session protocol (once recover has filled the maps).
		p2p.WithProtected(protected),
		// Keep enough idle streams for many concurrent sessions with one
		// counterparty: a new stream costs a protocol negotiation.
		p2p.WithStreamPoolSize(512))
	if err != nil {
		return fmt.Errorf("start libp2p: %w", err)
	}
	// Sessions are rebuilt before any peer is served: a request answered
	// from an empty session table would open a second copy of a session
	// (a resent invitation answered with a new consent reply) or refuse
	// moves the ledger holds.
	if err := n.recover(ctx); err != nil {
		return fmt.Errorf("recover from ledger: %w", err)
	}
	n.host.Handle(p2p.SessionProtocol, n.handleWire)
	if err := n.openWitness(); err != nil {
		return fmt.Errorf("witness: %w", err)
	}
	n.host.Handle(WitnessProtocol, n.handleWitness)
	recovered()
	if err := n.startExtensions(); err != nil {
		return err
	}
	if err := n.startEquivocations(); err != nil {
		return fmt.Errorf("checkpoints topic: %w", err)
	}
	n.handler = n.apiHandler()
	if !n.opts.noAPI {
		if err := n.serveAPI(); err != nil {
			return err
		}
	}
	// Timers: invitation timeouts, offer and commitment expiry, disputes.
	n.every(time.Second, func() {
		n.tick()
		n.expireDue(n.ctx)
		n.watchDisputes(n.ctx)
	})
	// Resends run apart from the timers: a counterparty that does not
	// answer delays its own resends, never another deadline.
	n.every(time.Second, func() {
		n.resendPending()
		n.resendDisputes()
	})
	n.every(n.cfg.Witness.Interval, n.witnessAll)
	n.wg.Add(1)
	go n.watchPeers()
	n.startBackupSchedule()
	if len(n.cfg.Bootstrap) > 0 {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			if err := n.host.Bootstrap(n.ctx); err != nil {
				n.log.Warn("bootstrap", "err", err)
			}
		}()
	}
	n.log.Info("ready", "peer", n.peerID, "api", n.apiURL, "addrs", n.host.Addrs())
	return nil
}

func (n *Node) serveAPI() error {
	ln, err := net.Listen("tcp", n.cfg.API)
	if err != nil {
		return fmt.Errorf("api listen %s: %w", n.cfg.API, err)
	}
	n.apiURL = "http://" + ln.Addr().String()
	if !isLoopback(ln.Addr()) {
		// The API takes bearer tokens over plain HTTP and the admin token
		// can create agents that sign for the organisation.
		n.log.Warn("API listens beyond loopback: anyone who can reach "+ln.Addr().String()+
			" can try bearer tokens, and tokens cross the network unencrypted; keep it on 127.0.0.1 or put TLS and a firewall in front",
			"api", ln.Addr().String())
	}
	srv := &http.Server{
		Handler:           n.handler,
		ReadHeaderTimeout: 10 * time.Second,
		// Request bodies are bounded by the API itself
		// (api.DefaultBodyTimeout); idle keep-alive connections are closed.
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    slog.NewLogLogger(n.log.Handler(), slog.LevelDebug),
	}
	n.httpSrv = srv
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("api", "err", err)
		}
	}()
	// The api file appears atomically, once the listener accepts.
	path := filepath.Join(n.cfg.Home, APIFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(n.apiURL+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// isLoopback reports whether a listener's address is a loopback address
// (0.0.0.0 and :: are every interface, not loopback).
func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// every runs f every d until the node closes, in a goroutine the node
// owns (Close waits for it).
func (n *Node) every(d time.Duration, f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-n.ctx.Done():
				return
			case <-t.C:
				f()
			}
		}
	}()
}

// Close shuts the node down: the API stops taking requests, sessions are
// left consistent (every acknowledged move is durable), the ledger is synced
// and closed. Close is safe to call more than once.
//
// The host and the ledger stay referenced after Close: a goroutine still
// finishing a request (the timer loop, a peer's stream handler) gets their
// "closed" errors, never a nil pointer.
func (n *Node) Close() error {
	if n.cancel == nil {
		return nil
	}
	n.closeOnce.Do(func() { n.closeErr = n.close() })
	return n.closeErr
}

func (n *Node) close() error {
	var errs []error
	if n.httpSrv != nil {
		os.Remove(filepath.Join(n.cfg.Home, APIFile))
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_ = n.httpSrv.Shutdown(ctx)
		cancel()
	}
	if n.bus != nil {
		n.bus.closeAll()
	}
	n.cancel()
	n.stopExtensions()
	if n.host != nil {
		errs = append(errs, n.host.Close())
	}
	n.wg.Wait()
	if n.led != nil {
		errs = append(errs, n.led.Close())
	}
	if n.agents.secrets != nil {
		errs = append(errs, n.agents.secrets.Close())
	}
	errs = append(errs, n.lock.release())
	return errors.Join(errs...)
}

// NodeInfo implements api.Backend.
func (n *Node) NodeInfo(ctx context.Context) (api.NodeInfo, error) {
	info := api.NodeInfo{PeerID: n.peerID, Org: n.cfg.Org, Version: Version}
	if n.host == nil {
		return info, nil // the node harness's transport: no addresses
	}
	for _, a := range n.host.Addrs() {
		info.Addrs = append(info.Addrs, a.String()+"/p2p/"+n.peerID)
	}
	info.Peers = len(n.host.Host().Network().Peers())
	if info.Peers == 0 {
		info.Warnings = append(info.Warnings, "no peers: this node is alone on the network (configure bootstrap peers)")
	}
	return info, nil
}

// Metrics implements api.Backend.
func (n *Node) Metrics() http.Handler {
	return promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{Registry: n.reg})
}

// Registerer is the node's Prometheus registry.
func (n *Node) Registerer() prometheus.Registerer { return n.reg }

var _ api.Backend = (*Node)(nil)
var _ api.SessionLister = (*Node)(nil)

// openLedger opens DIR/ledger with the node's checkpoint signer, whose key
// the identity key derives and certifies.
func (n *Node) openLedger() error {
	origin := ledger.OriginFor(n.peerID)
	signer, cert, err := ledger.NewCheckpointSigner(n.orgKey, origin)
	if err != nil {
		return err
	}
	n.keyCert, err = json.Marshal(cert)
	if err != nil {
		return err
	}
	n.led, err = ledger.Open(filepath.Join(n.cfg.Home, LedgerDir), ledger.Options{
		FS:             n.opts.fs,
		Logger:         n.log,
		Origin:         origin,
		Signer:         signer,
		KeyCertificate: cert,
		Now:            n.opts.clock,
		AllowRollback:  n.cfg.AllowRollback,
	})
	if err != nil {
		return fmt.Errorf("open ledger: %w", err)
	}
	return nil
}

var _ api.InvitationResponder = (*Node)(nil)
