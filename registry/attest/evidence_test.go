package attest

import (
	"testing"
	"time"

	"github.com/aspnode/asp/registry/trust"
)

// Every outcome maps onto the trust model's, and the model takes the
// evidence of a verified attestation.
func TestEvidenceFeedsTheModel(t *testing.T) {
	f := newFixture(t, "evidence model")
	m, err := trust.New(trust.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range Outcomes {
		a := f.attest(t, o, t0.Add(time.Hour+time.Duration(i)*time.Second))
		e, err := Evidence(a, f.c)
		if err != nil {
			t.Fatalf("%s: %v", o, err)
		}
		if e.Outcome.String() != string(o) || e.Value != "2550.00" || e.CommitmentID != f.c.ID {
			t.Fatalf("%s: %+v", o, e)
		}
		if err := m.Add(e); err != nil {
			t.Fatalf("%s: model refused %+v: %v", o, e, err)
		}
	}
}
