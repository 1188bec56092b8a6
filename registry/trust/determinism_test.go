package trust

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// messy returns a random evidence set with re-attestations (same attester
// and commitment, other outcome and time), same-organisation and self items.
func messy(seed uint64, n int) []Evidence {
	evs := synth(seed, 40, 8, n)
	rng := rand.New(rand.NewPCG(seed, 99))
	for i := range n / 5 {
		e := evs[rng.IntN(len(evs))]
		switch i % 4 {
		case 0: // later word on the same commitment
			e.Outcome, e.Time = DisputeLost, e.Time.Add(time.Hour)
		case 1: // same time, other outcome: the tie rule decides
			e.Outcome = Outcome(rng.IntN(numOutcomes-1) + 1)
		case 2:
			e.Subject = e.Attester
		case 3:
			org := OrgOf(e.Attester)
			e.Subject = AgentScheme + org + "/colleague"
		}
		evs = append(evs, e)
	}
	return evs
}

func snapshotOf(t *testing.T, evs []Evidence, cfg Config, observer string, now time.Time) *Snapshot {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.AddAll(evs)
	return m.Compute(observer, now)
}

func sameSnapshot(t *testing.T, a, b *Snapshot) {
	t.Helper()
	if !reflect.DeepEqual(a.Agents(), b.Agents()) || !reflect.DeepEqual(a.Orgs(), b.Orgs()) {
		t.Fatal("different agent or organisation sets")
	}
	ai, ar := a.Iterations()
	bi, br := b.Iterations()
	if ai != bi || ar != br || a.Anchored() != b.Anchored() {
		t.Fatalf("iterations %d/%g vs %d/%g", ai, ar, bi, br)
	}
	for _, o := range a.Orgs() {
		if a.OrgMass(o) != b.OrgMass(o) {
			t.Fatalf("mass of %s: %v vs %v", o, a.OrgMass(o), b.OrgMass(o))
		}
	}
	for _, id := range a.Agents() {
		if x, y := a.Explain(id), b.Explain(id); !reflect.DeepEqual(x, y) {
			t.Fatalf("%s:\n%+v\n%+v", id, x, y)
		}
	}
}

// TestOrderIndependence: the same set in any order gives bit-identical
// scores, masses and explanations.
func TestOrderIndependence(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Logf("seed %d", seed)
		evs := messy(seed, 3000)
		rng := rand.New(rand.NewPCG(seed, 1))
		cfg := Config{PreTrusted: []string{"12D3KooWorg00003"}}
		for _, obs := range []string{"12D3KooWorg00000", "12D3KooWorg00005", "nobody"} {
			for _, now := range []time.Time{benchNow, benchNow.Add(400 * Day)} {
				want := snapshotOf(t, evs, cfg, obs, now)
				for range 3 {
					perm := make([]Evidence, len(evs))
					for i, j := range rng.Perm(len(evs)) {
						perm[i] = evs[j]
					}
					sameSnapshot(t, want, snapshotOf(t, perm, cfg, obs, now))
				}
				// Incremental: compute in between additions, then finish.
				m, _ := New(cfg)
				m.AddAll(evs[:len(evs)/2])
				m.Compute(obs, now)
				m.AddAll(evs[len(evs)/2:])
				sameSnapshot(t, want, m.Compute(obs, now))
			}
		}
	}
}

// TestRecomputeStable: computing twice, or for another observer in between,
// changes nothing (no state leaks between computes).
func TestRecomputeStable(t *testing.T) {
	m, _ := New(Config{})
	m.AddAll(messy(7, 2000))
	a := m.Compute("12D3KooWorg00001", benchNow)
	m.Compute("12D3KooWorg00002", benchNow.Add(Day))
	sameSnapshot(t, a, m.Compute("12D3KooWorg00001", benchNow))
}

// TestConcurrentUse: adds, computes and snapshot reads may interleave (run
// with -race).
func TestConcurrentUse(t *testing.T) {
	m, _ := New(Config{})
	evs := messy(11, 2000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range evs {
			m.Add(evs[i])
		}
	}()
	for range 20 {
		s := m.Compute("12D3KooWorg00001", benchNow)
		for _, id := range s.Agents() {
			checkExplanation(t, s.Explain(id), m.Config())
		}
	}
	<-done
}
