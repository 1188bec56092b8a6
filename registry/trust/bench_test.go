package trust

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aspnode/asp/internal/cputime"
)

// synth makes n evidence items among agents agents in orgs organisations,
// deterministically for seed: random cross-organisation pairs, 95 %
// fulfilled, 3 % breached, 1 % expired, 1 % other outcomes, times spread over
// a year before benchNow, half with a value.
func synth(seed uint64, agents, orgs, n int) []Evidence {
	rng := rand.New(rand.NewPCG(seed, 7))
	ids := make([]string, agents)
	for i := range ids {
		ids[i] = fmt.Sprintf("agent://12D3KooWorg%05d/agent-%d", i%orgs, i/orgs)
	}
	evs := make([]Evidence, n)
	for i := range evs {
		a := rng.IntN(agents)
		s := rng.IntN(agents - 1)
		if s%orgs == a%orgs { // same org: shift to the next agent (another org)
			s = (s + 1) % agents
		}
		var o Outcome
		switch x := rng.IntN(100); {
		case x < 95:
			o = Fulfilled
		case x < 98:
			o = Breached
		case x < 99:
			o = Expired
		default:
			o = Outcome(rng.IntN(numOutcomes-1) + 1)
		}
		v := ""
		if rng.IntN(2) == 0 {
			v = strconv.Itoa(rng.IntN(100000)) + ".00"
		}
		evs[i] = Evidence{
			Attester:     ids[a],
			Subject:      ids[s],
			CommitmentID: "cmt_" + strconv.FormatUint(rng.Uint64(), 36),
			Outcome:      o,
			Time:         benchNow.Add(-time.Duration(rng.Int64N(int64(365 * Day)))),
			Value:        v,
		}
	}
	return evs
}

var benchNow = time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)

var big struct {
	once sync.Once
	evs  []Evidence
	m    *Model
}

// bigModel is 10 000 agents in 1 000 organisations and 1 000 000 items.
func bigModel(b *testing.B) *Model {
	big.once.Do(func() {
		big.evs = synth(1, 10_000, 1_000, 1_000_000)
		m, err := New(Config{PreTrusted: []string{"12D3KooWorg00001", "12D3KooWorg00002", "12D3KooWorg00003"}})
		if err != nil {
			b.Fatal(err)
		}
		st := m.AddAll(big.evs)
		if st.Stored < 990_000 {
			b.Fatalf("stored %+v", st)
		}
		big.m = m
	})
	return big.m
}

// BenchmarkCompute recomputes every score (10 k agents, 1 M items) for one
// observer.
func BenchmarkCompute(b *testing.B) {
	m := bigModel(b)
	b.ReportAllocs()
	b.ResetTimer()
	var s *Snapshot
	cpu0 := cputime.Process()
	for i := 0; b.Loop(); i++ {
		s = m.Compute("12D3KooWorg00000", benchNow.Add(time.Duration(i)*time.Hour))
	}
	b.ReportMetric((cputime.Process()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
	n, _ := s.Iterations()
	b.ReportMetric(float64(n), "iterations")
}

// BenchmarkAdd ingests the 1 M items into an empty model (per item).
func BenchmarkAdd(b *testing.B) {
	bigModel(b)
	b.ReportAllocs()
	b.ResetTimer()
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		m, _ := New(Config{})
		b.StartTimer()
		c0 := cputime.Process()
		m.AddAll(big.evs)
		cpu += cputime.Process() - c0
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(big.evs)), "ns/item")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/float64(len(big.evs)), "cpu-ns/item")
}

// BenchmarkComputeSmall is a node-sized set: 500 agents, 20 000 items.
func BenchmarkComputeSmall(b *testing.B) {
	m, _ := New(Config{})
	m.AddAll(synth(2, 500, 50, 20_000))
	b.ReportAllocs()
	for b.Loop() {
		m.Compute("12D3KooWorg00000", benchNow)
	}
}
