package protocol

import (
	"errors"
	"testing"
	"time"
)

// TestAddReceiptCached: a cache spares only the signatures it holds. A
// receipt checked once is known; a forged one is refused with or without a
// cache, and a receipt sealed by its signer is taken without a second check.
func TestAddReceiptCached(t *testing.T) {
	k := newDealKit(t, false)
	c := k.d.Commitment
	vc := &mapCache{}
	r, _ := SignCommitmentReceipt(k.buyer.OrgKey, c, 7, []byte("cp"))
	forged := *r
	forged.LedgerIndex = 8
	if _, err := c.AddReceiptCached(&forged, vc); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged receipt with a cache: %v", err)
	}
	if vc.added != 0 {
		t.Fatal("a forged signature was remembered")
	}
	if _, err := c.AddReceiptCached(r, vc); err != nil {
		t.Fatal(err)
	}
	if vc.added != 1 {
		t.Fatalf("cache holds %d signatures after one check", vc.added)
	}
	if _, err := c.AddReceiptCached(r, vc); err != nil || vc.known != 1 {
		t.Fatalf("second add: %v, %d cache hits", err, vc.known)
	}
	// A signature the cache holds is not checked again: a cache that
	// (wrongly) knows a forged signature lets it through, which is why
	// only signatures checked or made by the caller go in.
	bad := &mapCache{}
	forged.SealedBy(bad)
	if _, err := c.AddReceiptCached(&forged, bad); err != nil {
		t.Fatalf("sealed receipt checked again: %v", err)
	}
	if _, err := c.AddReceipt(&forged); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged receipt without a cache: %v", err)
	}
}

// TestReplayMatchesRebuild: Replay on the commitment as formed gives what
// RebuildCommitment derives from the same facts.
func TestReplayMatchesRebuild(t *testing.T) {
	k := newDealKit(t, false)
	full := k.receipts(t)
	claim := k.action(t, ActionClaim, "vendor", full.Created.Add(time.Second), "vendor")
	want, err := RebuildCommitment(full.Offer, full.Acceptance, full.Receipts, []*Action{claim}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.d.Commitment.Replay(full.Receipts, []*Action{claim}, time.Time{}, &mapCache{})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != want.State || got.State != CommitmentFulfillmentClaimed || len(got.Actions) != 1 || len(got.Receipts) != 2 || !got.Updated.Equal(want.Updated) {
		t.Fatalf("replay %s %v, rebuild %s %v", got.State, got.Updated, want.State, want.Updated)
	}
	if _, err := full.Replay(full.Receipts, nil, time.Time{}, nil); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("replay of receipts already held: %v", err)
	}
}
