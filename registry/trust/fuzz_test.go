package trust

import (
	"math"
	"slices"
	"strconv"
	"testing"
	"time"
)

// decodeEvidence turns fuzz bytes into evidence over a small alphabet, so
// that duplicates, same-organisation and self items are frequent. Each item
// takes 5 bytes: attester, subject, outcome, commitment, time/value.
func decodeEvidence(data []byte) []Evidence {
	agent := func(b byte) string {
		return AgentScheme + "o" + strconv.Itoa(int(b%5)) + "/a" + strconv.Itoa(int(b/5%3))
	}
	var evs []Evidence
	for len(data) >= 5 {
		b := data[:5]
		data = data[5:]
		e := Evidence{
			Attester:     agent(b[0]),
			Subject:      agent(b[1]),
			Outcome:      Outcome(b[2] % 8), // 0 and 7 are invalid
			CommitmentID: "c" + strconv.Itoa(int(b[3]%16)),
			Time:         t0.Add(time.Duration(b[4]%64) * 7 * Day),
		}
		switch b[4] / 64 {
		case 1:
			e.Value = strconv.Itoa(int(b[3]) * 997)
		case 2:
			e.Value = "x"
		case 3:
			e.AttesterOrg = "o9"
		}
		evs = append(evs, e)
	}
	return evs
}

// FuzzModel: no panic, every score in 0..100 with consistent explanation,
// order-independent, masses a distribution, the collective bound holds.
func FuzzModel(f *testing.F) {
	f.Add([]byte{0, 6, 1, 1, 3, 1, 0, 2, 2, 4, 5, 11, 3, 3, 200}, byte(0), uint16(10))
	f.Add([]byte{0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 7, 8, 6, 9, 66, 12, 13, 1, 4, 130}, byte(3), uint16(400))
	f.Fuzz(func(t *testing.T, data []byte, obs byte, days uint16) {
		if len(data) > 5*400 {
			data = data[:5*400]
		}
		evs := decodeEvidence(data)
		cfg := Config{PreTrusted: []string{"o" + strconv.Itoa(int(obs/5%5))}}
		observer := "o" + strconv.Itoa(int(obs%6)) // o5 never appears
		now := t0.Add(time.Duration(days) * Day)
		m, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		m.AddAll(evs)
		s := m.Compute(observer, now)
		sum := 0.0
		for _, o := range s.Orgs() {
			mass := s.OrgMass(o)
			if !(mass >= 0 && mass <= 1+1e-9) {
				t.Fatalf("mass of %s: %v", o, mass)
			}
			sum += mass
		}
		if s.Anchored() && math.Abs(sum-1) > 1e-9 || !s.Anchored() && sum != 0 {
			t.Fatalf("anchored %v, masses sum to %v", s.Anchored(), sum)
		}
		s.All(func(x Explanation) bool {
			checkExplanation(t, x, m.Config())
			return true
		})
		for k := 0; k < 5; k++ {
			set := []string{"o" + strconv.Itoa(k), "o" + strconv.Itoa((k+2)%5)}
			if b := s.Collective(set); b.Mass > b.Limit+1e-9 {
				t.Fatalf("set %v: %+v", set, b)
			}
		}
		rev := slices.Clone(evs)
		slices.Reverse(rev)
		m2, _ := New(cfg)
		m2.AddAll(rev)
		sameSnapshot(t, s, m2.Compute(observer, now))
	})
}
