package trust

import (
	"errors"
	"math"
	"strconv"
	"testing"
	"time"
)

var t0 = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)

func ag(org, name string) string { return AgentScheme + org + "/" + name }

// world adds evidence with fresh commitment ids.
type world struct {
	t testing.TB
	m *Model
	n int
}

func newWorld(t testing.TB, cfg Config) *world {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, m: m}
}

func (w *world) add(att, sub string, o Outcome, at time.Time) {
	w.t.Helper()
	w.n++
	if err := w.m.Add(Evidence{Attester: att, Subject: sub, CommitmentID: "cmt_" + strconv.Itoa(w.n), Outcome: o, Time: at}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) repeat(k int, att, sub string, o Outcome, at time.Time) {
	w.t.Helper()
	for range k {
		w.add(att, sub, o, at)
	}
}

// expected recomputes a score from sums by the documented formula.
func expected(R, S, C, P, idleDays float64) float64 {
	F := (R + 1) / (R + S + 2)
	V := min(1, math.Log1p(C)/math.Log1p(100))
	raw := 100 * F * (VolumeFloor + (1-VolumeFloor)*V) * math.Exp(-P)
	if raw <= NeutralScore {
		return raw
	}
	Q := 1.0
	if idleDays > 30 {
		Q = math.Exp2(-(idleDays - 30) / 180)
	}
	return NeutralScore + (raw-NeutralScore)*Q
}

func near(a, b float64) bool { return math.Abs(a-b) <= 0.006 }

func TestAddRejects(t *testing.T) {
	m, _ := New(Config{})
	ok := Evidence{Attester: ag("A", "a"), Subject: ag("B", "b"), CommitmentID: "cmt_1", Outcome: Fulfilled, Time: t0}
	for _, tc := range []struct {
		name string
		edit func(*Evidence)
		want error
	}{
		{"no scheme", func(e *Evidence) { e.Attester = "A/a" }, ErrInvalid},
		{"no name", func(e *Evidence) { e.Subject = "agent://B/" }, ErrInvalid},
		{"no org", func(e *Evidence) { e.Subject = "agent:///b" }, ErrInvalid},
		{"attester org mismatch", func(e *Evidence) { e.AttesterOrg = "Z" }, ErrInvalid},
		{"subject org mismatch", func(e *Evidence) { e.SubjectOrg = "Z" }, ErrInvalid},
		{"no commitment", func(e *Evidence) { e.CommitmentID = "" }, ErrInvalid},
		{"zero outcome", func(e *Evidence) { e.Outcome = 0 }, ErrInvalid},
		{"unknown outcome", func(e *Evidence) { e.Outcome = 99 }, ErrInvalid},
		{"zero time", func(e *Evidence) { e.Time = time.Time{} }, ErrInvalid},
		{"negative value", func(e *Evidence) { e.Value = "-3" }, ErrInvalid},
		{"float value", func(e *Evidence) { e.Value = "1e9" }, ErrInvalid},
		{"dot value", func(e *Evidence) { e.Value = "3." }, ErrInvalid},
		{"self", func(e *Evidence) { e.Subject = e.Attester }, ErrSelf},
		{"same org", func(e *Evidence) { e.Subject = ag("A", "other") }, ErrSameOrg},
	} {
		e := ok
		tc.edit(&e)
		if err := m.Add(e); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	if m.Len() != 0 {
		t.Fatalf("stored %d rejected items", m.Len())
	}
	withOrgs := ok
	withOrgs.AttesterOrg, withOrgs.SubjectOrg, withOrgs.Value = "A", "B", "2550.00"
	if err := m.Add(withOrgs); err != nil {
		t.Fatal(err)
	}
	if err := m.Add(withOrgs); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("same item twice: %v", err)
	}
	older := ok
	older.Time = t0.Add(-time.Hour)
	older.Outcome = Breached
	if err := m.Add(older); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("older item: %v", err)
	}
	s := m.Compute("A", t0)
	e := s.Explain(ag("B", "b"))
	if e.Counts.Fulfilled != 1 || e.Counts.Breached != 0 {
		t.Fatalf("counts %+v", e.Counts)
	}
	if e2 := s.Explain(ag("A", "other")); e2.Ignored.SameOrg != 1 || e2.Known {
		t.Fatalf("same-org rejection not explained: %+v", e2)
	}
	if e3 := s.Explain(ag("A", "a")); e3.Ignored.Self != 1 {
		t.Fatalf("self rejection not explained: %+v", e3.Ignored)
	}
}

func TestLatestWins(t *testing.T) {
	m, _ := New(Config{})
	e := Evidence{Attester: ag("A", "a"), Subject: ag("B", "b"), CommitmentID: "cmt_1", Outcome: Fulfilled, Time: t0}
	if err := m.Add(e); err != nil {
		t.Fatal(err)
	}
	// Later, the commitment went to dispute and B lost it.
	e.Outcome, e.Time = DisputeLost, t0.Add(Day)
	if err := m.Add(e); err != nil {
		t.Fatal(err)
	}
	// Same time, milder outcome: the more severe stays.
	e.Outcome = Fulfilled
	if err := m.Add(e); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("tie: %v", err)
	}
	if m.Len() != 1 {
		t.Fatalf("len %d", m.Len())
	}
	x := m.Compute("A", t0.Add(Day)).Explain(ag("B", "b"))
	if x.Counts.DisputeLost != 1 || x.Completed != 0 || x.Score >= NeutralScore {
		t.Fatalf("latest should win: %+v", x)
	}
}

func TestUnknownIsNeutral(t *testing.T) {
	m, _ := New(Config{})
	s := m.Compute("A", t0)
	if s.Len() != 0 || s.Anchored() {
		t.Fatal("empty model")
	}
	x := s.Explain(ag("X", "y"))
	if x != Neutral(ag("X", "y")) || x.Score != NeutralScore || x.Level != L0 || x.Known {
		t.Fatalf("unknown agent: %+v", x)
	}
	if NeutralScore != 10 || LevelFor(NeutralScore, 0) != L0 {
		t.Fatal("neutral score is documented as 10, level L0")
	}
}

// TestDirectExperience checks scores against the documented formula for the
// observer's own evidence (weight 1, fresh items).
func TestDirectExperience(t *testing.T) {
	w := newWorld(t, Config{})
	buyer, vendor := ag("A", "buyer"), ag("B", "vendor")
	prev := NeutralScore
	for _, n := range []int{1, 2, 3, 5, 10, 25, 60, 200} {
		for w.m.Len() < n {
			w.add(buyer, vendor, Fulfilled, t0)
		}
		x := w.m.Compute("A", t0).Explain(vendor)
		R := float64(min(n, 25)) // PairCap
		want := expected(R, 0, R, 0, 0)
		if !near(x.Score, want) {
			t.Fatalf("n=%d: score %v, formula %v (%+v)", n, x.Score, want, x.Components)
		}
		if x.Completed != n || x.Level != LevelFor(x.Score, n) {
			t.Fatalf("n=%d: %+v", n, x)
		}
		if x.Score < prev {
			t.Fatalf("n=%d: score fell %v -> %v", n, prev, x.Score)
		}
		prev = x.Score
	}
	// One organisation's word saturates at PairCap: a vendor of a single
	// customer tops out below L4.
	if x := w.m.Compute("A", t0).Explain(vendor); x.Level >= L4 {
		t.Fatalf("single customer reached %v", x.Level)
	}
}

func TestManyPartnersReachL4(t *testing.T) {
	w := newWorld(t, Config{})
	vendor := ag("V", "vendor")
	// The observer's own agents and five organisations it deals with.
	for i := range 5 {
		org := "C" + strconv.Itoa(i)
		w.repeat(4, ag("OBS", "buyer"), ag(org, "s"), Fulfilled, t0)
		w.repeat(25, ag(org, "buyer"), vendor, Fulfilled, t0)
	}
	s := w.m.Compute("OBS", t0)
	x := s.Explain(vendor)
	if x.Level != L4 || x.Completed != 125 {
		t.Fatalf("vendor with 125 deals from 5 trusted partners: %+v", x)
	}
}

func TestBreachDrop(t *testing.T) {
	for _, o := range []Outcome{Breached, Expired, DisputeLost} {
		w := newWorld(t, Config{})
		buyer, vendor := ag("A", "buyer"), ag("B", "vendor")
		w.repeat(20, buyer, vendor, Fulfilled, t0)
		before := w.m.Compute("A", t0).Explain(vendor)
		w.add(buyer, vendor, o, t0)
		after := w.m.Compute("A", t0).Explain(vendor)
		// The fresh penalty alone multiplies the score by exp(-Penalty).
		if limit := before.Score*math.Exp(-Penalty(o)) + 0.01; after.Score > limit {
			t.Errorf("%v: %v -> %v, want ≤ %v", o, before.Score, after.Score, limit)
		}
		if after.Components.DisputesLost.Evidence != 1 || after.Components.DisputesLost.Value >= 1 {
			t.Errorf("%v: components %+v", o, after.Components.DisputesLost)
		}
		R, S, P := 20.0, NegativeWeight(o), Penalty(o)
		if want := expected(R, S, R, P, 0); !near(after.Score, want) {
			t.Errorf("%v: score %v, formula %v", o, after.Score, want)
		}
	}
}

func TestIdleDecayAndRecovery(t *testing.T) {
	w := newWorld(t, Config{})
	buyer, good, bad := ag("A", "buyer"), ag("B", "good"), ag("C", "bad")
	w.repeat(30, buyer, good, Fulfilled, t0)
	w.add(buyer, bad, Breached, t0)
	prevGood, prevBad := 101.0, -1.0
	for d := 0; d <= 3650; d += 15 {
		s := w.m.Compute("A", t0.Add(time.Duration(d)*Day))
		g, b := s.Explain(good), s.Explain(bad)
		if g.Score > prevGood || b.Score < prevBad {
			t.Fatalf("day %d: good %v (was %v), bad %v (was %v)", d, g.Score, prevGood, b.Score, prevBad)
		}
		if b.Score > NeutralScore || g.Score < NeutralScore {
			t.Fatalf("day %d: crossed neutral: good %v bad %v", d, g.Score, b.Score)
		}
		if d <= 30 && g.Components.Recency.Value != 1 {
			t.Fatalf("day %d: recency %v inside the grace period", d, g.Components.Recency.Value)
		}
		prevGood, prevBad = g.Score, b.Score
	}
	if prevGood-NeutralScore > 0.5 || NeutralScore-prevBad > 0.5 {
		t.Fatalf("after ten years: good %v bad %v, want ≈ %v", prevGood, prevBad, NeutralScore)
	}
}

func TestFutureEvidenceWaits(t *testing.T) {
	w := newWorld(t, Config{})
	w.add(ag("A", "a"), ag("B", "b"), Fulfilled, t0.Add(Day))
	w.add(ag("A", "a"), ag("B", "b"), Fulfilled, t0.Add(time.Minute)) // within skew
	x := w.m.Compute("A", t0).Explain(ag("B", "b"))
	if x.Ignored.Future != 1 || x.Completed != 1 {
		t.Fatalf("%+v", x)
	}
	if x := w.m.Compute("A", t0.Add(Day)).Explain(ag("B", "b")); x.Completed != 2 {
		t.Fatalf("%+v", x)
	}
}

// TestThirdParty is the model side of the testnet check: a node that took
// part in neither commitment sees what the model says, through the
// organisation it pre-trusts; unfounded evidence moves nothing.
func TestThirdParty(t *testing.T) {
	w := newWorld(t, Config{PreTrusted: []string{"A"}})
	buyer, vendor, breacher := ag("A", "buyer"), ag("B", "vendor"), ag("D", "breacher")
	w.repeat(5, buyer, vendor, Fulfilled, t0)
	w.add(buyer, breacher, Breached, t0)
	// An organisation nobody trusts praises the breacher and slanders the vendor.
	w.repeat(50, ag("X", "sybil"), breacher, Fulfilled, t0)
	w.repeat(50, ag("X", "sybil"), vendor, Breached, t0)

	s := w.m.Compute("C", t0)
	if !s.Anchored() {
		t.Fatal("pre-trusted A should anchor C")
	}
	v, b := s.Explain(vendor), s.Explain(breacher)
	// A is C's only anchor: its weight is 1 (the anchors' mean credibility).
	if want := expected(5, 0, 5, 0, 0); !near(v.Score, want) || v.Completed != 5 {
		t.Fatalf("vendor seen by C: %v, formula %v (%+v)", v.Score, want, v)
	}
	if want := expected(0, 4, 0, 0.3, 0); !near(b.Score, want) {
		t.Fatalf("breacher seen by C: %v, formula %v", b.Score, want)
	}
	if v.Ignored.Unendorsed != 50 || b.Ignored.Unendorsed != 50 || s.OrgMass("X") != 0 {
		t.Fatalf("unfounded evidence counted: %+v %+v", v.Ignored, b.Ignored)
	}
	// Without an anchor, C trusts nobody's word.
	w2 := newWorld(t, Config{})
	w2.repeat(5, buyer, vendor, Fulfilled, t0)
	s2 := w2.m.Compute("C", t0)
	if s2.Anchored() || s2.Explain(vendor).Score != NeutralScore {
		t.Fatalf("unanchored observer: %+v", s2.Explain(vendor))
	}
}

func TestValueWeight(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want float64
	}{{"", 1}, {"0", 1}, {"1000", 1 + math.Log10(2)}, {"99000.5", 3}, {"1" + string(make([]byte, 0)) + "000000000", 3}} {
		got, err := valueWeight(tc.v)
		if err != nil || math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("valueWeight(%q) = %v, %v; want %v", tc.v, got, err, tc.want)
		}
	}
	// A breach of a large commitment costs more than one of a small one.
	w := newWorld(t, Config{})
	for i, v := range []string{"10", "500000"} {
		sub := ag("B", "v"+strconv.Itoa(i))
		w.repeat(10, ag("A", "a"), sub, Fulfilled, t0)
		w.n++
		if err := w.m.Add(Evidence{Attester: ag("A", "a"), Subject: sub, CommitmentID: "big" + strconv.Itoa(i), Outcome: Breached, Time: t0, Value: v}); err != nil {
			t.Fatal(err)
		}
	}
	s := w.m.Compute("A", t0)
	if small, large := s.Score(ag("B", "v0")).Score, s.Score(ag("B", "v1")).Score; large >= small {
		t.Fatalf("large breach %v not below small breach %v", large, small)
	}
}

func TestOutcomeAndLevelText(t *testing.T) {
	for o := Fulfilled; o <= Expired; o++ {
		b, err := o.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Outcome
		if err := back.UnmarshalText(b); err != nil || back != o {
			t.Fatalf("%v: %v %v", o, back, err)
		}
	}
	if o, err := ParseOutcome("DISPUTE-LOST"); err != nil || o != DisputeLost {
		t.Fatal(o, err)
	}
	if _, err := ParseOutcome("great"); !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		score float64
		done  int
		want  Level
	}{
		{100, 0, L0}, {19.99, 100, L0}, {20, 1, L1}, {39, 100, L1}, {40, 2, L1}, {40, 3, L2},
		{60, 9, L2}, {60, 10, L3}, {80, 24, L3}, {80, 25, L4}, {100, 1000, L4},
	} {
		if got := LevelFor(tc.score, tc.done); got != tc.want {
			t.Errorf("LevelFor(%v, %d) = %v, want %v", tc.score, tc.done, got, tc.want)
		}
	}
	for l := L0; l <= L4; l++ {
		b, _ := l.MarshalText()
		var back Level
		if err := back.UnmarshalText(b); err != nil || back != l {
			t.Fatal(l, back, err)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	for _, c := range []Config{
		{Damping: 1}, {Damping: -0.1}, {AnchorShare: 2}, {EndorsementUnit: -1},
		{MaxIterations: -1}, {Tolerance: 2}, {PairCap: -1}, {HalfLife: -Day},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
	m, err := New(Config{})
	if err != nil || m.Config().Damping != DefaultConfig().Damping {
		t.Fatal(err)
	}
}

// TestContestedComplaint: a complaint the accused answers on the same
// commitment is weighed by the two organisations' weights; a ruling is not.
func TestContestedComplaint(t *testing.T) {
	build := func(o Outcome, answer bool, vendorTrusted bool) Explanation {
		w := newWorld(t, Config{})
		obs, a, v := ag("O", "o"), ag("A", "a"), ag("V", "v")
		w.repeat(10, obs, a, Fulfilled, t0) // O trusts A
		if vendorTrusted {
			w.repeat(10, obs, ag("V", "other"), Fulfilled, t0) // and V
			w.repeat(10, a, v, Fulfilled, t0)
		}
		if err := w.m.Add(Evidence{Attester: a, Subject: v, CommitmentID: "c", Outcome: o, Time: t0}); err != nil {
			t.Fatal(err)
		}
		if answer {
			if err := w.m.Add(Evidence{Attester: v, Subject: a, CommitmentID: "c", Outcome: Fulfilled, Time: t0}); err != nil {
				t.Fatal(err)
			}
		}
		return w.m.Compute("O", t0).Explain(v)
	}
	// With a single attesting organisation, P / (its weight) is the
	// penalty the complaint carries after any discount.
	ratio := func(x Explanation) float64 {
		return x.Components.DisputesLost.Weight / x.Components.Endorsement.Weight
	}
	plain := build(Breached, false, true)
	answered := build(Breached, true, true)
	if plain.Counts.Contested != 0 || answered.Counts.Contested != 1 {
		t.Fatalf("contested counts: %d %d", plain.Counts.Contested, answered.Counts.Contested)
	}
	if r := ratio(plain); math.Abs(r-Penalty(Breached)) > 1e-6 {
		t.Fatalf("unanswered complaint carries %v", r)
	}
	if r := ratio(answered); r >= Penalty(Breached)*0.9 {
		t.Fatalf("answered complaint between trusted parties carries %v", r)
	}
	// The answer of an organisation the observer gives no weight discounts nothing.
	if x := build(Breached, true, false); x.Counts.Contested != 1 || math.Abs(ratio(x)-Penalty(Breached)) > 1e-6 {
		t.Fatalf("untrusted answer discounted the complaint: %v", ratio(x))
	}
	// A lost dispute is a ruling: an answer changes nothing.
	if x := build(DisputeLost, true, true); x.Counts.Contested != 0 || math.Abs(ratio(x)-Penalty(DisputeLost)) > 1e-6 {
		t.Fatalf("ruling contested: %+v", x)
	}
}
