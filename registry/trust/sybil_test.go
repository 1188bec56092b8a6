package trust

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

// honestWorld is n organisations with two agents each trading at random,
// mostly fulfilling.
func honestWorld(seed uint64, orgs, items int) []Evidence {
	rng := rand.New(rand.NewPCG(seed, 3))
	var evs []Evidence
	for i := range items {
		a, b := rng.IntN(orgs), rng.IntN(orgs-1)
		if b >= a {
			b++
		}
		o := Fulfilled
		if rng.IntN(20) == 0 {
			o = Breached
		}
		evs = append(evs, Evidence{
			Attester:     ag(fmt.Sprintf("H%02d", a), fmt.Sprint("a", rng.IntN(2))),
			Subject:      ag(fmt.Sprintf("H%02d", b), fmt.Sprint("a", rng.IntN(2))),
			CommitmentID: fmt.Sprint("h", i), Outcome: o,
			Time: t0.Add(-time.Duration(rng.IntN(200)) * Day),
		})
	}
	return evs
}

// collective is k colluding organisations ballot-stuffing among themselves.
func collective(seed uint64, k, items int) ([]Evidence, []string) {
	rng := rand.New(rand.NewPCG(seed, 4))
	orgs := make([]string, k)
	for i := range orgs {
		orgs[i] = fmt.Sprintf("S%02d", i)
	}
	var evs []Evidence
	for i := range items {
		a, b := rng.IntN(k), rng.IntN(k-1)
		if b >= a {
			b++
		}
		evs = append(evs, Evidence{
			Attester: ag(orgs[a], "x"), Subject: ag(orgs[b], "x"),
			CommitmentID: fmt.Sprint("s", i), Outcome: Fulfilled, Time: t0, Value: "1000000",
		})
	}
	return evs, orgs
}

// TestIsolatedCollectiveGainsNothing: a collective no honest organisation
// ever dealt with has zero mass and weight, its agents stay neutral, and no
// honest agent's explanation changes by a single bit.
func TestIsolatedCollectiveGainsNothing(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		honest := honestWorld(seed, 12, 1500)
		stuffed, orgs := collective(seed, 8, 5000)
		// The collective also slanders and praises honest agents: without a
		// commitment with them this is impossible, so it uses its own agents
		// as subjects only; it can still name honest orgs as pre-trusted nowhere.
		cfg := Config{PreTrusted: []string{"H01"}}
		for _, obs := range []string{"H00", "H05", "outsider"} {
			clean := snapshotOf(t, honest, cfg, obs, t0)
			dirty := snapshotOf(t, append(slices.Clone(honest), stuffed...), cfg, obs, t0)
			b := dirty.Collective(orgs)
			if b.Mass != 0 || b.Inflow != 0 || b.Limit != 0 {
				t.Fatalf("seed %d obs %s: collective bound %+v", seed, obs, b)
			}
			for _, id := range clean.Agents() {
				if x, y := clean.Explain(id), dirty.Explain(id); !reflect.DeepEqual(x, y) {
					t.Fatalf("seed %d obs %s: %s changed\n%+v\n%+v", seed, obs, id, x, y)
				}
			}
			for _, o := range clean.Orgs() {
				if clean.OrgMass(o) != dirty.OrgMass(o) {
					t.Fatalf("mass of %s changed", o)
				}
			}
			for _, o := range orgs {
				x := dirty.Explain(ag(o, "x"))
				if x.Score != NeutralScore || x.Completed != 0 || x.Ignored.Unendorsed == 0 {
					t.Fatalf("colluder %s: %+v", o, x)
				}
			}
		}
	}
}

// TestUnfoundedAttestersMoveNothing: organisations that dealt with an honest
// vendor but that no honest organisation vouches for cannot move its score,
// whatever they say.
func TestUnfoundedAttestersMoveNothing(t *testing.T) {
	honest := honestWorld(5, 10, 1000)
	vendor := ag("H03", "a0")
	var slander []Evidence
	for i := range 40 {
		slander = append(slander, Evidence{
			Attester: ag(fmt.Sprint("Sybil", i), "x"), Subject: vendor,
			CommitmentID: fmt.Sprint("y", i), Outcome: DisputeLost, Time: t0,
		})
	}
	cfg := Config{PreTrusted: []string{"H00"}}
	clean := snapshotOf(t, honest, cfg, "H01", t0)
	dirty := snapshotOf(t, append(slices.Clone(honest), slander...), cfg, "H01", t0)
	x, y := clean.Explain(vendor), dirty.Explain(vendor)
	// Only the explanation says that unendorsed evidence exists.
	if y.Ignored.Unendorsed != x.Ignored.Unendorsed+40 || y.Components.Endorsement.Value >= x.Components.Endorsement.Value {
		t.Fatalf("unendorsed evidence not explained: %+v", y)
	}
	y.Ignored.Unendorsed = x.Ignored.Unendorsed
	y.Components.Endorsement.Value = x.Components.Endorsement.Value
	if !reflect.DeepEqual(x, y) {
		t.Fatalf("slander moved the vendor:\n%+v\n%+v", x, y)
	}
}

// TestSameOrgCountsNothing: self-dealing inside one organisation is rejected.
func TestSameOrgCountsNothing(t *testing.T) {
	w := newWorld(t, Config{})
	var st AddStats
	for i := range 1000 {
		st = w.m.AddAll([]Evidence{{Attester: ag("A", "x"), Subject: ag("A", "y"), CommitmentID: fmt.Sprint(i), Outcome: Fulfilled, Time: t0}})
		if st.SameOrg != 1 {
			t.Fatalf("%+v", st)
		}
	}
	x := w.m.Compute("A", t0).Explain(ag("A", "y"))
	if x.Score != NeutralScore || x.Ignored.SameOrg != 1000 || w.m.Len() != 0 {
		t.Fatalf("%+v", x)
	}
}

// TestCollectiveBound: for random graphs, observers and sets K, the mass of K
// never exceeds ((1-α)·Inflow + PreTrust)/α, and masses sum to 1.
func TestCollectiveBound(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		rng := rand.New(rand.NewPCG(seed, 5))
		evs := honestWorld(seed, 15, 800)
		stuffed, sOrgs := collective(seed, 6, 1500)
		evs = append(evs, stuffed...)
		// A few honest organisations dealt with the collective (camouflage).
		for i := range 10 {
			evs = append(evs, Evidence{
				Attester: ag(fmt.Sprintf("H%02d", rng.IntN(15)), "a0"), Subject: ag(sOrgs[rng.IntN(len(sOrgs))], "x"),
				CommitmentID: fmt.Sprint("c", i), Outcome: Fulfilled, Time: t0,
			})
		}
		cfg := Config{PreTrusted: []string{"H00", "H07"}, Damping: []float64{0.15, 0.5, 0.8}[seed%3]}
		s := snapshotOf(t, evs, cfg, fmt.Sprintf("H%02d", rng.IntN(15)), t0)
		sum := 0.0
		for _, o := range s.Orgs() {
			sum += s.OrgMass(o)
		}
		if math.Abs(sum-1) > 1e-9 {
			t.Fatalf("seed %d: masses sum to %v", seed, sum)
		}
		sets := [][]string{sOrgs}
		for range 20 {
			var k []string
			for _, o := range s.Orgs() {
				if rng.IntN(3) == 0 {
					k = append(k, o)
				}
			}
			sets = append(sets, k)
		}
		for _, k := range sets {
			b := s.Collective(k)
			if b.Mass > b.Limit+1e-9 {
				t.Fatalf("seed %d: set %v: %+v", seed, k, b)
			}
		}
		if b := s.Collective(sOrgs); b.Mass == 0 || b.Inflow == 0 {
			t.Fatalf("seed %d: camouflaged collective should hold some trust: %+v", seed, b)
		}
		t.Logf("seed %d α=%.2f collective %+v", seed, cfg.Damping, s.Collective(sOrgs))
	}
}

func TestOrgWeight(t *testing.T) {
	honest := honestWorld(9, 10, 800)
	stuffed, orgs := collective(9, 4, 500)
	s := snapshotOf(t, append(honest, stuffed...), Config{PreTrusted: []string{"H02"}}, "H00", t0)
	if s.OrgWeight("H00") < 1 || s.OrgWeight("H02") <= 0 || s.OrgWeight("nobody") != 0 {
		t.Fatalf("weights: observer %v, pre-trusted %v", s.OrgWeight("H00"), s.OrgWeight("H02"))
	}
	for _, o := range orgs {
		if s.OrgWeight(o) != 0 {
			t.Fatalf("isolated %s has weight %v", o, s.OrgWeight(o))
		}
	}
	if s2 := snapshotOf(t, honest, Config{}, "stranger", t0); s2.OrgWeight("stranger") != 1 || s2.OrgWeight("H01") != 0 {
		t.Fatal("unanchored stranger")
	}
}
