package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/mr-tron/base58"
)

// libp2p encodes an Ed25519 public key as the protobuf message
// PublicKey{Type: Ed25519 (1), Data: 32 bytes}; a peer id is the identity
// multihash (code 0x00, length 0x24) of those 36 bytes, in base58btc.
var peerIDPrefix = []byte{
	0x00, 0x24, // identity multihash, 36 bytes
	0x08, 0x01, // field 1 (KeyType), varint 1 = Ed25519
	0x12, 0x20, // field 2 (Data), 32 bytes
}

// PeerIDFromPublicKey returns the libp2p peer id of an Ed25519 public key,
// byte-identical to peer.IDFromPublicKey(..).String() in go-libp2p
// ("12D3KooW…"). It panics if pub is not 32 bytes.
func PeerIDFromPublicKey(pub ed25519.PublicKey) string {
	if len(pub) != ed25519.PublicKeySize {
		panic(fmt.Sprintf("protocol: ed25519 public key of %d bytes", len(pub)))
	}
	b := make([]byte, 0, len(peerIDPrefix)+ed25519.PublicKeySize)
	b = append(b, peerIDPrefix...)
	b = append(b, pub...)
	return base58.Encode(b)
}

// PublicKeyFromPeerID extracts the Ed25519 public key embedded in a libp2p
// peer id. Only the canonical base58btc form of an Ed25519 identity peer id
// is accepted; anything else returns an error wrapping ErrBadPeerID.
func PublicKeyFromPeerID(id string) (ed25519.PublicKey, error) {
	if len(id) == 0 || len(id) > 64 {
		return nil, fmt.Errorf("%w: %q", ErrBadPeerID, id)
	}
	b, err := base58.Decode(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrBadPeerID, id, err)
	}
	if len(b) != len(peerIDPrefix)+ed25519.PublicKeySize || !bytes.HasPrefix(b, peerIDPrefix) {
		return nil, fmt.Errorf("%w: %q is not an Ed25519 identity peer id", ErrBadPeerID, id)
	}
	pub := ed25519.PublicKey(slices.Clone(b[len(peerIDPrefix):]))
	if base58.Encode(b) != id {
		return nil, fmt.Errorf("%w: %q is not canonical", ErrBadPeerID, id)
	}
	return pub, nil
}

// AgentIDScheme prefixes every agent id.
const AgentIDScheme = "agent://"

var agentNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// AgentID names an agent: the peer id of its organization's node and the
// agent's name within it. Its text form is "agent://<peerId>/<name>".
type AgentID struct {
	Org  string // libp2p peer id of the organization ("12D3KooW…")
	Name string // [A-Za-z0-9][A-Za-z0-9._-]{0,63}
}

// ParseAgentID parses "agent://<peerId>/<name>" strictly: the peer id must
// be a canonical Ed25519 peer id and the name must match
// [A-Za-z0-9][A-Za-z0-9._-]{0,63}. Errors wrap ErrBadAgentID.
func ParseAgentID(s string) (AgentID, error) {
	rest, ok := strings.CutPrefix(s, AgentIDScheme)
	if !ok {
		return AgentID{}, fmt.Errorf("%w: %q lacks %s", ErrBadAgentID, s, AgentIDScheme)
	}
	org, name, ok := strings.Cut(rest, "/")
	if !ok {
		return AgentID{}, fmt.Errorf("%w: %q lacks a name", ErrBadAgentID, s)
	}
	a := AgentID{Org: org, Name: name}
	if err := a.Validate(); err != nil {
		return AgentID{}, err
	}
	return a, nil
}

// Validate reports whether a is a well-formed agent id.
func (a AgentID) Validate() error {
	if !agentNameRE.MatchString(a.Name) {
		return fmt.Errorf("%w: bad name %q", ErrBadAgentID, a.Name)
	}
	if _, err := PublicKeyFromPeerID(a.Org); err != nil {
		return fmt.Errorf("%w: %w", ErrBadAgentID, err)
	}
	return nil
}

// String returns "agent://<peerId>/<name>".
func (a AgentID) String() string { return AgentIDScheme + a.Org + "/" + a.Name }

// IsZero reports whether a is the zero AgentID.
func (a AgentID) IsZero() bool { return a == AgentID{} }

// OrgKey returns the organization's public key, from the peer id.
func (a AgentID) OrgKey() (ed25519.PublicKey, error) { return PublicKeyFromPeerID(a.Org) }

// Certificate binds an agent's public key to its agent id; the agent's
// organization signs it with its node (libp2p) key.
type Certificate struct {
	AgentID      string    // "agent://<peerId>/<name>"; the peer id names the issuer
	PublicKey    []byte    // the agent's Ed25519 public key, 32 bytes
	Capabilities []string  // capabilities granted, in the order issued
	NotAfter     time.Time // last instant of validity (UTC, ms precision)
	Signature    []byte    // Ed25519 by the organization key over the payload
}

// wireCertificate is the canonical form of a Certificate, in CBOR and JSON.
type wireCertificate struct {
	AgentID      string   `cbor:"agentId" json:"agentId"`
	PublicKey    b64      `cbor:"publicKey" json:"publicKey"`
	Capabilities []string `cbor:"capabilities" json:"capabilities"`
	NotAfter     string   `cbor:"notAfter" json:"notAfter"`
	Signature    b64      `cbor:"signature,omitempty" json:"signature,omitempty"`
}

func (c *Certificate) wire() wireCertificate {
	caps := c.Capabilities
	if caps == nil {
		caps = []string{}
	}
	return wireCertificate{
		AgentID:      c.AgentID,
		PublicKey:    c.PublicKey,
		Capabilities: caps,
		NotAfter:     FormatTime(c.NotAfter),
		Signature:    c.Signature,
	}
}

func (w *wireCertificate) cert() (*Certificate, error) {
	t, err := ParseTime(w.NotAfter)
	if err != nil {
		return nil, fmt.Errorf("certificate notAfter: %w", err)
	}
	return &Certificate{
		AgentID:      w.AgentID,
		PublicKey:    w.PublicKey,
		Capabilities: w.Capabilities,
		NotAfter:     t,
		Signature:    nilIfEmpty([]byte(w.Signature)),
	}, nil
}

// Digest returns SHA-256 of the certificate's canonical payload (all
// fields but the signature). It is what the organization signs.
func (c *Certificate) Digest() ([32]byte, error) {
	w := c.wire()
	w.Signature = nil
	d, _, err := digest(w)
	return d, err
}

// IssueCertificate makes org's signed certificate for agent, whose key is
// pub. agent.Org must be org's peer id. notAfter is truncated to
// milliseconds; capabilities are kept in the given order.
func IssueCertificate(org ed25519.PrivateKey, agent AgentID, pub ed25519.PublicKey, caps []string, notAfter time.Time) (*Certificate, error) {
	if len(org) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: organization key", ErrBadKey)
	}
	if err := agent.Validate(); err != nil {
		return nil, err
	}
	if PeerIDFromPublicKey(org.Public().(ed25519.PublicKey)) != agent.Org {
		return nil, fmt.Errorf("%w: %s does not belong to this organization", ErrBadCertificate, agent)
	}
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: agent key is %d bytes", ErrBadKey, len(pub))
	}
	if notAfter.IsZero() {
		return nil, fmt.Errorf("%w: notAfter is required", ErrBadCertificate)
	}
	for _, c := range caps {
		if c == "" {
			return nil, fmt.Errorf("%w: empty capability", ErrBadCertificate)
		}
	}
	c := &Certificate{
		AgentID:      agent.String(),
		PublicKey:    slices.Clone(pub),
		Capabilities: slices.Clone(caps),
		NotAfter:     Millis(notAfter),
	}
	if c.Capabilities == nil {
		c.Capabilities = []string{}
	}
	d, err := c.Digest()
	if err != nil {
		return nil, err
	}
	c.Signature, err = signDigest(org, domainCertificate, d)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Verify checks that c is well formed, signed by the organization named in
// its agent id, and valid at now (now <= NotAfter). Errors wrap
// ErrBadCertificate, ErrCertificateExpired or ErrBadSignature.
func (c *Certificate) Verify(now time.Time) error { return c.verifyCached(now, nil) }

// verifyCached is Verify, skipping the Ed25519 check of a signature vc
// knows.
func (c *Certificate) verifyCached(now time.Time, vc VerifiedSignatures) error {
	if c == nil {
		return fmt.Errorf("%w: missing", ErrBadCertificate)
	}
	a, err := ParseAgentID(c.AgentID)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadCertificate, err)
	}
	if len(c.PublicKey) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: agent key is %d bytes", ErrBadCertificate, len(c.PublicKey))
	}
	if c.NotAfter.IsZero() {
		return fmt.Errorf("%w: no notAfter", ErrBadCertificate)
	}
	orgKey, err := a.OrgKey()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadCertificate, err)
	}
	d, err := c.Digest()
	if err != nil {
		return err
	}
	if vc == nil || !vc.Known(orgKey, cacheKey(domainCertificate, d), c.Signature) {
		if !verifyDigest(orgKey, domainCertificate, d, c.Signature) {
			return fmt.Errorf("%w: certificate of %s", ErrBadSignature, c.AgentID)
		}
		if vc != nil {
			vc.Add(orgKey, cacheKey(domainCertificate, d), c.Signature)
		}
	}
	if now.After(c.NotAfter) {
		return fmt.Errorf("%w: %s expired at %s", ErrCertificateExpired, c.AgentID, FormatTime(c.NotAfter))
	}
	return nil
}

// Agent returns the parsed agent id of the certificate.
func (c *Certificate) Agent() (AgentID, error) { return ParseAgentID(c.AgentID) }

// HasCapability reports whether the certificate grants capability cap.
func (c *Certificate) HasCapability(cap string) bool { return slices.Contains(c.Capabilities, cap) }

// MarshalCBOR encodes the certificate canonically.
func (c *Certificate) MarshalCBOR() ([]byte, error) { return canonical(c.wire()) }

// MarshalJSON encodes the certificate in its JSON form.
func (c *Certificate) MarshalJSON() ([]byte, error) { return json.Marshal(c.wire()) }

// UnmarshalJSON decodes a certificate strictly.
func (c *Certificate) UnmarshalJSON(b []byte) error {
	var w wireCertificate
	if err := strictJSON(b, &w); err != nil {
		return err
	}
	x, err := w.cert()
	if err != nil {
		return err
	}
	*c = *x
	return nil
}

// UnmarshalCBOR decodes a certificate.
func (c *Certificate) UnmarshalCBOR(b []byte) error {
	var w wireCertificate
	if err := decMode.Unmarshal(b, &w); err != nil {
		return classifyDecodeError(err)
	}
	x, err := w.cert()
	if err != nil {
		return err
	}
	*c = *x
	return nil
}
