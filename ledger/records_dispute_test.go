package ledger

import (
	"errors"
	"testing"
	"time"

	"github.com/aspnode/asp/protocol"
)

func TestDisputeRecordRoundTripAndRefusals(t *testing.T) {
	b := DisputeRecordBody{Breach: &Breach{Obligation: "cmt_1/delivery", Obligor: "agent://p/v", Deadline: "2027-03-15T00:00:00.000Z"}}
	got, err := DecodeDisputeRecord(EncodeDisputeRecord(b))
	if err != nil || got.Breach == nil || *got.Breach != *b.Breach {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for name, bad := range map[string]DisputeRecordBody{
		"none":  {},
		"two":   {Filing: []byte{1}, Step: []byte{2}},
		"empty": {Filing: []byte{}},
	} {
		if _, err := DecodeDisputeRecord(EncodeDisputeRecord(bad)); !errors.Is(err, protocol.ErrMalformed) {
			t.Errorf("%s: %v, want malformed", name, err)
		}
	}
	// A filing that is not a signed filing does not verify.
	e := Entry{Kind: KindDispute, Commitment: "cmt_1", Body: EncodeDisputeRecord(DisputeRecordBody{Filing: []byte{0xa0}})}
	if err := VerifyProtocolBody(e); err == nil {
		t.Fatal("an unsigned filing verified")
	}
}

func TestPolicyRecord(t *testing.T) {
	p := Policy{OnBreach: "file", ConfirmWithin: "72h0m0s", RespondWithin: "2s", NegotiateFor: "1h", RuleWithin: "1h", DefaultArbiters: []string{"agent://x/a"}}
	r := PolicyRecord(time.Unix(0, 0), p)
	got, err := DecodePolicy(r.Body)
	if err != nil || got.RespondWithin != "2s" || len(got.DefaultArbiters) != 1 {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	p.RuleWithin = "-1s"
	if _, err := DecodePolicy(EncodePolicy(p)); !errors.Is(err, protocol.ErrMalformed) {
		t.Fatalf("negative window: %v", err)
	}
	if err := VerifyProtocolBody(Entry{Kind: KindPolicy, Body: EncodePolicy(p)}); err == nil {
		t.Fatal("a bad policy verified")
	}
}

func FuzzDecodeDisputeRecord(f *testing.F) {
	f.Add(EncodeDisputeRecord(DisputeRecordBody{Step: []byte{1}}))
	f.Add(EncodePolicy(Policy{OnBreach: "file", ConfirmWithin: "1s", RespondWithin: "1s", NegotiateFor: "1s", RuleWithin: "1s"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := DecodeDisputeRecord(b); err == nil {
			if _, err := DecodeDisputeRecord(EncodeDisputeRecord(d)); err != nil {
				t.Fatalf("re-encoded record refused: %v", err)
			}
		}
		_, _ = DecodePolicy(b)
		_ = VerifyProtocolBody(Entry{Kind: KindDispute, Commitment: "cmt_1", Body: b})
	})
}
