package registry

import (
	"crypto/ed25519"
	"fmt"
	"math"
	"time"

	"github.com/aspnode/asp/protocol"
)

// EndpointBudget is the room, in encoded bytes, a card keeps for its
// endpoints. Publish puts on a card only as many of the host's addresses
// as fit in it (a host with many interfaces lists the first ones, in
// order), and CheckAgent counts all of it, so an agent that passes
// CheckAgent always gets a card within MaxCardSize, whatever addresses
// its node has when the card is signed.
const EndpointBudget = 2 << 10

// endpointCost is what one endpoint costs in the card's encoding: its
// bytes plus at most 3 bytes of CBOR header (endpoints are at most
// maxEndpointLen bytes).
func endpointCost(s string) int { return len(s) + 3 }

// CheckAgent reports whether the card of agent a of organization org
// (a peer id) stays within the card limits: field limits (description,
// number and form of capabilities) and MaxCardSize with EndpointBudget
// set aside. Errors wrap ErrOversized, ErrBadCapability or ErrMalformed.
// A node calls it when the agent is created: a card over the limit is
// refused by every peer, so such an agent could never be discovered.
//
// It measures the card as Publish would sign it, with the largest
// version number and a signature of full length; a nil a.Certificate is
// measured as the one Publish issues.
func CheckAgent(org string, a Agent) error {
	id := protocol.AgentID{Org: org, Name: a.Name}
	if err := id.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	caps, err := NormalizeCapabilities(a.Capabilities)
	if err != nil {
		return err
	}
	pub := a.PublicKey
	if len(pub) != ed25519.PublicKeySize {
		pub = make(ed25519.PublicKey, ed25519.PublicKeySize)
	}
	notAfter := protocol.Millis(time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC))
	cert := a.Certificate
	if cert == nil {
		cert = &protocol.Certificate{AgentID: id.String(), PublicKey: pub, Capabilities: caps,
			NotAfter: notAfter, Signature: make([]byte, ed25519.SignatureSize)}
	}
	c := &Card{
		AgentID:      id.String(),
		Org:          org,
		Name:         a.Name,
		Description:  a.Description,
		Capabilities: caps,
		Protocols:    []string{protocol.Version},
		Endpoints:    []string{},
		PublicKey:    pub,
		Certificate:  cert,
		Version:      math.MaxUint64,
		NotAfter:     notAfter,
		Signature:    make([]byte, ed25519.SignatureSize),
	}
	if err := c.checkShape(); err != nil {
		return err
	}
	raw, err := c.Marshal()
	if err != nil {
		return err
	}
	if size := len(raw) + EndpointBudget; size > MaxCardSize {
		return fmt.Errorf("%w: the card of %s would take %d bytes (%d of them kept for endpoints), over the limit of %d: shorten the description or the capabilities",
			ErrOversized, id, size, EndpointBudget, MaxCardSize)
	}
	return nil
}
