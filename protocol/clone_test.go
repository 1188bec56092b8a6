package protocol

import (
	"testing"
	"time"
)

func TestCloneIsIndependent(t *testing.T) {
	buyer, vendor := FixtureParty("buyer-org", "buyer"), FixtureParty("vendor-org", "vendor")
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	deal, err := SeedDeal(buyer, vendor, start)
	if err != nil {
		t.Fatal(err)
	}
	tr := deal.Transcript
	s, err := Replay(Config{}, tr[:len(tr)-1], tr[len(tr)-1].Timestamp)
	if err != nil {
		t.Fatal(err)
	}
	before := s.State()
	c := s.Clone()
	if _, err := c.Step(tr[len(tr)-1], tr[len(tr)-1].Timestamp); err != nil {
		t.Fatal(err)
	}
	if s.State() != before || s.Len() != len(tr)-1 || len(s.Commitments()) != 0 {
		t.Fatalf("stepping the clone changed the original: state %s len %d", s.State(), s.Len())
	}
	if c.State() == before || len(c.Commitments()) != 1 {
		t.Fatalf("clone state %s commitments %d", c.State(), len(c.Commitments()))
	}
	// The original can still take the same step.
	if _, err := s.Step(tr[len(tr)-1], tr[len(tr)-1].Timestamp); err != nil {
		t.Fatal(err)
	}
	if s.Head() != c.Head() {
		t.Fatal("original and clone diverged on the same step")
	}
}
