package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

func seedDeal(t testing.TB) *Deal {
	t.Helper()
	d, err := SeedDeal(FixtureParty("buyer", "buyer"), FixtureParty("vendor", "vendor"), t0)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestEnvelopeRoundTrips(t *testing.T) {
	d := seedDeal(t)
	for i, e := range d.Transcript {
		if err := e.Verify(); err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		b, err := EncodeEnvelope(e)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeEnvelope(b)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if back.Hash() != e.Hash() || back.Hash() != e.Integrity.Hash {
			t.Fatalf("%d: hash changed in CBOR round trip", i)
		}
		if err := back.Verify(); err != nil {
			t.Fatal(err)
		}
		// JSON → envelope → the same canonical bytes.
		j, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var fromJSON Envelope
		if err := json.Unmarshal(j, &fromJSON); err != nil {
			t.Fatalf("%d: %v\n%s", i, err, j)
		}
		b2, err := EncodeEnvelope(&fromJSON)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, b2) {
			t.Fatalf("%d: JSON round trip changes the signed bytes", i)
		}
		if err := fromJSON.Verify(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(j), `"sequenceNumber"`) || !strings.Contains(string(j), `"previousHash"`) {
			t.Fatalf("JSON form lacks camelCase fields: %s", j)
		}
	}
}

// reencode decodes canonical CBOR into a generic value, lets f change it,
// and encodes it again canonically.
func reencode(t *testing.T, b []byte, f func(m map[any]any)) []byte {
	t.Helper()
	var m map[any]any
	if err := cbor.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := encMode.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDecodeEnvelopeRefuses(t *testing.T) {
	d := seedDeal(t)
	good, err := EncodeEnvelope(d.Transcript[2]) // buyer's PROPOSE with terms
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeEnvelope(good); err != nil {
		t.Fatal(err)
	}
	body := func(f func(b map[any]any)) func(m map[any]any) {
		return func(m map[any]any) { f(m["body"].(map[any]any)) }
	}
	terms := func(f func(t map[any]any)) func(m map[any]any) {
		return body(func(b map[any]any) { f(b["terms"].(map[any]any)) })
	}
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"garbage", []byte{0xff, 0x00}, ErrMalformed},
		{"too large", make([]byte, MaxEnvelopeSize+1), ErrTooLarge},
		{"trailing", append(append([]byte{}, good...), 0x00), ErrMalformed},
		{"unknown field", reencode(t, good, func(m map[any]any) { m["extra"] = "x" }), ErrMalformed},
		{"unknown body field", reencode(t, good, body(func(b map[any]any) { b["x"] = "y" })), ErrMalformed},
		{"float price", reencode(t, good, terms(func(tm map[any]any) { tm["unitPrice"] = 2.4 })), ErrFloat},
		{"integer quantity", reencode(t, good, terms(func(tm map[any]any) { tm["quantity"] = 1000 })), ErrFloat},
		{"bad decimal", reencode(t, good, terms(func(tm map[any]any) { tm["unitPrice"] = "2,40" })), ErrBadDecimal},
		{"exponent", reencode(t, good, terms(func(tm map[any]any) { tm["quantity"] = "1e3" })), ErrBadDecimal},
		{"seconds only", reencode(t, good, func(m map[any]any) { m["timestamp"] = "2027-02-01T09:00:02Z" }), ErrMalformed},
		{"offset time", reencode(t, good, func(m map[any]any) { m["timestamp"] = "2027-02-01T10:00:02.000+01:00" }), ErrMalformed},
		{"short hash", reencode(t, good, func(m map[any]any) {
			m["integrity"].(map[any]any)["previousHash"] = []byte{1, 2}
		}), ErrMalformed},
		{"bad performative", reencode(t, good, func(m map[any]any) { m["performative"] = "HAGGLE" }), ErrMalformed},
		{"bad message id", reencode(t, good, func(m map[any]any) { m["messageId"] = "not-a-uuid" }), ErrMalformed},
		{"id from another time", reencode(t, good, func(m map[any]any) {
			m["messageId"] = d.Transcript[0].MessageID
		}), ErrMalformed},
		{"sequence zero", reencode(t, good, func(m map[any]any) { m["sequenceNumber"] = 0 }), ErrMalformed},
		{"bad sender", reencode(t, good, func(m map[any]any) { m["sender"] = "agent://nobody/x" }), ErrBadAgentID},
	}
	// Non-canonical: a longer-than-needed integer head for sequenceNumber.
	nc := bytes.Replace(good, []byte("sequenceNumber\x02"), []byte("sequenceNumber\x18\x02"), 1)
	if bytes.Equal(nc, good) {
		t.Fatal("could not build the non-canonical case")
	}
	cases = append(cases, struct {
		name string
		in   []byte
		want error
	}{"non-canonical integer", nc, ErrNonCanonical})
	// Non-canonical: map keys out of order (encode with a non-sorting mode).
	var m map[string]any
	if err := cbor.Unmarshal(good, &m); err != nil {
		t.Fatal(err)
	}
	unsorted, _ := cbor.EncOptions{Sort: cbor.SortNone}.EncMode()
	for i := 0; i < 20; i++ {
		b, _ := unsorted.Marshal(m)
		if !bytes.Equal(b, good) {
			cases = append(cases, struct {
				name string
				in   []byte
				want error
			}{"unsorted keys", b, ErrNonCanonical})
			break
		}
	}
	for _, c := range cases {
		_, err := DecodeEnvelope(c.in)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
		if err != nil && ErrorCode(err) != CodeBadRequest {
			t.Errorf("%s: code %s", c.name, ErrorCode(err))
		}
	}
}

func TestDecodeBodyJSON(t *testing.T) {
	b, err := DecodeBodyJSON(Counter, []byte(`{"terms":{"unitPrice":"2.80"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c := b.(*CounterBody); c.Terms.UnitPrice != "2.80" {
		t.Fatalf("%+v", c)
	}
	for _, c := range []struct {
		p    Performative
		in   string
		want error
	}{
		{Counter, `{"terms":{"unitPrice":2.80}}`, ErrFloat},
		{Propose, `{"type":"offer","terms":{"quantity":1000}}`, ErrFloat},
		{Commit, `{"terms":{"unitPrice":"1"},"penalties":[{"condition":"late","amount":5,"currency":"USD"}]}`, ErrFloat},
		{Counter, `{"terms":{"unitPrice":"2.80"},"extra":1}`, ErrMalformed},
		{Counter, `{"terms":{"unitPrice":"2.80"}} {}`, ErrMalformed},
		{Propose, `{"validUntil":"tomorrow"}`, ErrMalformed},
		{Performative("HAGGLE"), `{}`, ErrMalformed},
		{Accept, `{"referenceHash":"not base64!"}`, ErrMalformed},
	} {
		if _, err := DecodeBodyJSON(c.p, []byte(c.in)); !errors.Is(err, c.want) {
			t.Errorf("%s %s: got %v, want %v", c.p, c.in, err, c.want)
		}
	}
	// Every performative decodes an empty object (defaults come from Prepare).
	for _, p := range Performatives {
		b, err := DecodeBodyJSON(p, nil)
		if err != nil || b.Performative() != p {
			t.Errorf("%s: %v", p, err)
		}
	}
}

func TestDecimal(t *testing.T) {
	for _, s := range []string{"0", "1", "1000", "2.40", "0.001", "123456789012345678901234567890.123456789012345678"} {
		if err := ValidDecimal(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"", ".5", "5.", "01", "-1", "+1", "1e3", "1,5", " 1", "1 ", "NaN", "Inf", "0x10",
		"1.1234567890123456789", "1234567890123456789012345678901"} {
		if err := ValidDecimal(s); !errors.Is(err, ErrBadDecimal) {
			t.Errorf("%q accepted", s)
		}
	}
	if c, _ := CompareDecimal("2.40", "2.4"); c != 0 {
		t.Error("2.40 != 2.4")
	}
	if c, _ := CompareDecimal("2.55", "2.8"); c != -1 {
		t.Error("2.55 >= 2.8")
	}
	if tot, _ := MulDecimal("1000", "2.55"); tot != "2550.00" {
		t.Errorf("total %s", tot)
	}
	for _, c := range [][3]string{{"2550.00", "120.5", "2670.50"}, {"0.1", "0.2", "0.3"}, {"1", "2", "3"}, {"999999999999.99", "0.01", "1000000000000.00"}} {
		if sum, err := AddDecimal(c[0], c[1]); err != nil || sum != c[2] {
			t.Errorf("%s + %s = %s (%v), want %s", c[0], c[1], sum, err, c[2])
		}
	}
	if _, err := AddDecimal("1e3", "1"); !errors.Is(err, ErrBadDecimal) {
		t.Errorf("AddDecimal of a number not in decimal form: %v", err)
	}
}

func TestTimeFormat(t *testing.T) {
	tm := time.Date(2027, 3, 15, 0, 0, 0, 0, time.UTC)
	if s := FormatTime(tm); s != "2027-03-15T00:00:00.000Z" {
		t.Fatal(s)
	}
	for _, s := range []string{"2027-03-15T00:00:00Z", "2027-03-15T00:00:00.0000Z", "2027-03-15 00:00:00.000Z",
		"2027-03-15T00:00:00.000+00:00", "2027-02-30T00:00:00.000Z"} {
		if _, err := ParseTime(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestErrorCode(t *testing.T) {
	for _, c := range []struct {
		err  error
		code string
	}{
		{nil, ""},
		{errors.New("x"), CodeInternal},
		{ErrInvalidTransition, CodeInvalidTransition},
		{ErrNotParty, CodeUnauthorized},
		{ErrBadSignature, CodeInvalidSignature},
		{ErrDuplicate, CodeDuplicate},
		{ErrReplay, CodeReplay},
		{ErrStaleOffer, CodeStaleOffer},
		{ErrTimeout, CodeTimeout},
		{ErrFloat, CodeBadRequest},
		{ErrPolicyViolation, CodePolicyViolation},
		{ErrEscalated, CodeEscalationRequired},
		{ErrChainMismatch, CodeConflict},
		{&ReplayError{Index: 3, Err: ErrBadHash}, CodeInvalidSignature},
	} {
		if got := ErrorCode(c.err); got != c.code {
			t.Errorf("%v: %q, want %q", c.err, got, c.code)
		}
	}
	for _, s := range sentinels {
		if ErrorCode(s.err) == CodeInternal {
			t.Errorf("%s has no code", s.name)
		}
	}
}

func TestTermsWith(t *testing.T) {
	base := Terms{Resource: "gpu-hours", Quantity: "1000", Unit: "hour", UnitPrice: "2.40", Currency: "USD",
		Attributes: map[string]string{"region": "eu"}}
	got := base.With(Terms{UnitPrice: "2.80", Attributes: map[string]string{"tier": "a100"}})
	if got.UnitPrice != "2.80" || got.Quantity != "1000" || got.Attributes["region"] != "eu" || got.Attributes["tier"] != "a100" {
		t.Fatalf("%+v", got)
	}
	if _, ok := base.Attributes["tier"]; ok {
		t.Fatal("With modified its receiver")
	}
}
