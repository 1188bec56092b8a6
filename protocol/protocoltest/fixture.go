// Package protocoltest holds fixtures for tests of ASP: parties whose keys
// derive from a label, deterministic randomness, and the seed deal as a
// signed, verified transcript. The keys are public knowledge; nothing here
// belongs in a running node.
//
// Like protocol, it does no I/O, reads no clock and starts no goroutine.
package protocoltest

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/aspnode/asp/protocol"
)

// Party is an organisation key, an agent key and the agent's name: what a
// fixture needs to act as one side of a deal.
type Party struct {
	OrgKey   ed25519.PrivateKey // the organisation's (node's) key
	AgentKey ed25519.PrivateKey // the agent's key
	Name     string             // the agent's name
}

// FixtureParty derives a party's keys deterministically from label (the
// same label always gives the same keys). For tests and vectors only: the
// keys are public knowledge.
func FixtureParty(label, name string) Party {
	seed := func(s string) []byte { h := sha256.Sum256([]byte("asp fixture " + label + " " + s)); return h[:] }
	return Party{
		OrgKey:   ed25519.NewKeyFromSeed(seed("org")),
		AgentKey: ed25519.NewKeyFromSeed(seed("agent")),
		Name:     name,
	}
}

// Agent returns the party's agent id.
func (p Party) Agent() protocol.AgentID {
	return protocol.AgentID{Org: protocol.PeerIDFromPublicKey(p.OrgKey.Public().(ed25519.PublicKey)), Name: p.Name}
}

// Certificate issues the party's agent certificate, valid until notAfter.
func (p Party) Certificate(caps []string, notAfter time.Time) (*protocol.Certificate, error) {
	return protocol.IssueCertificate(p.OrgKey, p.Agent(), p.AgentKey.Public().(ed25519.PublicKey), caps, notAfter)
}

// FixtureRand returns a deterministic reader seeded from label, for
// message ids in fixtures and vectors.
func FixtureRand(label string) io.Reader {
	return rand.NewChaCha8(sha256.Sum256([]byte("asp fixture rand " + label)))
}

// Deal is a negotiated session built by SeedDeal.
type Deal struct {
	Session       *protocol.Session
	Transcript    []*protocol.Envelope // invitation, its acceptance, then the four negotiation moves
	Commitment    *protocol.Commitment // PENDING: no receipts yet
	Buyer, Vendor protocol.AgentID
	BuyerCert     *protocol.Certificate
	VendorCert    *protocol.Certificate
	Config        protocol.Config
}

// SeedDeal builds the seed scenario as a signed, verified transcript: the
// buyer invites the vendor, the vendor accepts; buyer PROPOSE 1000
// gpu-hours at 2.40 USD, vendor COUNTER 2.80, buyer PROPOSE 2.55, vendor
// ACCEPT, giving a commitment. Messages are one second apart from start;
// deliverBy is start + 30 days; certificates are valid for a year. The
// result depends only on the keys, names and start.
func SeedDeal(buyer, vendor Party, start time.Time) (*Deal, error) {
	start = protocol.Millis(start)
	rnd := rand.NewChaCha8(sha256.Sum256([]byte("asp seed deal " + protocol.FormatTime(start) + buyer.Name + vendor.Name)))
	d := &Deal{Buyer: buyer.Agent(), Vendor: vendor.Agent()}
	var err error
	if d.BuyerCert, err = buyer.Certificate([]string{"buy"}, start.AddDate(1, 0, 0)); err != nil {
		return nil, err
	}
	if d.VendorCert, err = vendor.Certificate([]string{"sell:gpu-hours"}, start.AddDate(1, 0, 0)); err != nil {
		return nil, err
	}
	sid, err := protocol.NewSessionID(start, rnd)
	if err != nil {
		return nil, err
	}
	s := protocol.NewSession(d.Config, sid, d.Buyer, d.Vendor, start)
	d.Session = s
	terms := protocol.Terms{Resource: "gpu-hours", Quantity: "1000", Unit: "hour", UnitPrice: "2.40", Currency: "USD",
		DeliverBy: start.Add(30 * 24 * time.Hour), Penalty: "5% per day late"}
	moves := []struct {
		by   Party
		cert *protocol.Certificate
		p    protocol.Performative
		body protocol.Body
	}{
		{buyer, d.BuyerCert, protocol.Propose, &protocol.ProposeBody{Type: protocol.InvitationType, Subject: "GPU capacity"}},
		{vendor, d.VendorCert, protocol.Accept, nil},
		{buyer, d.BuyerCert, protocol.Propose, &protocol.ProposeBody{Subject: "1000 GPU hours", Terms: &terms}},
		{vendor, d.VendorCert, protocol.Counter, &protocol.CounterBody{Terms: protocol.Terms{UnitPrice: "2.80"}}},
		{buyer, d.BuyerCert, protocol.Propose, &protocol.ProposeBody{Terms: &protocol.Terms{UnitPrice: "2.55"}}},
		{vendor, d.VendorCert, protocol.Accept, nil},
	}
	for i, m := range moves {
		at := start.Add(time.Duration(i) * time.Second)
		env, err := s.Prepare(m.by.Agent(), m.p, m.body, at, rnd)
		if err != nil {
			return nil, fmt.Errorf("seed deal move %d: %w", i, err)
		}
		if err := env.Seal(m.by.AgentKey, m.cert); err != nil {
			return nil, err
		}
		eff, err := s.Step(env, at)
		if err != nil {
			return nil, fmt.Errorf("seed deal move %d: %w", i, err)
		}
		d.Transcript = append(d.Transcript, env)
		if eff.Commitment != nil {
			d.Commitment = eff.Commitment
		}
	}
	if d.Commitment == nil {
		panic("protocoltest: seed deal produced no commitment")
	}
	return d, nil
}
