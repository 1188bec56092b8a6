package protocol

import (
	"testing"
	"time"
)

func TestSeedDealSmoke(t *testing.T) {
	d, err := SeedDeal(FixtureParty("buyer", "buyer"), FixtureParty("vendor", "vendor"), time.Date(2027, 2, 1, 9, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if d.Session.State() != StateExecuting || d.Commitment.Terms.UnitPrice != "2.55" {
		t.Fatalf("%s %+v", d.Session.State(), d.Commitment.Terms)
	}
	s, err := Replay(Config{}, d.Transcript, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Head() != d.Session.Head() {
		t.Fatal("head")
	}
	for _, e := range d.Transcript {
		b, err := EncodeEnvelope(e)
		if err != nil {
			t.Fatal(err)
		}
		e2, err := DecodeEnvelope(b)
		if err != nil {
			t.Fatal(err)
		}
		if e2.Hash() != e.Hash() {
			t.Fatal("hash")
		}
		if err := e2.Verify(); err != nil {
			t.Fatal(err)
		}
		j, _ := e.MarshalJSON()
		var e3 Envelope
		if err := e3.UnmarshalJSON(j); err != nil {
			t.Fatal(err)
		}
		b3, _ := EncodeEnvelope(&e3)
		if string(b3) != string(b) {
			t.Fatal("json round trip")
		}
	}
	t.Logf("%s %s", d.Commitment.ID, d.Commitment.State)
	j, _ := d.Transcript[3].MarshalJSON()
	t.Logf("%s", j)
}
