package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Start-up checks: each failure says what is wrong and what to do, in one
// line (docs/operating.md lists them).

// minAdminTokenLen is the shortest admin token accepted: 32 hex characters
// are 128 bits. asp init writes 64 (256 bits).
const minAdminTokenLen = 32

// ErrWeakAdminToken is returned, wrapped, by Start for an empty or weak
// admin token.
var ErrWeakAdminToken = errors.New("weak admin token")

// checkAdminToken refuses an admin token nobody could use (empty) or anyone
// could guess (short, or one repeated character).
func checkAdminToken(home, tok string) error {
	path := filepath.Join(home, AdminTokenFile)
	fix := "write 64 random hex characters to it (openssl rand -hex 32 > " + path + "), or make a new home with asp init, which writes a good one"
	switch {
	case tok == "":
		return fmt.Errorf("%w: %s is empty: nobody could administer the node; %s", ErrWeakAdminToken, path, fix)
	case len(tok) < minAdminTokenLen:
		return fmt.Errorf("%w: %s holds %d characters, want at least %d; %s", ErrWeakAdminToken, path, len(tok), minAdminTokenLen, fix)
	case strings.Count(tok, tok[:1]) == len(tok):
		return fmt.Errorf("%w: %s repeats one character; %s", ErrWeakAdminToken, path, fix)
	}
	if _, err := hex.DecodeString(tok); err != nil && len(tok) < 2*minAdminTokenLen {
		// A token of other characters is accepted if long enough to carry
		// 128 bits whatever its alphabet (at least 4 bits a character).
		return fmt.Errorf("%w: %s is not hex and holds %d characters, want at least %d; %s", ErrWeakAdminToken, path, len(tok), 2*minAdminTokenLen, fix)
	}
	return nil
}

// validateAddrs checks the listen and bootstrap multiaddrs, naming the
// field and the address at fault.
func (c *Config) validateAddrs() error {
	for _, s := range c.Listen {
		if _, err := ma.NewMultiaddr(s); err != nil {
			return fmt.Errorf("config: listen %q: not a multiaddr (%v); want e.g. /ip4/127.0.0.1/tcp/4001", s, err)
		}
	}
	for _, s := range c.Bootstrap {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return fmt.Errorf("config: bootstrap %q: not a multiaddr (%v); want /ip4/HOST/tcp/PORT/p2p/PEERID", s, err)
		}
		if _, err := a.ValueForProtocol(ma.P_P2P); err != nil {
			return fmt.Errorf("config: bootstrap %q: missing /p2p/<peer id> (the peer's id, as its asp status prints it); want /ip4/HOST/tcp/PORT/p2p/PEERID", s)
		}
		if _, err := peer.AddrInfoFromP2pAddr(a); err != nil {
			return fmt.Errorf("config: bootstrap %q: %v", s, err)
		}
	}
	return nil
}

// ErrPortTaken is returned, wrapped, by Start when a configured listen port
// is bound by another process.
var ErrPortTaken = errors.New("port taken")

// checkPortsFree binds each listen address with a fixed port for an
// instant, without SO_REUSEPORT: libp2p's TCP transport binds with
// SO_REUSEPORT and would share a port with another process that did the
// same (another node), splitting incoming connections between the two.
func checkPortsFree(listen []string) error {
	for _, s := range listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			continue // validateAddrs named it
		}
		netw, host, err := manet.DialArgs(a)
		if err != nil {
			continue
		}
		_, port, err := net.SplitHostPort(host)
		if err != nil || port == "0" {
			continue
		}
		switch netw {
		case "tcp", "tcp4", "tcp6":
			ln, err := net.Listen(netw, host)
			if err != nil {
				return fmt.Errorf("%w: listen %s: %s is in use by another process (another asp node?); choose another port in config.yaml listen or --listen, or stop that process", ErrPortTaken, s, host)
			}
			ln.Close()
		case "udp", "udp4", "udp6":
			pc, err := net.ListenPacket(netw, host)
			if err != nil {
				return fmt.Errorf("%w: listen %s: udp %s is in use by another process (another asp node?); choose another port in config.yaml listen or --listen, or stop that process", ErrPortTaken, s, host)
			}
			pc.Close()
		}
	}
	return nil
}

// warnListenAll warns when the node listens on every interface because the
// configuration named no listen address.
func (c *Config) warnListenAll(log *slog.Logger) {
	if !c.listenDefaulted || !slices.Equal(c.Listen, DefaultConfig("").Listen) {
		return // named in the file, or replaced by flags
	}
	for _, s := range c.Listen {
		if strings.HasPrefix(s, "/ip4/0.0.0.0/") || strings.HasPrefix(s, "/ip6/::/") {
			log.Warn("libp2p listens on every interface because config.yaml names no listen address; say so explicitly (listen: [/ip4/0.0.0.0/tcp/4001]) or name the interface (/ip4/127.0.0.1/tcp/0 for this machine only)",
				"listen", strings.Join(c.Listen, ","))
			return
		}
	}
}

// removeStaleAPIFile removes the api file a killed node left behind, so
// that clients do not dial a dead port. Called with the home lock held:
// no other node writes it meanwhile.
func removeStaleAPIFile(home string) {
	_ = os.Remove(filepath.Join(home, APIFile))
	_ = os.Remove(filepath.Join(home, APIFile+".tmp"))
}

// configError makes a YAML error one line naming the file, the line and
// the field.
func configError(path string, src []byte, err error) error {
	var ye yaml.Error
	if !errors.As(err, &ye) || ye.GetToken() == nil {
		// An error from a field's own decoder (a duration): find the
		// field by decoding the top-level fields one by one.
		msg := strings.Join(strings.Fields(err.Error()), " ")
		var fields yaml.MapSlice
		if yaml.Unmarshal(src, &fields) == nil {
			for _, f := range fields {
				one, merr := yaml.Marshal(yaml.MapSlice{f})
				var c Config
				if merr == nil && yaml.Unmarshal(one, &c) != nil {
					return fmt.Errorf("%s, field %v: %s", path, f.Key, msg)
				}
			}
		}
		return fmt.Errorf("%s: %s", path, msg)
	}
	line := ye.GetToken().Position.Line
	field := ""
	if lines := strings.Split(string(src), "\n"); line >= 1 && line <= len(lines) {
		if k, _, ok := strings.Cut(strings.TrimSpace(strings.TrimLeft(lines[line-1], " -")), ":"); ok {
			field = strings.TrimSpace(k)
		}
	}
	msg := strings.Join(strings.Fields(ye.GetMessage()), " ")
	if field != "" {
		return fmt.Errorf("%s line %d, field %s: %s", path, line, field, msg)
	}
	return fmt.Errorf("%s line %d: %s", path, line, msg)
}

// identityError says why a home's identity key could not be read, in
// words: no raw "open …identity.key".
func identityError(home string, err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist):
		if _, serr := os.Stat(home); serr != nil {
			return fmt.Errorf("no node home at %s (make one with asp init --home %s)", home, home)
		}
		return fmt.Errorf("%s is not a node home: it has no %s (make one with asp init --home DIR)", home, IdentityFile)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("cannot read %s: permission denied (run as the user who owns the home)", filepath.Join(home, IdentityFile))
	}
	return fmt.Errorf("identity: %w", err)
}

// startChecks runs before Start opens anything: the home's lock, the admin
// token, the stale api file, the listen ports. The node harness (a
// transport of its own) skips them. On error nothing is held.
func (n *Node) startChecks(tok string) (err error) {
	if n.opts.transport != nil {
		return nil
	}
	if err := checkAdminToken(n.cfg.Home, tok); err != nil {
		return err
	}
	n.lock, err = lockHome(n.cfg.Home)
	if err != nil {
		return err
	}
	removeStaleAPIFile(n.cfg.Home)
	if err := checkPortsFree(n.cfg.Listen); err != nil {
		n.lock.release()
		n.lock = nil
		return err
	}
	if err := n.checkOriginalGone(context.Background()); err != nil {
		n.lock.release()
		n.lock = nil
		return err
	}
	n.cfg.warnListenAll(n.log)
	return nil
}

// CheckAdminToken reads the home's admin token and refuses it as Start
// would (asp doctor).
func CheckAdminToken(home string) error {
	tok, err := ReadAdminToken(home)
	if err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	return checkAdminToken(home, tok)
}

// CheckPortsFree reports the first listen address with a fixed port that
// another process holds (asp doctor).
func CheckPortsFree(listen []string) error { return checkPortsFree(listen) }
