package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// FuzzDecodeDispute: every dispute record that decodes re-encodes to the
// same bytes and survives its JSON form; every refusal is typed.
func FuzzDecodeDispute(f *testing.F) {
	k := newDisputeKit(f)
	at := k.c.Created.Add(time.Hour)
	d := k.filing(f, "buyer", at)
	kc, err := OpenDispute(k.c, d, nil, at, k.rules)
	if err != nil {
		f.Fatal(err)
	}
	db, _ := EncodeDispute(d)
	sb, _ := EncodeDisputeStep(k.step(f, kc, StepCounter, "vendor", at))
	rb, _ := EncodeRuling(k.ruling(f, kc, "arbiter", at, "arbiter"))
	f.Add(uint8(0), db)
	f.Add(uint8(1), sb)
	f.Add(uint8(2), rb)
	f.Add(uint8(0), []byte{0xa0})
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		type rec interface{ MarshalJSON() ([]byte, error) }
		var (
			v      rec
			err    error
			encode func() ([]byte, error)
			back   func([]byte) ([]byte, error)
		)
		switch which % 3 {
		case 0:
			var x *Dispute
			x, err = DecodeDispute(data)
			v, encode = x, func() ([]byte, error) { return EncodeDispute(x) }
			back = func(j []byte) ([]byte, error) {
				var y Dispute
				if err := json.Unmarshal(j, &y); err != nil {
					return nil, err
				}
				return EncodeDispute(&y)
			}
		case 1:
			var x *DisputeStep
			x, err = DecodeDisputeStep(data)
			v, encode = x, func() ([]byte, error) { return EncodeDisputeStep(x) }
			back = func(j []byte) ([]byte, error) {
				var y DisputeStep
				if err := json.Unmarshal(j, &y); err != nil {
					return nil, err
				}
				return EncodeDisputeStep(&y)
			}
		default:
			var x *Ruling
			x, err = DecodeRuling(data)
			v, encode = x, func() ([]byte, error) { return EncodeRuling(x) }
			back = func(j []byte) ([]byte, error) {
				var y Ruling
				if err := json.Unmarshal(j, &y); err != nil {
					return nil, err
				}
				return EncodeRuling(&y)
			}
		}
		if err != nil {
			if ErrorCode(err) == CodeInternal {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		again, err := encode()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("re-encodes differently: %v", err)
		}
		j, err := v.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		fromJSON, err := back(j)
		if err != nil || !bytes.Equal(fromJSON, data) {
			t.Fatalf("JSON form does not round-trip: %v\n%s", err, j)
		}
	})
}

// FuzzDisputeCase drives a dispute with a random sequence of steps,
// rulings by anyone and ticks, and checks the machine's invariants: a
// refusal is typed and changes nothing, a closed case refuses every
// record, a ruling exists exactly when the case is RULED, and time never
// runs backwards.
func FuzzDisputeCase(f *testing.F) {
	k := newDisputeKit(f)
	at := k.c.Created.Add(time.Hour)
	d := k.filing(f, "buyer", at)
	start, err := OpenDispute(k.c, d, nil, at, k.rules)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{0x09, 0x00})             // counter by vendor, accept by buyer
	f.Add([]byte{0xd6, 0x24})             // tick past respondWithin, arbiter rules
	f.Add([]byte{0x0a, 0xf6, 0xf6, 0x05}) // reject, ticks to HUMAN, joint ruling
	f.Add([]byte{0x08, 0x00, 0x01, 0x03, 0x04, 0x05})
	names := []string{"buyer", "vendor", "arbiter"}
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 12 {
			ops = ops[:12]
		}
		kc, now := start, at
		for _, b := range ops {
			now = now.Add([]time.Duration{time.Second, 10 * time.Minute, 70 * time.Minute, 0}[b>>6])
			who := names[int(b>>3&7)%3]
			before := *kc
			var n *DisputeCase
			var err error
			switch b & 7 {
			case 0, 1, 2, 3:
				kind := []StepKind{StepAccept, StepCounter, StepReject, StepEscalate}[b&3]
				n, err = kc.Step(k.step(t, kc, kind, who, now), now, k.rules)
			case 4:
				n, err = kc.Rule(k.ruling(t, kc, who, now, who), now, k.rules)
			case 5:
				n, err = kc.Rule(k.ruling(t, kc, "", now, "buyer", "vendor"), now, k.rules)
			default:
				n, _ = kc.Tick(now, k.rules.Windows)
			}
			if err != nil {
				if ErrorCode(err) == CodeInternal {
					t.Fatalf("untyped refusal: %v", err)
				}
				if kc.State.Closed() && !errors.Is(err, ErrDisputeClosed) && b&7 < 6 {
					t.Fatalf("closed case refused with %v", err)
				}
				if kc.State != before.State || len(kc.Steps) != len(before.Steps) || kc.Ruling != before.Ruling {
					t.Fatal("a refusal changed the case")
				}
				continue
			}
			if (n.State == DisputeRuled) != (n.Ruling != nil) || n.Updated.Before(kc.Updated) {
				t.Fatalf("invariant: %s ruling %v updated %s → %s", n.State, n.Ruling != nil, kc.Updated, n.Updated)
			}
			if kc.State.Closed() && n.State != kc.State {
				t.Fatalf("closed case moved %s → %s", kc.State, n.State)
			}
			switch n.State {
			case DisputeFiled, DisputeRemedyOffered, DisputeResolved, DisputeEscalated, DisputeHuman, DisputeRuled:
			default:
				t.Fatalf("state %q", n.State)
			}
			kc = n
		}
	})
}

// FuzzPenaltyRule: a penalty text either parses, and then every lateness
// owes a valid decimal no more than the total (for percentages), or is
// refused with ErrBadPenalty; a period either parses to its canonical
// form or is refused.
func FuzzPenaltyRule(f *testing.F) {
	for _, s := range []string{"5% per day late", "2% per week late", "100.00 USD", "50 EUR per hour late", "0.5% per day late", "P30D"} {
		f.Add(s, int64(49*time.Hour))
	}
	f.Fuzz(func(t *testing.T, s string, late int64) {
		if d, err := ParsePeriod(s); err == nil {
			if FormatPeriod(d) != s {
				t.Fatalf("period %q formats as %q", s, FormatPeriod(d))
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("period refusal: %v", err)
		}
		r, err := ParsePenaltyRule(s)
		if err != nil {
			if !errors.Is(err, ErrBadPenalty) {
				t.Fatalf("untyped refusal: %v", err)
			}
			return
		}
		owed, _, err := r.Owed("2550.00", "USD", time.Duration(late))
		if err != nil {
			if !errors.Is(err, ErrBadPenalty) {
				t.Fatalf("untyped refusal: %v", err)
			}
			return
		}
		if ValidDecimal(owed) != nil {
			t.Fatalf("%q owes %q", s, owed)
		}
		if cmp, _ := CompareDecimal(owed, "2550.00"); r.Percent != "" && cmp > 0 {
			t.Fatalf("%q owes %s, more than the total", s, owed)
		}
	})
}
