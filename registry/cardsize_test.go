package registry

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/aspnode/asp/protocol"
)

// fullEndpoints returns the endpoints a host with many long addresses
// puts on its cards.
func fullEndpoints(org string) []string {
	var addrs []string
	for i := 0; i < 3*MaxEndpoints; i++ {
		s := fmt.Sprintf("/dns4/%s/tcp/%d/p2p/%s", strings.Repeat("h", maxEndpointLen), i, org)
		addrs = append(addrs, s[len(s)-maxEndpointLen:])
	}
	return fitEndpoints(addrs)
}

// TestCheckAgentBoundsTheCard: an agent CheckAgent accepts gets a signed
// card within MaxCardSize even with its endpoints filling the budget; a
// description over the limit, too many capabilities or capabilities too
// long for the card are refused as ErrOversized.
func TestCheckAgentBoundsTheCard(t *testing.T) {
	seed := uint64(42)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	org := seedKey(7)
	orgID := protocol.PeerIDFromPublicKey(org.Public().(ed25519.PublicKey))
	agentKey := seedKey(9)
	pub := agentKey.Public().(ed25519.PublicKey)
	capName := func(n int) string {
		var segs []string
		for n > 0 {
			l := min(n, 63)
			segs = append(segs, "c"+strings.Repeat("x", l-1))
			n -= l + 1
		}
		return strings.Join(segs, ".")
	}
	accepted, refused := 0, 0
	for i := 0; i < 300; i++ {
		name := fmt.Sprintf("agent-%d", i)
		desc := strings.Repeat("d", rng.IntN(MaxDescription+200))
		var caps []string
		for j, n := 0, rng.IntN(MaxCapabilities+4); j < n; j++ {
			caps = append(caps, fmt.Sprintf("%s.%d", capName(1+rng.IntN(MaxCapabilityLen-4)), j))
		}
		caps, err := NormalizeCapabilities(caps)
		if err != nil {
			t.Fatal(err)
		}
		id := protocol.AgentID{Org: orgID, Name: name}
		notAfter := t0.Add(365 * 24 * 60 * 60 * 1e9)
		cert, err := protocol.IssueCertificate(org, id, pub, caps, notAfter)
		if err != nil {
			t.Fatal(err)
		}
		err = CheckAgent(orgID, Agent{Name: name, Description: desc, Capabilities: caps, PublicKey: pub, Certificate: cert})
		if err != nil {
			if !errors.Is(err, ErrOversized) {
				t.Fatalf("agent %d: %v, want ErrOversized", i, err)
			}
			refused++
			continue
		}
		accepted++
		c := &Card{AgentID: id.String(), Org: orgID, Name: name, Description: desc, Capabilities: caps,
			Protocols: []string{protocol.Version}, Endpoints: fullEndpoints(orgID), PublicKey: pub,
			Certificate: cert, Version: 1 << 62, NotAfter: notAfter}
		if err := c.Sign(org); err != nil {
			t.Fatal(err)
		}
		raw, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeCard(raw); err != nil {
			t.Fatalf("agent %d passed CheckAgent, its card of %d bytes is refused: %v", i, len(raw), err)
		}
		if err := c.Verify(t0); err != nil {
			t.Fatalf("agent %d: %v", i, err)
		}
	}
	t.Logf("accepted %d, refused %d", accepted, refused)
	if accepted < 50 || refused < 50 {
		t.Fatalf("accepted %d, refused %d: the sample misses one side", accepted, refused)
	}
	for name, a := range map[string]Agent{
		"900 KB description": {Name: "a", Description: strings.Repeat("x", 900<<10), PublicKey: pub},
		"33 capabilities": {Name: "a", PublicKey: pub, Capabilities: func() (cs []string) {
			for i := 0; i <= MaxCapabilities; i++ {
				cs = append(cs, fmt.Sprintf("c%d", i))
			}
			return cs
		}()},
		"32 long capabilities": {Name: "a", PublicKey: pub, Capabilities: func() (cs []string) {
			for i := 0; i < MaxCapabilities; i++ {
				cs = append(cs, fmt.Sprintf("%s.%02d", capName(MaxCapabilityLen-3), i))
			}
			return cs
		}()},
	} {
		if err := CheckAgent(orgID, a); !errors.Is(err, ErrOversized) {
			t.Errorf("%s: %v, want ErrOversized", name, err)
		}
	}
}

// TestCardJSONStrict: a card's JSON with a key twice or in another case
// is malformed, though encoding/json alone would read it.
func TestCardJSONStrict(t *testing.T) {
	c := testCard(t, seedKey(1), "vendor", "compute.gpu-hours")
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]string{
		"description twice": strings.Replace(string(j), `"description":`, `"description":"evil","description":`, 1),
		"Description":       strings.Replace(string(j), `"description":`, `"Description":`, 1),
		"certificate key":   strings.Replace(string(j), `"notAfter":`, `"NotAfter":`, 1),
	} {
		if bad == string(j) {
			t.Fatalf("%s: no change", name)
		}
		var x Card
		if err := json.Unmarshal([]byte(bad), &x); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}
