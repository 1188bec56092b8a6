package protocol

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// mapCache is a VerifiedSignatures that counts what it is asked.
type mapCache struct {
	mu    sync.Mutex
	m     map[string]bool
	known int
	added int
}

func key(pub []byte, d [32]byte, sig []byte) string { return string(pub) + string(d[:]) + string(sig) }

func (c *mapCache) Known(pub []byte, d [32]byte, sig []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[key(pub, d, sig)] {
		c.known++
		return true
	}
	return false
}

func (c *mapCache) Add(pub []byte, d [32]byte, sig []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]bool{}
	}
	c.m[key(pub, d, sig)] = true
	c.added++
}

func TestVerifiedSignaturesCache(t *testing.T) {
	buyer, vendor := FixtureParty("buyer-org", "buyer"), FixtureParty("vendor-org", "vendor")
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	deal, err := SeedDeal(buyer, vendor, start)
	if err != nil {
		t.Fatal(err)
	}
	tr := deal.Transcript
	end := tr[len(tr)-1].Timestamp
	c := &mapCache{}
	cfg := Config{Verified: c}
	a, err := Replay(cfg, tr, end)
	if err != nil {
		t.Fatal(err)
	}
	// Every envelope signature and both certificates were verified once.
	if c.added != len(tr)+2 || c.known != 0 {
		t.Fatalf("first replay: added %d, known %d; want %d and 0", c.added, c.known, len(tr)+2)
	}
	b, err := Replay(cfg, tr, end)
	if err != nil {
		t.Fatal(err)
	}
	if c.known != len(tr)+2 || a.Head() != b.Head() || a.State() != b.State() {
		t.Fatalf("second replay: known %d, heads equal %v", c.known, a.Head() == b.Head())
	}
	// A forged signature is still refused: the cache only knows valid ones.
	s, err := Replay(cfg, tr[:len(tr)-1], end)
	if err != nil {
		t.Fatal(err)
	}
	forged := *tr[len(tr)-1]
	forged.Integrity.Signature = append([]byte(nil), forged.Integrity.Signature...)
	forged.Integrity.Signature[0] ^= 1
	if _, err := s.Step(&forged, end); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged signature with a cache: %v, want ErrBadSignature", err)
	}
}

// SealedBy lets the sealer skip its own signature check.
func TestSealedBy(t *testing.T) {
	buyer, vendor := FixtureParty("buyer-org", "buyer"), FixtureParty("vendor-org", "vendor")
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	c := &mapCache{}
	s := NewSession(Config{Verified: c}, "s1", buyer.Agent(), vendor.Agent(), start)
	env, err := s.Prepare(buyer.Agent(), Propose, &ProposeBody{Type: InvitationType}, start, FixtureRand("x"))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := buyer.Certificate(nil, start.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Seal(buyer.AgentKey, cert); err != nil {
		t.Fatal(err)
	}
	env.SealedBy(c)
	if _, err := s.Step(env, start); err != nil {
		t.Fatal(err)
	}
	if c.known != 1 {
		t.Fatalf("known %d, want the sealed signature known", c.known)
	}
}
