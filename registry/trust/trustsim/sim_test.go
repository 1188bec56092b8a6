package trustsim

import (
	"bytes"
	"flag"
	"os"
	"reflect"
	"testing"

	"github.com/aspnode/asp/registry/trust"
)

var (
	flagSim   = flag.Bool("sim", false, "run the full simulation report (slow)")
	flagWrite = flag.Bool("sim.write", false, "with -sim: rewrite the report in docs/trust.md")
	flagSeed  = flag.Uint64("sim.seed", 1, "seed of the report")
)

// small shrinks a run for the default test suite.
func small(p Params) Params {
	p.Orgs, p.Rounds, p.WarmUp = 24, 14, 4
	return p
}

func run(t *testing.T, p Params) Result {
	t.Helper()
	r, err := Run(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestIsolatedGainsNothing: a collective honest organisations never dealt
// with holds no trust and its agents stay exactly neutral, however much it
// ballot-stuffs.
func TestIsolatedGainsNothing(t *testing.T) {
	for _, m := range []float64{0.2, 0.5} {
		p := small(DefaultParams())
		p.Threat, p.Malicious, p.BallotStuff = Isolated, m, 20
		r := run(t, p)
		if r.Mass != 0 || r.Limit != 0 || r.Weight != 0 || r.ColluderScore != trust.NeutralScore || r.ToCollective != 0 {
			t.Fatalf("m=%v: %+v", m, r)
		}
	}
}

// TestBreachingCollectiveGainsNothing: a collective whose every deal with an
// honest partner is breached earns no trust (honest local trust in it is
// zero), so its ballots and slander weigh nothing and its agents score at
// most neutral.
func TestBreachingCollectiveGainsNothing(t *testing.T) {
	for _, m := range []float64{0.2, 0.5} {
		p := small(DefaultParams())
		p.Threat, p.Malicious = Collective, m
		r := run(t, p)
		if r.Mass != 0 || r.ColluderScore > trust.NeutralScore {
			t.Fatalf("m=%v: %+v", m, r)
		}
	}
}

// TestBoundHolds: under camouflage the collective holds trust, never more
// than trust.Bound allows, in any observer's view in any round.
func TestBoundHolds(t *testing.T) {
	for _, f := range []float64{0.5, 0.9} {
		for _, m := range []float64{0.3, 0.6} {
			p := small(DefaultParams())
			p.Threat, p.Camouflage, p.Malicious = Camouflage, f, m
			r := run(t, p)
			if r.MaxExcess > 1e-9 {
				t.Fatalf("f=%v m=%v: mass exceeded its bound by %g", f, m, r.MaxExcess)
			}
			if f == 0.9 && r.Mass == 0 {
				t.Fatalf("f=%v m=%v: a mostly fulfilling collective should earn some trust", f, m)
			}
		}
	}
}

func TestDeterministic(t *testing.T) {
	p := small(DefaultParams())
	p.Seed = 42
	if a, b := run(t, p), run(t, p); !reflect.DeepEqual(a, b) {
		t.Fatal("two runs with one seed differ")
	}
}

// TestReport regenerates the simulation report of docs/trust.md:
//
//	go test ./registry/trust/trustsim -run TestReport -sim -v             # print it
//	go test ./registry/trust/trustsim -run TestReport -sim -sim.write     # and rewrite docs/trust.md
func TestReport(t *testing.T) {
	if !*flagSim {
		t.Skip("pass -sim to run the full simulation")
	}
	t.Logf("seed %d", *flagSeed)
	out, err := Report(*flagSeed, func(r Result) {
		if r.MaxExcess > 1e-9 {
			t.Errorf("%v m=%v: mass exceeded its bound by %g", r.Params.Threat, r.Params.Malicious, r.MaxExcess)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out)
	if !*flagWrite {
		return
	}
	const path = "../../../docs/trust.md"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	begin, end := []byte("<!-- sim:begin -->\n"), []byte("<!-- sim:end -->")
	i, j := bytes.Index(doc, begin), bytes.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the sim:begin/sim:end markers", path)
	}
	var nb bytes.Buffer
	nb.Write(doc[:i+len(begin)])
	nb.WriteString(out)
	nb.Write(doc[j:])
	if err := os.WriteFile(path, nb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
