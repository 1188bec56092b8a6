package trust

import "testing"

// TestEquivocatedIsZeroForGood: once an organisation is proven to
// equivocate its agents score 0 whatever the evidence (before and after
// the mark, and an agent the model never saw), and its own attestations
// stop counting for others.
func TestEquivocatedIsZeroForGood(t *testing.T) {
	w := newWorld(t, Config{})
	buyer, vendor, other := ag("A", "buyer"), ag("B", "vendor"), ag("C", "seller")
	w.repeat(10, buyer, vendor, Fulfilled, t0)
	w.repeat(5, buyer, ag("B", "carrier"), Fulfilled, t0)
	w.repeat(5, vendor, other, Fulfilled, t0) // B's word about C
	before := w.m.Compute("A", t0)
	if before.Explain(vendor).Score <= NeutralScore || before.OrgWeight("B") == 0 {
		t.Fatalf("before: vendor %+v, B's weight %v", before.Explain(vendor), before.OrgWeight("B"))
	}
	otherBefore := before.Explain(other)

	w.m.Equivocated("B")
	w.repeat(10, buyer, vendor, Fulfilled, t0) // evidence after the mark
	snap := w.m.Compute("A", t0)
	for _, a := range []string{vendor, ag("B", "carrier"), ag("B", "never-seen")} {
		x := snap.Explain(a)
		if x.Score != 0 || x.Level != L0 || !x.Equivocated || x.Completed != 0 {
			t.Fatalf("%s after the mark: %+v", a, x)
		}
	}
	if snap.OrgWeight("B") != 0 {
		t.Fatalf("B's weight %v, want 0", snap.OrgWeight("B"))
	}
	if otherBefore.Score <= NeutralScore {
		t.Fatalf("C before: %+v: B's word did not count", otherBefore)
	}
	if x := snap.Explain(other); x.Equivocated || x.Score != NeutralScore {
		t.Fatalf("C after B's mark: %+v (before %+v): B's word still counts", x, otherBefore)
	}
	if x := snap.Explain(buyer); x.Equivocated {
		t.Fatalf("A marked: %+v", x)
	}
	if !w.m.IsEquivocated("B") || w.m.IsEquivocated("A") {
		t.Fatal("IsEquivocated")
	}
}
