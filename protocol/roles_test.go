package protocol

import (
	"errors"
	"testing"
	"time"
)

type mv struct {
	by   Party
	perf Performative
	body Body
}

// negotiate prepares, seals and steps moves in a new session between
// buyer (initiator) and vendor, one second apart, and returns the session
// and the error of the first move refused (nil if none).
func negotiate(t *testing.T, buyer, vendor Party, moves ...mv) (*Session, *Commitment, error) {
	t.Helper()
	certs := map[string]*Certificate{}
	for _, p := range []Party{buyer, vendor} {
		c, err := p.Certificate(nil, t0.AddDate(1, 0, 0))
		if err != nil {
			t.Fatal(err)
		}
		certs[p.Name] = c
	}
	s := NewSession(Config{}, "roles-session", buyer.Agent(), vendor.Agent(), t0)
	rnd := FixtureRand("roles")
	all := append([]mv{{buyer, Propose, nil}, {vendor, Accept, nil}}, moves...)
	var c *Commitment
	for i, m := range all {
		at := t0.Add(time.Duration(i) * time.Second)
		env, err := s.Prepare(m.by.Agent(), m.perf, m.body, at, rnd)
		if err != nil {
			return s, c, err
		}
		if err := env.Seal(m.by.AgentKey, certs[m.by.Name]); err != nil {
			t.Fatal(err)
		}
		eff, err := s.Step(env, at)
		if err != nil {
			return s, c, err
		}
		if eff.Commitment != nil {
			c = eff.Commitment
		}
	}
	return s, c, nil
}

func gpuTerms() Terms {
	return Terms{Resource: "gpu-hours", Quantity: "1000", Unit: "hour", UnitPrice: "2.40", Currency: "USD",
		DeliverBy: t0.Add(48 * time.Hour)}
}

func TestArbiterMustBeThirdOrganisation(t *testing.T) {
	buyer, vendor, judge := FixtureParty("buyer", "buyer"), FixtureParty("vendor", "vendor"), FixtureParty("arbiter", "arbiter")
	// An agent of the buyer's own organisation, under another name.
	crony := buyer
	crony.Name = "crony"
	tr := gpuTerms()
	tr.Arbiter = crony.Agent().String()
	if _, _, err := negotiate(t, buyer, vendor, mv{buyer, Propose, &ProposeBody{Terms: &tr}}); !errors.Is(err, ErrArbiterNotThirdParty) {
		t.Fatalf("arbiter in the proposer's organisation: %v", err)
	}
	// Named by the acceptor's side in a counter.
	ok := gpuTerms()
	vc := vendor
	vc.Name = "vendor-legal"
	if _, _, err := negotiate(t, buyer, vendor, mv{buyer, Propose, &ProposeBody{Terms: &ok}},
		mv{vendor, Counter, &CounterBody{Terms: Terms{Arbiter: vc.Agent().String()}}}); !errors.Is(err, ErrArbiterNotThirdParty) {
		t.Fatalf("arbiter in the counterer's organisation: %v", err)
	}
	if ErrorCode(ErrArbiterNotThirdParty) != CodePolicyViolation {
		t.Fatal("code")
	}
	// A third organisation's agent is accepted, and an honest counter
	// that names only a price carries it in its own signed terms.
	good := gpuTerms()
	good.Arbiter = judge.Agent().String()
	s, c, err := negotiate(t, buyer, vendor, mv{buyer, Propose, &ProposeBody{Terms: &good}},
		mv{vendor, Counter, &CounterBody{Terms: Terms{UnitPrice: "2.80"}}}, mv{buyer, Accept, nil})
	if err != nil {
		t.Fatal(err)
	}
	tr2 := s.Transcript()
	counter := tr2[len(tr2)-2].Body.(*CounterBody)
	if counter.Terms.Arbiter != good.Arbiter || c.Terms.Arbiter != good.Arbiter || c.Proposer != vendor.Agent().String() {
		t.Fatalf("counter terms %+v, commitment terms %+v", counter.Terms, c.Terms)
	}
	// The provider, when named, is a party.
	bad := gpuTerms()
	bad.Provider = judge.Agent().String()
	if _, _, err := negotiate(t, buyer, vendor, mv{buyer, Propose, &ProposeBody{Terms: &bad}}); !errors.Is(err, ErrBadReference) {
		t.Fatalf("provider not a party: %v", err)
	}
}

// TestRebuildRefusesPartyArbiter: a commitment whose offer names an
// arbiter of a party's organisation — signed outside any session, since a
// session refuses the offer — is refused as evidence too.
func TestRebuildRefusesPartyArbiter(t *testing.T) {
	k := newDealKit(t, true)
	c := k.d.Commitment
	if _, err := RebuildCommitment(c.Offer, c.Acceptance, nil, nil, time.Time{}); err != nil {
		t.Fatalf("honest commitment: %v", err)
	}
	offer, acc := *c.Offer, *c.Acceptance
	body := *offer.Body.(*ProposeBody)
	terms := *body.Terms
	crony := k.buyer
	crony.Name = "crony"
	terms.Arbiter = crony.Agent().String()
	body.Terms = &terms
	offer.Body = &body
	if err := offer.Seal(k.buyer.AgentKey, k.d.BuyerCert); err != nil {
		t.Fatal(err)
	}
	ab := *acc.Body.(*AcceptBody)
	h := offer.Hash()
	ab.ReferenceHash = h[:]
	acc.Body = &ab
	if err := acc.Seal(k.vendor.AgentKey, k.d.VendorCert); err != nil {
		t.Fatal(err)
	}
	if _, err := RebuildCommitment(&offer, &acc, nil, nil, time.Time{}); !errors.Is(err, ErrArbiterNotThirdParty) {
		t.Fatalf("party arbiter: %v", err)
	}
}
