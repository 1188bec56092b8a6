package registry

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aspnode/asp/internal/strictjson"
	"github.com/aspnode/asp/protocol"
	"github.com/fxamacker/cbor/v2"
)

// Limits on a card. A card over any of them is refused as ErrOversized.
const (
	// MaxCardSize is the largest encoded card accepted (8 KiB).
	MaxCardSize = 8 << 10
	// MaxCapabilities is the largest number of capabilities on one card.
	MaxCapabilities = 32
	// MaxEndpoints is the largest number of endpoints on one card.
	MaxEndpoints = 16
	// MaxDescription is the longest description, in bytes.
	MaxDescription = 1024
	maxEndpointLen = 256
	maxProtocols   = 8
	maxProtocolLen = 32
)

// cardDomain separates card signatures from every other signature made
// with an organization key (see protocol's signature domains).
const cardDomain = "asp/1.0 card"

// CardKeyPrefix prefixes the DHT key of every card record. The "asp"
// namespace is what the DHT's record.NamespacedValidator dispatches on.
const CardKeyPrefix = "/asp/card/"

// Card describes one agent to other organizations. It is signed by the
// agent's organization (the node's libp2p Ed25519 key) and bound to the
// organization's peer id: Org must be the peer id named in AgentID and the
// signature must verify under the key embedded in that peer id, so no
// other peer can issue or alter a card for the agent.
//
// A withdrawn card (Withdrawn set, no capabilities, no certificate) is a
// tombstone: a newer version that replaces the agent's card on the DHT
// when the agent is removed.
type Card struct {
	AgentID      string                // "agent://<org peer id>/<name>"
	Org          string                // the organization's peer id
	Name         string                // the agent's name, as in AgentID
	Description  string                // free text, at most MaxDescription bytes
	Capabilities []string              // dotted capability names, sorted, unique
	Protocols    []string              // protocol versions spoken, e.g. ["asp/1.0"]
	Endpoints    []string              // multiaddrs of the organization's node, with /p2p/<org>
	PublicKey    ed25519.PublicKey     // the agent's key
	Certificate  *protocol.Certificate // the agent's certificate, issued by Org
	Version      uint64                // strictly increasing per agent; highest wins
	NotAfter     time.Time             // last instant of validity (UTC, ms precision)
	Withdrawn    bool                  // tombstone: the agent was removed
	Signature    []byte                // Ed25519 by the organization key
}

// wireCard is the canonical CBOR form of a Card.
type wireCard struct {
	AgentID      string                `cbor:"agentId"`
	Org          string                `cbor:"org"`
	Name         string                `cbor:"name"`
	Description  string                `cbor:"description"`
	Capabilities []string              `cbor:"capabilities"`
	Protocols    []string              `cbor:"protocols"`
	Endpoints    []string              `cbor:"endpoints"`
	PublicKey    []byte                `cbor:"publicKey,omitempty"`
	Certificate  *protocol.Certificate `cbor:"certificate,omitempty"`
	Version      uint64                `cbor:"version"`
	NotAfter     string                `cbor:"notAfter"`
	Withdrawn    bool                  `cbor:"withdrawn,omitempty"`
	Signature    []byte                `cbor:"signature,omitempty"`
}

// jsonCard is the JSON form of a Card (camelCase; bytes in base64).
type jsonCard struct {
	AgentID      string           `json:"agentId"`
	Org          string           `json:"org"`
	Name         string           `json:"name"`
	Description  string           `json:"description"`
	Capabilities []string         `json:"capabilities"`
	Protocols    []string         `json:"protocols"`
	Endpoints    []string         `json:"endpoints"`
	PublicKey    []byte           `json:"publicKey,omitempty"`
	Certificate  *jsonCertificate `json:"certificate,omitempty"`
	Version      uint64           `json:"version"`
	NotAfter     string           `json:"notAfter"`
	Withdrawn    bool             `json:"withdrawn,omitempty"`
	Signature    []byte           `json:"signature,omitempty"`
}

// jsonCertificate mirrors the JSON form of protocol.Certificate.
type jsonCertificate struct {
	AgentID      string   `json:"agentId"`
	PublicKey    []byte   `json:"publicKey"`
	Capabilities []string `json:"capabilities"`
	NotAfter     string   `json:"notAfter"`
	Signature    []byte   `json:"signature,omitempty"`
}

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	encMode, decMode = protocol.CanonicalCBOR(8, 256, 64)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (c *Card) wire() wireCard {
	return wireCard{
		AgentID:      c.AgentID,
		Org:          c.Org,
		Name:         c.Name,
		Description:  c.Description,
		Capabilities: nonNil(c.Capabilities),
		Protocols:    nonNil(c.Protocols),
		Endpoints:    nonNil(c.Endpoints),
		PublicKey:    c.PublicKey,
		Certificate:  c.Certificate,
		Version:      c.Version,
		NotAfter:     protocol.FormatTime(c.NotAfter),
		Withdrawn:    c.Withdrawn,
		Signature:    c.Signature,
	}
}

func (w *wireCard) card() (*Card, error) {
	t, err := protocol.ParseTime(w.NotAfter)
	if err != nil {
		return nil, fmt.Errorf("%w: notAfter: %v", ErrMalformed, err)
	}
	c := &Card{
		AgentID:      w.AgentID,
		Org:          w.Org,
		Name:         w.Name,
		Description:  w.Description,
		Capabilities: w.Capabilities,
		Protocols:    w.Protocols,
		Endpoints:    w.Endpoints,
		Certificate:  w.Certificate,
		Version:      w.Version,
		NotAfter:     t,
		Withdrawn:    w.Withdrawn,
		Signature:    w.Signature,
	}
	if w.PublicKey != nil {
		c.PublicKey = ed25519.PublicKey(w.PublicKey)
	}
	return c, nil
}

// Digest returns SHA-256 of the card's canonical CBOR payload (every field
// but the signature): what the organization signs, after the domain
// "asp/1.0 card" and a zero byte.
func (c *Card) Digest() ([32]byte, error) {
	w := c.wire()
	w.Signature = nil
	b, err := encMode.Marshal(w)
	if err != nil {
		return [32]byte{}, fmt.Errorf("%w: encode: %v", ErrMalformed, err)
	}
	return sha256.Sum256(b), nil
}

func signedMessage(d [32]byte) []byte {
	m := make([]byte, 0, len(cardDomain)+1+len(d))
	m = append(m, cardDomain...)
	m = append(m, 0)
	return append(m, d[:]...)
}

// Sign signs the card with the organization key org. Requires c.Org to be
// the peer id of org's public key.
func (c *Card) Sign(org ed25519.PrivateKey) error {
	if len(org) != ed25519.PrivateKeySize {
		return fmt.Errorf("registry: sign card: organization key is %d bytes", len(org))
	}
	if id := protocol.PeerIDFromPublicKey(org.Public().(ed25519.PublicKey)); id != c.Org {
		return fmt.Errorf("registry: sign card: key of %s cannot sign for %s", id, c.Org)
	}
	d, err := c.Digest()
	if err != nil {
		return err
	}
	c.Signature = ed25519.Sign(org, signedMessage(d))
	return nil
}

// Marshal returns the canonical CBOR encoding of the signed card: the bytes
// stored on the DHT and served over ProtocolID.
func (c *Card) Marshal() ([]byte, error) {
	b, err := encMode.Marshal(c.wire())
	if err != nil {
		return nil, fmt.Errorf("%w: encode: %v", ErrMalformed, err)
	}
	return b, nil
}

// MarshalCBOR implements cbor.Marshaler with Marshal.
func (c *Card) MarshalCBOR() ([]byte, error) { return c.Marshal() }

// UnmarshalCBOR implements cbor.Unmarshaler with DecodeCard's checks.
func (c *Card) UnmarshalCBOR(b []byte) error {
	x, err := DecodeCard(b)
	if err != nil {
		return err
	}
	*c = *x
	return nil
}

// DecodeCard decodes a card and refuses anything over MaxCardSize
// (ErrOversized) or not in canonical form (ErrMalformed). It does not
// verify the card: call Verify.
func DecodeCard(b []byte) (*Card, error) {
	if len(b) > MaxCardSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrOversized, len(b), MaxCardSize)
	}
	var w wireCard
	if err := decMode.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	again, err := encMode.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("%w: re-encode: %v", ErrMalformed, err)
	}
	if !bytes.Equal(again, b) {
		return nil, fmt.Errorf("%w: not canonical CBOR", ErrMalformed)
	}
	return w.card()
}

// Verify checks the card on its own at time now: sizes, names, the
// organization's signature (key taken from the Org peer id), that Org and
// Name are those of AgentID, and, unless withdrawn, the certificate (issued
// by Org for this agent and key, valid at now, granting every capability
// on the card). A withdrawn card must carry no capabilities and no
// certificate. Verify does not say who may present the card: see
// VerifyFrom.
func (c *Card) Verify(now time.Time) error {
	if err := c.checkShape(); err != nil {
		return err
	}
	a, err := protocol.ParseAgentID(c.AgentID)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if a.Org != c.Org || a.Name != c.Name {
		return fmt.Errorf("%w: %s is not named by org %q name %q", ErrForged, c.AgentID, c.Org, c.Name)
	}
	orgKey, err := protocol.PublicKeyFromPeerID(c.Org)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	d, err := c.Digest()
	if err != nil {
		return err
	}
	if len(c.Signature) != ed25519.SignatureSize || !ed25519.Verify(orgKey, signedMessage(d), c.Signature) {
		return fmt.Errorf("%w: signature of %s does not verify under %s", ErrForged, c.AgentID, c.Org)
	}
	if c.Version == 0 {
		return fmt.Errorf("%w: version 0", ErrMalformed)
	}
	if c.NotAfter.IsZero() {
		return fmt.Errorf("%w: no notAfter", ErrMalformed)
	}
	if now.After(c.NotAfter) {
		return fmt.Errorf("%w: %s expired at %s", ErrExpired, c.AgentID, protocol.FormatTime(c.NotAfter))
	}
	if c.Withdrawn {
		if len(c.Capabilities) != 0 || c.Certificate != nil {
			return fmt.Errorf("%w: withdrawn card of %s carries capabilities or a certificate", ErrMalformed, c.AgentID)
		}
		return nil
	}
	cert := c.Certificate
	if cert == nil {
		return fmt.Errorf("%w: %s has no certificate", ErrForged, c.AgentID)
	}
	if cert.AgentID != c.AgentID {
		return fmt.Errorf("%w: certificate of %s on the card of %s", ErrForged, cert.AgentID, c.AgentID)
	}
	if len(c.PublicKey) != ed25519.PublicKeySize || !bytes.Equal(cert.PublicKey, c.PublicKey) {
		return fmt.Errorf("%w: agent key of %s does not match its certificate", ErrForged, c.AgentID)
	}
	if err := cert.Verify(now); err != nil {
		if isExpired(err) {
			return fmt.Errorf("%w: %v", ErrExpired, err)
		}
		return fmt.Errorf("%w: %v", ErrForged, err)
	}
	if c.NotAfter.After(cert.NotAfter) {
		return fmt.Errorf("%w: card of %s outlives its certificate", ErrForged, c.AgentID)
	}
	for _, cp := range c.Capabilities {
		if !certGrants(cert, cp) {
			return fmt.Errorf("%w: certificate of %s does not grant %q", ErrForged, c.AgentID, cp)
		}
	}
	return nil
}

// VerifyFrom is Verify plus the binding to the peer that presented the
// card: only the organization itself may serve its cards (ErrReplayed).
func (c *Card) VerifyFrom(peerID string, now time.Time) error {
	if err := c.Verify(now); err != nil {
		return err
	}
	if c.Org != peerID {
		return fmt.Errorf("%w: card of %s served by %s", ErrReplayed, c.AgentID, peerID)
	}
	return nil
}

// checkShape enforces field limits and name syntax.
func (c *Card) checkShape() error {
	if len(c.Description) > MaxDescription {
		return fmt.Errorf("%w: description of %d bytes", ErrOversized, len(c.Description))
	}
	if len(c.Capabilities) > MaxCapabilities {
		return fmt.Errorf("%w: %d capabilities", ErrOversized, len(c.Capabilities))
	}
	if len(c.Endpoints) > MaxEndpoints {
		return fmt.Errorf("%w: %d endpoints", ErrOversized, len(c.Endpoints))
	}
	for _, e := range c.Endpoints {
		if len(e) > maxEndpointLen {
			return fmt.Errorf("%w: endpoint of %d bytes", ErrOversized, len(e))
		}
	}
	if len(c.Protocols) > maxProtocols {
		return fmt.Errorf("%w: %d protocols", ErrOversized, len(c.Protocols))
	}
	for _, p := range c.Protocols {
		if len(p) > maxProtocolLen {
			return fmt.Errorf("%w: protocol of %d bytes", ErrOversized, len(p))
		}
	}
	for i, cp := range c.Capabilities {
		if err := ValidateCapability(cp); err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		if i > 0 && c.Capabilities[i-1] >= cp {
			return fmt.Errorf("%w: capabilities not sorted and unique", ErrMalformed)
		}
	}
	return nil
}

func isExpired(err error) bool { return errors.Is(err, protocol.ErrCertificateExpired) }

// certGrants reports whether the certificate grants capability cp: it
// lists cp itself or a dotted prefix of it ("compute" grants
// "compute.gpu-hours").
func certGrants(cert *protocol.Certificate, cp string) bool {
	for _, g := range cert.Capabilities {
		if g == cp || strings.HasPrefix(cp, g+".") {
			return true
		}
	}
	return false
}

// Key returns the card's DHT key, CardKey(c.AgentID).
func (c *Card) Key() string { return CardKey(c.AgentID) }

// CardKey returns the DHT key of an agent's card:
// "/asp/card/" + lowercase hex SHA-256 of the agent id.
func CardKey(agentID string) string {
	h := sha256.Sum256([]byte(agentID))
	return CardKeyPrefix + hex.EncodeToString(h[:])
}

// Matches reports whether the card offers capability q itself or a child
// of it: "compute" matches "compute.gpu-hours". A withdrawn card matches
// nothing.
func (c *Card) Matches(q string) bool {
	if c.Withdrawn {
		return false
	}
	for _, cp := range c.Capabilities {
		if CapabilityMatches(cp, q) {
			return true
		}
	}
	return false
}

// Clone returns a deep copy of c.
func (c *Card) Clone() *Card {
	x := *c
	x.Capabilities = slices.Clone(c.Capabilities)
	x.Protocols = slices.Clone(c.Protocols)
	x.Endpoints = slices.Clone(c.Endpoints)
	x.PublicKey = slices.Clone(c.PublicKey)
	x.Signature = slices.Clone(c.Signature)
	if c.Certificate != nil {
		cc := *c.Certificate
		cc.PublicKey = slices.Clone(cc.PublicKey)
		cc.Capabilities = slices.Clone(cc.Capabilities)
		cc.Signature = slices.Clone(cc.Signature)
		x.Certificate = &cc
	}
	return &x
}

// MarshalJSON renders the card in its JSON form: the fields of the CBOR
// form under the same camelCase names, bytes in standard base64, times in
// protocol.TimeLayout. It round-trips to the same signed bytes.
func (c *Card) MarshalJSON() ([]byte, error) {
	w := c.wire()
	j := jsonCard{
		AgentID: w.AgentID, Org: w.Org, Name: w.Name, Description: w.Description,
		Capabilities: w.Capabilities, Protocols: w.Protocols, Endpoints: w.Endpoints,
		PublicKey: w.PublicKey, Version: w.Version, NotAfter: w.NotAfter,
		Withdrawn: w.Withdrawn, Signature: w.Signature,
	}
	if cert := c.Certificate; cert != nil {
		j.Certificate = &jsonCertificate{
			AgentID:      cert.AgentID,
			PublicKey:    cert.PublicKey,
			Capabilities: nonNil(cert.Capabilities),
			NotAfter:     protocol.FormatTime(cert.NotAfter),
			Signature:    cert.Signature,
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON parses the JSON form strictly (a key given twice or in
// another case than its field's is ErrMalformed, so a card reads as one
// value to every reader). It does not verify the card.
func (c *Card) UnmarshalJSON(b []byte) error {
	var j jsonCard
	if err := strictjson.Decode(b, &j); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	w := wireCard{
		AgentID: j.AgentID, Org: j.Org, Name: j.Name, Description: j.Description,
		Capabilities: j.Capabilities, Protocols: j.Protocols, Endpoints: j.Endpoints,
		PublicKey: j.PublicKey, Version: j.Version, NotAfter: j.NotAfter,
		Withdrawn: j.Withdrawn, Signature: j.Signature,
	}
	if jc := j.Certificate; jc != nil {
		t, err := protocol.ParseTime(jc.NotAfter)
		if err != nil {
			return fmt.Errorf("%w: certificate notAfter: %v", ErrMalformed, err)
		}
		w.Certificate = &protocol.Certificate{
			AgentID:      jc.AgentID,
			PublicKey:    jc.PublicKey,
			Capabilities: nonNil(jc.Capabilities),
			NotAfter:     t,
			Signature:    jc.Signature,
		}
	}
	x, err := w.card()
	if err != nil {
		return err
	}
	*c = *x
	return nil
}
