package node

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Files and folders inside a node's home.
const (
	IdentityFile   = "identity.key" // libp2p-marshalled Ed25519 private key, 0600
	ConfigFile     = "config.yaml"
	AdminTokenFile = "admin.token" // 64 hex characters, 0600
	LedgerDir      = "ledger"
	StateDir       = "state"
	APIFile        = "api" // the API base URL, present while the node serves
)

// Consent policies for incoming session invitations.
const (
	ConsentAcceptAll = "accept-all" // every invitation is accepted
	ConsentAllowList = "allow-list" // invitations from organisations in Allow are accepted, others declined
	ConsentAsk       = "ask"        // the invited agent decides
)

// Config is a node's configuration: config.yaml in its home, overridden by
// flags.
type Config struct {
	// Home is the node's home directory. Not stored in the file.
	Home string `yaml:"-"`
	// Org is the organisation's display name.
	Org string `yaml:"org"`
	// API is the local HTTP API address. Default 127.0.0.1:0 (a free port on
	// loopback only).
	API string `yaml:"api"`
	// Listen are the libp2p listen multiaddrs. Default: TCP and QUIC on every
	// interface, ports picked by the system.
	Listen []string `yaml:"listen"`
	// Bootstrap are multiaddrs (with /p2p/<peerId>) of peers to join.
	Bootstrap []string `yaml:"bootstrap"`
	// Consent is the invitation policy: accept-all (default), allow-list or ask.
	Consent string `yaml:"consent"`
	// Allow lists organisations (peer ids) whose invitations are accepted
	// under allow-list, and whose connections are the only ones allowed when
	// ConnAllow is set.
	Allow []string `yaml:"allow"`
	// Deny lists organisations (peer ids) whose connections are refused.
	Deny []string `yaml:"deny"`
	// InviteTimeout is how long an invitation may go unanswered. Default 30s.
	InviteTimeout time.Duration `yaml:"inviteTimeout"`
	// PreTrusted lists organisations (peer ids) whose attestations this node
	// trusts a priori, beside its own counterparties.
	PreTrusted []string `yaml:"preTrusted"`
	// MinTrust is the lowest trust score (0–100) of an agent whose
	// invitations are accepted; lower ones are declined with
	// insufficient_trust_score. Default 0: everyone.
	MinTrust float64 `yaml:"minTrust"`
	// MaxInboundSessionsPerOrg bounds the sessions that one other
	// organisation has opened with this node and that are still open
	// (not CLOSED or FAILED), hold no commitment and saw a move in the
	// last hour; an invitation beyond it is refused with
	// capacity_unavailable. Default 4096.
	MaxInboundSessionsPerOrg int `yaml:"maxInboundSessionsPerOrg"`
	// MaxInboundSessions bounds the same sessions for all other
	// organisations together; beyond it only organisations with live
	// business (hasBusiness) may open more. Default 32768.
	MaxInboundSessions int `yaml:"maxInboundSessions"`
	// MDNS turns on LAN discovery. Default off.
	MDNS bool `yaml:"mdns"`
	// LogLevel is debug, info (default), warn or error.
	LogLevel string `yaml:"logLevel"`
	// Backup schedules backups (backupschedule.go). Default off.
	Backup BackupConfig `yaml:"backup"`
	// AllowRollback starts the node on a ledger that holds fewer entries
	// than it acknowledged (ledger.ErrRolledBack), recording the rollback
	// in the ledger (ledger.Options.AllowRollback). Only from the command
	// line (asp node --allow-rollback), never from the file.
	AllowRollback bool `yaml:"-"`
	// Witness configures witnessing (docs/node.md "Witnessing").
	Witness WitnessConfig `yaml:"witness"`
	// Disputes is the dispute policy (policy.go); empty fields take
	// their defaults.
	Disputes DisputePolicy `yaml:"disputes,omitempty"`

	// listenDefaulted is set when Listen came from the defaults, not
	// from the file or flags (startup.go warns about every interface).
	listenDefaulted bool
}

// WitnessConfig configures witnessing between organisations.
type WitnessConfig struct {
	// Interval is the longest time between two rounds in which the node
	// asks its witnesses to cosign its latest checkpoint. Default 1m.
	Interval time.Duration `yaml:"interval"`
	// Peers are organisations (peer ids) asked to witness this node's
	// ledger beside its counterparties, and whose ledgers it witnesses.
	Peers []string `yaml:"peers"`
}

// DefaultConfig is the configuration asp init writes.
func DefaultConfig(org string) Config {
	return Config{
		Org:           org,
		API:           "127.0.0.1:0",
		Listen:        []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"},
		Consent:       ConsentAcceptAll,
		InviteTimeout: 30 * time.Second,
		LogLevel:      "info",

		MaxInboundSessionsPerOrg: 4096,
		MaxInboundSessions:       32768,
	}
}

// TestProfile adjusts c for tests and local testnets: loopback only, no
// bootstrap, no mDNS.
func (c *Config) TestProfile() {
	c.Listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	c.API = "127.0.0.1:0"
	c.Bootstrap = nil
	c.MDNS = false
}

func (c *Config) fillDefaults() {
	d := DefaultConfig(c.Org)
	if c.API == "" {
		c.API = d.API
	}
	if len(c.Listen) == 0 {
		c.Listen = d.Listen
		c.listenDefaulted = true
	}
	if c.Consent == "" {
		c.Consent = d.Consent
	}
	if c.InviteTimeout <= 0 {
		c.InviteTimeout = d.InviteTimeout
	}
	if c.LogLevel == "" {
		c.LogLevel = d.LogLevel
	}
	if c.MaxInboundSessionsPerOrg <= 0 {
		c.MaxInboundSessionsPerOrg = d.MaxInboundSessionsPerOrg
	}
	if c.MaxInboundSessions <= 0 {
		c.MaxInboundSessions = d.MaxInboundSessions
	}
	if c.Witness.Interval <= 0 {
		c.Witness.Interval = time.Minute
	}
}

// Validate reports a configuration error.
func (c *Config) Validate() error {
	switch c.Consent {
	case ConsentAcceptAll, ConsentAllowList, ConsentAsk:
	default:
		return fmt.Errorf("config: consent %q: want accept-all, allow-list or ask", c.Consent)
	}
	if c.Home == "" {
		return errors.New("config: no home directory")
	}
	// NaN passes every comparison: name it, or minTrust: .nan would admit
	// everyone while reading as a bound.
	if math.IsNaN(c.MinTrust) || c.MinTrust < 0 || c.MinTrust > 100 {
		return fmt.Errorf("config: minTrust %v: want a number from 0 to 100", c.MinTrust)
	}
	for _, p := range c.Witness.Peers {
		if _, err := peer.Decode(p); err != nil {
			return fmt.Errorf("config: witness.peers: %q is not a peer id", p)
		}
	}
	if _, err := resolvePolicy(c.Disputes); err != nil {
		return fmt.Errorf("config: disputes: %w", err)
	}
	return c.validateMore()
}

// ErrHomeExists is returned by Init for a home that already holds a node.
var ErrHomeExists = errors.New("home already initialised")

// Init creates a node home: identity key, config file, admin token and data
// directories. It refuses to touch a home that already has an identity or a
// config. profile "test" writes the test profile (loopback, no bootstrap).
func Init(home, org, profile string) (Config, error) {
	if home == "" {
		return Config{}, errors.New("init: --home is required")
	}
	for _, f := range []string{IdentityFile, ConfigFile, AdminTokenFile} {
		if _, err := os.Stat(filepath.Join(home, f)); err == nil {
			return Config{}, fmt.Errorf("init %s: %w (%s exists)", home, ErrHomeExists, f)
		}
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return Config{}, fmt.Errorf("init: %w", err)
	}
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return Config{}, fmt.Errorf("init: generate identity: %w", err)
	}
	raw, err := crypto.MarshalPrivateKey(priv)
	if err != nil {
		return Config{}, fmt.Errorf("init: %w", err)
	}
	if err := writeFileExcl(filepath.Join(home, IdentityFile), raw, 0o600); err != nil {
		return Config{}, fmt.Errorf("init: %w", err)
	}
	tok := make([]byte, 32)
	if _, err := rand.Read(tok); err != nil {
		return Config{}, err
	}
	if err := writeFileExcl(filepath.Join(home, AdminTokenFile), []byte(hex.EncodeToString(tok)+"\n"), 0o600); err != nil {
		return Config{}, fmt.Errorf("init: %w", err)
	}
	if org == "" {
		org = filepath.Base(filepath.Clean(home))
	}
	cfg := DefaultConfig(org)
	switch profile {
	case "", "default":
	case "test":
		cfg.TestProfile()
	default:
		return Config{}, fmt.Errorf("init: unknown profile %q (want default or test)", profile)
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return Config{}, err
	}
	if err := writeFileExcl(filepath.Join(home, ConfigFile), b, 0o600); err != nil {
		return Config{}, fmt.Errorf("init: %w", err)
	}
	for _, d := range []string{LedgerDir, StateDir} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o700); err != nil {
			return Config{}, fmt.Errorf("init: %w", err)
		}
	}
	cfg.Home = home
	return cfg, nil
}

func writeFileExcl(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// LoadConfig reads DIR/config.yaml.
func LoadConfig(home string) (Config, error) {
	b, err := os.ReadFile(filepath.Join(home, ConfigFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Config{}, fmt.Errorf("no node at %s (run asp init --home %s)", home, home)
		}
		return Config{}, err
	}
	var c Config
	if err := yaml.UnmarshalWithOptions(b, &c, yaml.Strict()); err != nil {
		return Config{}, configError(filepath.Join(home, ConfigFile), b, err)
	}
	c.Home = home
	c.fillDefaults()
	return c, c.Validate()
}

// LoadIdentity reads the node's identity key.
func LoadIdentity(home string) (crypto.PrivKey, error) {
	raw, err := os.ReadFile(filepath.Join(home, IdentityFile))
	if err != nil {
		return nil, identityError(home, err)
	}
	k, err := crypto.UnmarshalPrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", filepath.Join(home, IdentityFile), err)
	}
	if k.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("identity: key type %v, want Ed25519", k.Type())
	}
	return k, nil
}

// ReadAdminToken reads DIR/admin.token.
func ReadAdminToken(home string) (string, error) {
	b, err := os.ReadFile(filepath.Join(home, AdminTokenFile))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
