package trust

import (
	"fmt"
	"go/parser"
	"go/token"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMonotone: when only the observer's own agents attest (weight 1), a
// fulfilled commitment never lowers the subject's score and a negative one
// never raises it, whatever the history and dates; other subjects do not move.
func TestMonotone(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	now := t0.Add(400 * Day)
	for run := range 30 {
		w := newWorld(t, Config{})
		subs := []string{ag("B", "x"), ag("C", "y"), ag("D", "z")}
		prev := w.m.Compute("O", now)
		for step := range 60 {
			sub := subs[rng.IntN(len(subs))]
			o := Outcome(rng.IntN(numOutcomes-1) + 1)
			at := now.Add(-time.Duration(rng.IntN(400*24)) * time.Hour)
			w.add(ag("O", fmt.Sprint("agent", rng.IntN(3))), sub, o, at)
			next := w.m.Compute("O", now)
			before, after := prev.Score(sub).Score, next.Score(sub).Score
			switch {
			case o.Positive() && after < before, o.Negative() && after > before:
				t.Fatalf("run %d step %d: %v about %s moved %v -> %v", run, step, o, sub, before, after)
			}
			for _, other := range subs {
				if other != sub && prev.Score(other) != next.Score(other) {
					t.Fatalf("run %d step %d: %s moved", run, step, other)
				}
			}
			prev = next
		}
	}
}

// TestExplanationConsistent: every explanation recomputes to its score, level
// and completed count, and every value is in range.
func TestExplanationConsistent(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		m, _ := New(Config{PreTrusted: []string{"12D3KooWorg00002"}})
		m.AddAll(messy(seed, 4000))
		for _, now := range []time.Time{benchNow, benchNow.Add(90 * Day), benchNow.Add(3 * 365 * Day)} {
			s := m.Compute("12D3KooWorg00001", now)
			s.All(func(x Explanation) bool {
				checkExplanation(t, x, m.Config())
				return true
			})
		}
	}
}

func checkExplanation(t testing.TB, x Explanation, cfg Config) {
	t.Helper()
	c := x.Components
	for _, v := range []float64{c.Fulfilment.Value, c.Volume.Value, c.Recency.Value, c.DisputesLost.Value, c.Endorsement.Value} {
		if !(v >= 0 && v <= 1) {
			t.Fatalf("%s: component out of [0,1]: %+v", x.AgentID, c)
		}
	}
	if !(x.Score >= 0 && x.Score <= 100) {
		t.Fatalf("%s: score %v", x.AgentID, x.Score)
	}
	raw := 100 * c.Fulfilment.Value * (VolumeFloor + (1-VolumeFloor)*c.Volume.Value) * c.DisputesLost.Value
	want := raw
	if raw > NeutralScore {
		want = NeutralScore + (raw-NeutralScore)*c.Recency.Value
	}
	if math.Abs(want-x.Score) > 0.005+1e-9 {
		t.Fatalf("%s: score %v, components give %v (%+v)", x.AgentID, x.Score, want, c)
	}
	if x.Completed != x.Counts.Fulfilled+x.Counts.DisputeWon || x.Level != LevelFor(x.Score, x.Completed) {
		t.Fatalf("%s: completed/level %+v", x.AgentID, x)
	}
	if c.DisputesLost.Evidence != x.Counts.Breached+x.Counts.Expired+x.Counts.DisputeLost {
		t.Fatalf("%s: negative count %+v", x.AgentID, x)
	}
	if c.Volume.Weight > float64(cfg.PairCap)*MaxWeight*float64(max(1, c.Endorsement.Evidence))+1e-6 {
		t.Fatalf("%s: volume weight %v beyond the per-organisation cap", x.AgentID, c.Volume.Weight)
	}
}

// TestPure: the package does no I/O and reads no clock.
func TestPure(t *testing.T) {
	allowed := map[string]bool{"errors": true, "fmt": true, "math": true, "slices": true, "strconv": true, "strings": true, "sync": true, "time": true}
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !allowed[p] {
				t.Errorf("%s imports %s", f, p)
			}
		}
		for _, bad := range []string{"time.Now", "time.Since", "time.Until", "time.After", "time.Tick", "time.Sleep", "go func"} {
			if strings.Contains(string(src), bad) {
				t.Errorf("%s uses %s", f, bad)
			}
		}
	}
}
