package ledger

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/aspnode/asp/protocol"
	"github.com/aspnode/asp/protocol/protocoltest"
)

func signedBusinessEvent(t testing.TB, p protocoltest.Party, at time.Time) BusinessEvent {
	t.Helper()
	cert, err := p.Certificate([]string{"buy"}, at.AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	cb, err := cert.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return SignBusinessEvent(BusinessEvent{Type: "order.created", AgentID: p.Agent().String(), CommitmentID: "cmt_1",
		Data: []byte(`{"order":"PO-1042"}`), Time: protocol.FormatTime(at), Certificate: cb}, p.AgentKey)
}

// The encoding is pinned: a ledger written today must verify tomorrow.
func TestBusinessEventEncodingPinned(t *testing.T) {
	ev := BusinessEvent{Type: "t", AgentID: "a", CommitmentID: "c", Data: []byte("{}"), Time: "x", Certificate: []byte{1}, Signature: []byte{2}}
	if h := hex.EncodeToString(EncodeBusinessEvent(ev)); h != "a701617402616103616304427b7d056178064101074102" {
		t.Errorf("encodes %s", h)
	}
	if h := hex.EncodeToString(ev.signedBytes()); h != "6173702f627573696e6573732d6576656e742f3100a601617402616103616304427b7d056178064101" {
		t.Errorf("signs %s", h)
	}
}

// A signed event verifies offline; every forgery is refused.
func TestBusinessEventVerifies(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	buyer := protocoltest.FixtureParty("buyer", "buyer")
	other := protocoltest.FixtureParty("other", "buyer")
	ev := signedBusinessEvent(t, buyer, at)
	entry := func(ev BusinessEvent) Entry {
		r := BusinessEventRecord(at, ev)
		return Entry{Time: r.Time, Kind: r.Kind, Commitment: r.Commitment, Body: r.Body}
	}
	if err := VerifyProtocolBody(entry(ev)); err != nil {
		t.Fatalf("a signed event: %v", err)
	}
	back, err := DecodeBusinessEvent(EncodeBusinessEvent(ev))
	if err != nil || back.Type != ev.Type || !bytes.Equal(back.Data, ev.Data) || back.CommitmentID != "cmt_1" {
		t.Fatalf("decode: %+v %v", back, err)
	}

	forged := func(name string, f func(*BusinessEvent), e func(*Entry)) {
		t.Helper()
		x := ev
		if f != nil {
			f(&x)
		}
		en := entry(x)
		if e != nil {
			e(&en)
		}
		if err := VerifyProtocolBody(en); err == nil {
			t.Errorf("%s: verifies", name)
		}
	}
	forged("data changed", func(x *BusinessEvent) { x.Data = []byte(`{"order":"PO-1043"}`) }, nil)
	forged("type changed", func(x *BusinessEvent) { x.Type = "order.cancelled" }, nil)
	forged("backdated", func(x *BusinessEvent) { x.Time = protocol.FormatTime(at.Add(-time.Hour)) }, nil)
	forged("another commitment", func(x *BusinessEvent) { x.CommitmentID = "cmt_2" }, nil)
	forged("entry names another commitment", nil, func(e *Entry) { e.Commitment = "cmt_2" })
	forged("signed by another organisation's agent of the same name", func(x *BusinessEvent) {
		*x = SignBusinessEvent(*x, other.AgentKey)
	}, nil)
	forged("another organisation's certificate", func(x *BusinessEvent) {
		y := signedBusinessEvent(t, other, at)
		x.Certificate = y.Certificate
		*x = SignBusinessEvent(*x, other.AgentKey)
	}, nil)
	forged("certificate expired at the signed time", func(x *BusinessEvent) {
		x.Time = protocol.FormatTime(at.AddDate(2, 0, 0))
		*x = SignBusinessEvent(*x, buyer.AgentKey)
	}, nil)
	forged("no signature", func(x *BusinessEvent) { x.Signature = nil }, nil)
}

func TestBusinessEventShape(t *testing.T) {
	for _, tc := range []struct {
		typ, data string
	}{
		{"", "{}"}, {"Order", "{}"}, {"1order", "{}"}, {"order created", "{}"}, {string(bytes.Repeat([]byte("a"), MaxBusinessEventType+1)), "{}"},
		{"order", ""}, {"order", "[]"}, {"order", `"x"`}, {"order", "{"}, {"order", `{"a":"` + string(bytes.Repeat([]byte("x"), MaxBusinessEventData)) + `"}`},
	} {
		if err := CheckBusinessEvent(tc.typ, []byte(tc.data)); !errors.Is(err, protocol.ErrMalformed) {
			t.Errorf("type %.20q data %.20q: %v, want malformed", tc.typ, tc.data, err)
		}
	}
	if err := CheckBusinessEvent("shipment.created-2_b", []byte(`{"a":1}`)); err != nil {
		t.Errorf("a good event: %v", err)
	}
}

func FuzzDecodeBusinessEvent(f *testing.F) {
	ev := signedBusinessEvent(f, protocoltest.FixtureParty("buyer", "buyer"), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	f.Add(EncodeBusinessEvent(ev))
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := DecodeBusinessEvent(b)
		if err != nil {
			return
		}
		if _, err := DecodeBusinessEvent(EncodeBusinessEvent(ev)); err != nil {
			t.Fatalf("re-encoded event does not decode: %v", err)
		}
		_ = VerifyProtocolBody(Entry{Kind: KindBusinessEvent, Commitment: ev.CommitmentID, Body: b})
	})
}
