package ledger

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/aspnode/asp/protocol"
	"github.com/aspnode/asp/protocol/protocoltest"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/fxamacker/cbor/v2"
)

// The record bodies are pinned: ledgers already written must keep
// recovering, so the encoders must produce what the node's earlier
// structs produced, byte for byte.
func TestRecordEncodingsPinned(t *testing.T) {
	// The node's structs as they were, encoded as the node encoded them.
	type updateRecord struct {
		State  string `cbor:"1,keyasint"`
		Action []byte `cbor:"2,keyasint,omitempty"`
	}
	type refusal struct {
		MessageID string `cbor:"1,keyasint"`
		Code      string `cbor:"2,keyasint"`
		Reason    string `cbor:"3,keyasint,omitempty"`
	}
	type reconciled struct {
		Adopted string `cbor:"1,keyasint,omitempty"`
		Ended   string `cbor:"2,keyasint,omitempty"`
	}
	type agentEvent struct {
		Op           string   `cbor:"1,keyasint"`
		AgentID      string   `cbor:"2,keyasint"`
		PublicKey    []byte   `cbor:"3,keyasint,omitempty"`
		Certificate  []byte   `cbor:"4,keyasint,omitempty"`
		Capabilities []string `cbor:"5,keyasint,omitempty"`
	}
	old := func(v any) []byte {
		b, err := cbor.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name     string
		got, was []byte
		hex      string
	}{
		{"update", EncodeCommitmentUpdate(CommitmentUpdate{State: protocol.CommitmentActive}),
			old(updateRecord{State: "ACTIVE"}), "a10166414354495645"},
		{"update with action", EncodeCommitmentUpdate(CommitmentUpdate{State: protocol.CommitmentFulfillmentClaimed, Action: []byte{1, 2}}),
			old(updateRecord{State: "FULFILLMENT_CLAIMED", Action: []byte{1, 2}}), ""},
		{"refusal", EncodeRefusal(Refusal{MessageID: "m1", Code: "superseded"}),
			old(refusal{MessageID: "m1", Code: "superseded"}), "a201626d31026a73757065727365646564"},
		{"refusal with reason", EncodeRefusal(Refusal{MessageID: "m1", Code: "c", Reason: "r"}),
			old(refusal{MessageID: "m1", Code: "c", Reason: "r"}), ""},
		{"adopted", EncodeReconciled(Reconciled{Adopted: "m1"}), old(reconciled{Adopted: "m1"}), "a101626d31"},
		{"ended", EncodeReconciled(Reconciled{Ended: "why"}), old(reconciled{Ended: "why"}), "a10263776879"},
		{"key added", EncodeKeyEvent(KeyEvent{Op: KeyAdded, AgentID: "a", PublicKey: []byte{1}, Certificate: []byte{2}, Capabilities: []string{"buy"}}),
			old(agentEvent{Op: "add", AgentID: "a", PublicKey: []byte{1}, Certificate: []byte{2}, Capabilities: []string{"buy"}}),
			"a50163616464026161034101044102058163627579"},
		{"key added, no capabilities", EncodeKeyEvent(KeyEvent{Op: KeyAdded, AgentID: "a", PublicKey: []byte{1}, Certificate: []byte{2}, Capabilities: []string{}}),
			old(agentEvent{Op: "add", AgentID: "a", PublicKey: []byte{1}, Certificate: []byte{2}, Capabilities: []string{}}), ""},
		{"key removed", EncodeKeyEvent(KeyEvent{Op: KeyRemoved, AgentID: "a"}), old(agentEvent{Op: "remove", AgentID: "a"}), "a2016672656d6f7665026161"},
	} {
		if !bytes.Equal(tc.got, tc.was) {
			t.Errorf("%s: encodes %x, the node wrote %x", tc.name, tc.got, tc.was)
		}
		if h := hex.EncodeToString(tc.got); tc.hex != "" && h != tc.hex {
			t.Errorf("%s: encodes %s, want %s", tc.name, h, tc.hex)
		}
	}
	// The whole records, as the node built them.
	at := time.Date(2027, 2, 1, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		got, was Record
	}{
		{"key event", KeyEventRecord(at, KeyEvent{Op: KeyRemoved, AgentID: "a"}),
			Record{Kind: KindKeyEvent, Time: at, Body: old(agentEvent{Op: "remove", AgentID: "a"})}},
		{"attestation received", AttestationRecord(at, "", "c", []byte("att")),
			Record{Kind: KindAttestation, Time: at, Commitment: "c", Body: []byte("att")}},
		{"attestation issued", AttestationRecord(at, "s", "c", []byte("att")),
			Record{Kind: KindAttestation, Time: at, Session: "s", Commitment: "c", Body: []byte("att")}},
	} {
		if !reflect.DeepEqual(tc.got, tc.was) {
			t.Errorf("%s: record %+v, the node wrote %+v", tc.name, tc.got, tc.was)
		}
	}
}

// recordsLedger is the seed deal as a node records it, followed by a
// signed claim on the commitment (kind 6), a refused move (kind 32), its
// adoption (kind 33), the buyer's agent key (kind 11) and the buyer's
// attestation of the commitment with both organisations' receipts (kind
// 7), the last two at the end.
func recordsLedger(t *testing.T) (recs []Record, claimAt int) {
	t.Helper()
	start := time.Date(2027, 2, 1, 9, 0, 0, 0, time.UTC)
	buyer, vendor := protocoltest.FixtureParty("buyer", "buyer"), protocoltest.FixtureParty("vendor", "vendor")
	deal, err := protocoltest.SeedDeal(buyer, vendor, start)
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range deal.Transcript {
		b, err := protocol.EncodeEnvelope(env)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, EnvelopeRecord(KindMessageSent, env, b))
	}
	c := deal.Commitment
	cb, err := protocol.EncodeCommitment(c)
	if err != nil {
		t.Fatal(err)
	}
	at := start.Add(time.Minute)
	recs = append(recs, CommitmentRecord(at, c.SessionID, c.ID, cb),
		CommitmentUpdateRecord(at, c.SessionID, c.ID, CommitmentUpdate{State: protocol.CommitmentActive}))
	a := &protocol.Action{CommitmentID: c.ID, Kind: protocol.ActionClaim, Actor: deal.Buyer.String(), Time: at}
	if err := a.Sign(buyer.AgentKey, deal.BuyerCert); err != nil {
		t.Fatal(err)
	}
	raw, err := protocol.EncodeAction(a)
	if err != nil {
		t.Fatal(err)
	}
	claimAt = len(recs)
	recs = append(recs, CommitmentUpdateRecord(at, c.SessionID, c.ID, CommitmentUpdate{State: protocol.CommitmentFulfillmentClaimed, Action: raw}),
		RefusalRecord(at, c.SessionID, "", Refusal{MessageID: deal.Transcript[2].MessageID, Code: "busy", Reason: "later"}),
		ReconciledRecord(at, c.SessionID, Reconciled{Adopted: deal.Transcript[2].MessageID}))

	certBytes, err := deal.BuyerCert.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	recs = append(recs, KeyEventRecord(start, KeyEvent{Op: KeyAdded, AgentID: deal.Buyer.String(),
		PublicKey: deal.BuyerCert.PublicKey, Certificate: certBytes, Capabilities: deal.BuyerCert.Capabilities}))

	// The attestation's evidence fields (registry/attest builds the whole;
	// its own signature is not the ledger's to check).
	rc := c
	for i, org := range []protocoltest.Party{buyer, vendor} {
		r, err := protocol.SignCommitmentReceipt(org.OrgKey, rc, uint64(i+1), []byte("checkpoint\n"))
		if err != nil {
			t.Fatal(err)
		}
		if rc, err = rc.AddReceipt(r); err != nil {
			t.Fatal(err)
		}
	}
	recs = append(recs, AttestationRecord(at, c.SessionID, c.ID, attestationBody(t, evidenceOf(t, rc, deal.Buyer, deal.Vendor))))
	return recs, claimAt
}

// evidenceOf is the evidence of an attestation by attester about subject
// of the receipted commitment c.
func evidenceOf(t *testing.T, c *protocol.Commitment, attester, subject protocol.AgentID) attestationEvidence {
	t.Helper()
	w := attestationEvidence{Version: attestationVersion, Attester: attester.String(), Subject: subject.String(), CommitmentID: c.ID}
	var err error
	if w.Offer, err = protocol.EncodeEnvelope(c.Offer); err != nil {
		t.Fatal(err)
	}
	if w.Acceptance, err = protocol.EncodeEnvelope(c.Acceptance); err != nil {
		t.Fatal(err)
	}
	for _, r := range c.Receipts {
		b, err := protocol.EncodeReceipt(r)
		if err != nil {
			t.Fatal(err)
		}
		w.Receipts = append(w.Receipts, b)
	}
	return w
}

func attestationBody(t *testing.T, w attestationEvidence) []byte {
	t.Helper()
	b, err := cbor.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A forger holding the checkpoint key rewrites a commitment update,
// refusal, reconciliation, key event or attestation and re-signs every
// checkpoint: the bundle is structurally sound, and VerifyProtocolBody
// names the forged entry.
func TestVerifyBundleRefusesForgedRecords(t *testing.T) {
	recs, claimAt := recordsLedger(t)
	build := func(rs []Record) []byte {
		l := openTest(t, vfs.NewMem(), "db")
		defer l.Close()
		if _, err := l.Append(context.Background(), rs...); err != nil {
			t.Fatal(err)
		}
		return bundleBytes(t, l, BundleExtras{})
	}
	if _, err := VerifyBundleReader(bytes.NewReader(build(recs)), VerifyOptions{VerifyEntry: VerifyProtocolBody}); err != nil {
		t.Fatalf("honest bundle: %v", err)
	}
	claim, err := DecodeCommitmentUpdate(recs[claimAt].Body)
	if err != nil {
		t.Fatal(err)
	}
	a, err := protocol.DecodeAction(claim.Action)
	if err != nil {
		t.Fatal(err)
	}
	// The claim's action, its reason changed after signing.
	a.Reason = "delivered in full"
	changed, err := protocol.EncodeAction(a)
	if err != nil {
		t.Fatal(err)
	}
	refusalAt, reconciledAt := claimAt+1, claimAt+2
	keyAt, attestationAt := len(recs)-2, len(recs)-1
	key, err := DecodeKeyEvent(recs[keyAt].Body)
	if err != nil {
		t.Fatal(err)
	}
	var cert protocol.Certificate
	if err := cert.UnmarshalCBOR(key.Certificate); err != nil {
		t.Fatal(err)
	}
	var evidence attestationEvidence
	if err := cbor.Unmarshal(recs[attestationAt].Body, &evidence); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		index int
		forge func(r *Record)
	}{
		{"action changed after signing", claimAt, func(r *Record) {
			r.Body = EncodeCommitmentUpdate(CommitmentUpdate{State: claim.State, Action: changed})
		}},
		{"action moved to another commitment", claimAt, func(r *Record) { r.Commitment = "c-other" }},
		{"update naming no commitment", claimAt, func(r *Record) { r.Commitment = "" }},
		{"update to an unknown state", claimAt - 1, func(r *Record) {
			r.Body = EncodeCommitmentUpdate(CommitmentUpdate{State: "DONE"})
		}},
		{"update garbled", claimAt - 1, func(r *Record) { r.Body = append(r.Body, 0) }},
		{"refusal naming no message", refusalAt, func(r *Record) { r.Body = EncodeRefusal(Refusal{Code: "busy"}) }},
		{"refusal not CBOR", refusalAt, func(r *Record) { r.Body = []byte("refused") }},
		{"refusal with an unknown field", refusalAt, func(r *Record) {
			r.Body = append([]byte{0xa3}, append(r.Body[1:], 0x04, 0x61, 0x78)...)
		}},
		{"reconciliation adopting and ending", reconciledAt, func(r *Record) {
			r.Body = EncodeReconciled(Reconciled{Adopted: "m", Ended: "why"})
		}},
		{"reconciliation naming no session", reconciledAt, func(r *Record) { r.Session = "" }},
		{"key event with another key than its certificate's", keyAt, func(r *Record) {
			k := key
			k.PublicKey = bytes.Repeat([]byte{7}, len(key.PublicKey))
			r.Body = EncodeKeyEvent(k)
		}},
		{"key event whose certificate grants more after signing", keyAt, func(r *Record) {
			c := cert
			c.Capabilities = append(slices.Clone(cert.Capabilities), "sell:gpu-hours")
			b, err := c.MarshalCBOR()
			if err != nil {
				t.Fatal(err)
			}
			k := key
			k.Certificate, k.Capabilities = b, c.Capabilities
			r.Body = EncodeKeyEvent(k)
		}},
		{"key event of an unknown kind", keyAt, func(r *Record) {
			k := key
			k.Op = "rotate"
			r.Body = EncodeKeyEvent(k)
		}},
		{"key event after its certificate expired", keyAt, func(r *Record) { r.Time = cert.NotAfter.Add(time.Millisecond) }},
		{"attestation with one receipt", attestationAt, func(r *Record) {
			w := evidence
			w.Receipts = w.Receipts[:1]
			r.Body = attestationBody(t, w)
		}},
		{"attestation naming another commitment", attestationAt, func(r *Record) { r.Commitment = "c-other" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forged := append([]Record(nil), recs...)
			tc.forge(&forged[tc.index])
			b := build(forged)
			if _, err := VerifyBundleReader(bytes.NewReader(b), VerifyOptions{}); err != nil {
				t.Fatalf("structure alone should pass: %v", err)
			}
			_, err := VerifyBundleReader(bytes.NewReader(b), VerifyOptions{VerifyEntry: VerifyProtocolBody})
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.What != "entry" || ve.Index != uint64(tc.index) {
				t.Fatalf("forged bundle: %v", err)
			}
		})
	}
}

// The decoders read what the encoders write, and refuse what the node
// never writes.
func TestRecordDecoders(t *testing.T) {
	u := CommitmentUpdate{State: protocol.CommitmentDisputed, Action: []byte("a")}
	if got, err := DecodeCommitmentUpdate(EncodeCommitmentUpdate(u)); err != nil || got.State != u.State || !bytes.Equal(got.Action, u.Action) {
		t.Fatalf("update: %+v, %v", got, err)
	}
	r := Refusal{MessageID: "m", Code: "c", Reason: "\xff"}
	if got, err := DecodeRefusal(EncodeRefusal(r)); err != nil || got != r {
		t.Fatalf("refusal: %+v, %v", got, err)
	}
	for _, rc := range []Reconciled{{Adopted: "m"}, {Ended: "why"}} {
		if got, err := DecodeReconciled(EncodeReconciled(rc)); err != nil || got != rc {
			t.Fatalf("reconciliation: %+v, %v", got, err)
		}
	}
	agent := "agent://12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf/a"
	for _, k := range []KeyEvent{
		{Op: KeyAdded, AgentID: agent, PublicKey: make([]byte, 32), Certificate: []byte{1}, Capabilities: []string{"buy"}},
		{Op: KeyRemoved, AgentID: agent},
	} {
		if got, err := DecodeKeyEvent(EncodeKeyEvent(k)); err != nil || !sameKeyEvent(got, k) {
			t.Fatalf("key event: %+v, %v", got, err)
		}
	}
	dup := []byte{0xa2, 0x01, 0x61, 'm', 0x01, 0x61, 'n'} // {1: "m", 1: "n"}
	bad := map[string]func() error{
		"update, empty action": func() error {
			_, err := DecodeCommitmentUpdate([]byte{0xa2, 0x01, 0x66, 'A', 'C', 'T', 'I', 'V', 'E', 0x02, 0x40})
			return err
		},
		"update, no state":              func() error { _, err := DecodeCommitmentUpdate([]byte{0xa0}); return err },
		"refusal, no code":              func() error { _, err := DecodeRefusal(EncodeRefusal(Refusal{MessageID: "m"})); return err },
		"reconciliation, duplicate key": func() error { _, err := DecodeReconciled(dup); return err },
		"reconciliation, empty":         func() error { _, err := DecodeReconciled([]byte{0xa0}); return err },
		"reconciliation, trailing byte": func() error {
			_, err := DecodeReconciled(append(EncodeReconciled(Reconciled{Ended: "x"}), 0))
			return err
		},
	}
	for name, k := range map[string]KeyEvent{
		"key event, unknown op":       {Op: "rotate", AgentID: agent},
		"key event, bad agent id":     {Op: KeyRemoved, AgentID: "a"},
		"key added, no certificate":   {Op: KeyAdded, AgentID: agent, PublicKey: make([]byte, 32)},
		"key added, short key":        {Op: KeyAdded, AgentID: agent, PublicKey: make([]byte, 31), Certificate: []byte{1}},
		"key removed, with a key":     {Op: KeyRemoved, AgentID: agent, PublicKey: make([]byte, 32)},
		"key removed, with abilities": {Op: KeyRemoved, AgentID: agent, Capabilities: []string{"buy"}},
	} {
		bad[name] = func() error { _, err := DecodeKeyEvent(EncodeKeyEvent(k)); return err }
	}
	for name, f := range bad {
		if err := f(); !errors.Is(err, protocol.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

// FuzzRecordDecoders: no body panics a decoder, and what one accepts
// re-encodes to a body it reads back the same.
func FuzzRecordDecoders(f *testing.F) {
	f.Add(EncodeCommitmentUpdate(CommitmentUpdate{State: protocol.CommitmentActive}))
	f.Add(EncodeCommitmentUpdate(CommitmentUpdate{State: protocol.CommitmentFulfilled, Action: []byte{0xa0}}))
	f.Add(EncodeRefusal(Refusal{MessageID: "m", Code: "c", Reason: "r"}))
	f.Add(EncodeReconciled(Reconciled{Adopted: "m"}))
	f.Add(EncodeReconciled(Reconciled{Ended: "why"}))
	f.Add(EncodeKeyEvent(KeyEvent{Op: KeyRemoved, AgentID: "agent://12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf/a"}))
	f.Add(EncodeKeyEvent(KeyEvent{Op: KeyAdded, AgentID: "agent://12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf/a",
		PublicKey: make([]byte, 32), Certificate: []byte{0xa0}, Capabilities: []string{"buy"}}))
	f.Add([]byte{0xa2, 0x01, 0x61, 'm', 0x01, 0x61, 'n'})
	f.Fuzz(func(t *testing.T, b []byte) {
		if u, err := DecodeCommitmentUpdate(b); err == nil {
			v, err := DecodeCommitmentUpdate(EncodeCommitmentUpdate(u))
			if err != nil || v.State != u.State || !bytes.Equal(v.Action, u.Action) {
				t.Fatalf("update %+v reads back as %+v, %v", u, v, err)
			}
		}
		if r, err := DecodeRefusal(b); err == nil {
			if v, err := DecodeRefusal(EncodeRefusal(r)); err != nil || v != r {
				t.Fatalf("refusal %+v reads back as %+v, %v", r, v, err)
			}
		}
		if r, err := DecodeReconciled(b); err == nil {
			if v, err := DecodeReconciled(EncodeReconciled(r)); err != nil || v != r {
				t.Fatalf("reconciliation %+v reads back as %+v, %v", r, v, err)
			}
		}
		if k, err := DecodeKeyEvent(b); err == nil {
			if v, err := DecodeKeyEvent(EncodeKeyEvent(k)); err != nil || !sameKeyEvent(v, k) {
				t.Fatalf("key event %+v reads back as %+v, %v", k, v, err)
			}
		}
		// Any body under any of the node's kinds: an error, never a panic.
		for _, k := range []Kind{KindCommitmentUpdate, KindMessageRefused, KindReconciled, KindKeyEvent, KindAttestation} {
			_ = VerifyProtocolBody(Entry{Kind: k, Session: "s", Commitment: "c", Body: b})
		}
	})
}

// A commitment update naming a commitment the log never recorded passes
// VerifyProtocolBody (it looks at one entry) but not CommitmentRefs, which
// names it after the whole bundle is read.
func TestCommitmentRefsRefusesInventedCommitment(t *testing.T) {
	recs, claimAt := recordsLedger(t)
	verify := func(rs []Record) error {
		l := openTest(t, vfs.NewMem(), "db")
		defer l.Close()
		if _, err := l.Append(context.Background(), rs...); err != nil {
			t.Fatal(err)
		}
		var refs CommitmentRefs
		opts := VerifyOptions{VerifyEntry: func(e Entry) error {
			if err := VerifyProtocolBody(e); err != nil {
				return err
			}
			refs.Add(e)
			return nil
		}}
		if _, err := VerifyBundleReader(bytes.NewReader(bundleBytes(t, l, BundleExtras{})), opts); err != nil {
			return err
		}
		return refs.Check()
	}
	if err := verify(recs); err != nil {
		t.Fatalf("honest bundle: %v", err)
	}
	forged := append([]Record(nil), recs...)
	// The ACTIVE update (no action) moved to a commitment never formed.
	forged[claimAt-1].Commitment = "c-invented"
	err := verify(forged)
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.What != "entry" || ve.Index != uint64(claimAt-1) {
		t.Fatalf("invented commitment: %v", err)
	}
}

// sameKeyEvent compares key events as their encoding does: an empty key,
// certificate or capability list is none.
func sameKeyEvent(a, b KeyEvent) bool {
	return a.Op == b.Op && a.AgentID == b.AgentID && bytes.Equal(a.PublicKey, b.PublicKey) &&
		bytes.Equal(a.Certificate, b.Certificate) && slices.Equal(a.Capabilities, b.Capabilities)
}
