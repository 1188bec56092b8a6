package protocol

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPeriod(t *testing.T) {
	for s, d := range map[string]time.Duration{
		"P30D": 30 * 24 * time.Hour, "PT1S": time.Second, "P1DT12H": 36 * time.Hour,
		"PT1M30S": 90 * time.Second, "P2DT3H4M5S": 2*24*time.Hour + 3*time.Hour + 4*time.Minute + 5*time.Second,
		"": 0,
	} {
		got, err := ParsePeriod(s)
		if err != nil || got != d {
			t.Errorf("ParsePeriod(%q) = %v, %v; want %v", s, got, err, d)
		}
		if FormatPeriod(d) != s {
			t.Errorf("FormatPeriod(%v) = %q, want %q", d, FormatPeriod(d), s)
		}
	}
	for _, s := range []string{"P", "PT", "P1DT", "PT36H", "PT90S", "P01D", "P1W", "P1M", "P1Y", "-P1D", "P1.5D",
		"PT0S", "p1d", "P1D ", "30", "P36501D", "PT1H1H"} {
		if _, err := ParsePeriod(s); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParsePeriod(%q) = %v, want ErrMalformed", s, err)
		}
	}
}

func TestTermsPaymentFields(t *testing.T) {
	base := Terms{Resource: "gpu-hours", Quantity: "1000", Unit: "hour", UnitPrice: "2.55", Currency: "USD"}
	withPay := base
	withPay.PayWithin = 30 * 24 * time.Hour
	withPay.Provider = FixtureParty("vendor", "vendor").Agent().String()
	if err := withPay.Validate(); err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(withPay)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(j), `"payWithin":"P30D"`) || !strings.Contains(string(j), `"provider":"agent://`) {
		t.Fatalf("JSON form: %s", j)
	}
	var back Terms
	if err := json.Unmarshal(j, &back); err != nil || back.PayWithin != withPay.PayWithin || back.Provider != withPay.Provider {
		t.Fatalf("JSON round trip: %+v, %v", back, err)
	}
	cb, _ := withPay.MarshalCBOR()
	var cback Terms
	if err := cback.UnmarshalCBOR(cb); err != nil || cback.PayWithin != withPay.PayWithin {
		t.Fatalf("CBOR round trip: %+v, %v", cback, err)
	}
	// Absent fields encode exactly as before they existed.
	old, _ := json.Marshal(base)
	if strings.Contains(string(old), "pay") || strings.Contains(string(old), "provider") {
		t.Fatalf("empty fields encoded: %s", old)
	}
	for _, bad := range []string{`"payWithin":"PT36H"`, `"payWithin":2592000`, `"payBy":"2027-03-15T00:00:00Z"`} {
		in := strings.Replace(string(old), `"currency":"USD"`, `"currency":"USD",`+bad, 1)
		if err := json.Unmarshal([]byte(in), new(Terms)); err == nil {
			t.Errorf("accepted %s", in)
		}
	}
	both := withPay
	both.PayBy = t0
	if err := both.Validate(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("payBy and payWithin together: %v", err)
	}
	// A patch setting one payment deadline clears the other.
	if p := withPay.With(Terms{PayBy: t0}); p.PayWithin != 0 || !p.PayBy.Equal(t0) {
		t.Fatalf("With: %+v", p)
	}
}
