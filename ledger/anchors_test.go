package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/aspnode/asp/protocol"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestAnchorEncodingPinned: an anchor's body is a CBOR map {1: checkpoint,
// 2: certificate}; ledgers already written keep reading it.
func TestAnchorEncodingPinned(t *testing.T) {
	got := EncodeAnchor(Anchor{Checkpoint: []byte("cp\n"), KeyCertificate: []byte("{}")})
	if h := hex.EncodeToString(got); h != "a2014363700a0242"+"7b7d" {
		t.Fatalf("anchor encodes %s", h)
	}
	at := time.Date(2027, 2, 1, 9, 0, 0, 0, time.UTC)
	r := AnchorRecord(at, Anchor{Checkpoint: []byte("cp\n"), KeyCertificate: []byte("{}")})
	if r.Kind != KindAnchor || !r.Time.Equal(at) || r.Session != "" || r.Commitment != "" || !bytes.Equal(r.Body, got) {
		t.Fatalf("anchor record %+v", r)
	}
	if e := EquivocationRecord(at, []byte{0xa1}); e.Kind != 34 || !bytes.Equal(e.Body, []byte{0xa1}) {
		t.Fatalf("equivocation record %+v", e)
	}
	if _, err := DecodeAnchor(append(got, 0)); !errors.Is(err, protocol.ErrMalformed) {
		t.Fatalf("trailing byte: %v", err)
	}
	if _, err := DecodeAnchor(EncodeAnchor(Anchor{Checkpoint: []byte("cp\n")})); !errors.Is(err, protocol.ErrMalformed) {
		t.Fatalf("no certificate: %v", err)
	}
}

// TestAnchorVerifiedOffline: VerifyProtocolBody accepts an anchor of a
// checkpoint signed by the certified key, and refuses one whose checkpoint
// was edited, whose certificate is another organisation's, or whose
// certificate is signed by a key other than the one its peer id names.
func TestAnchorVerifiedOffline(t *testing.T) {
	l := openTest(t, vfs.NewMem(), "l")
	defer l.Close()
	appendN(t, l, 0, 3)
	cp, err := l.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, cert, _ := testKeys(t)
	certJSON, _ := json.Marshal(cert)
	entry := func(a Anchor) Entry {
		r := AnchorRecord(time.Unix(1_800_000_000, 0), a)
		return Entry{Kind: r.Kind, Time: r.Time, Body: r.Body}
	}
	if err := VerifyProtocolBody(entry(Anchor{Checkpoint: cp, KeyCertificate: certJSON})); err != nil {
		t.Fatalf("genuine anchor: %v", err)
	}
	got, _, err := VerifyAnchor(Anchor{Checkpoint: cp, KeyCertificate: certJSON})
	if err != nil || got.Size != 3 || got.Origin != testOrigin() {
		t.Fatalf("anchored %+v, %v", got, err)
	}
	edited := bytes.Replace(cp, []byte("\n3\n"), []byte("\n4\n"), 1)
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	_, otherCert, err := NewCheckpointSigner(other, OriginFor(protocol.PeerIDFromPublicKey(other.Public().(ed25519.PublicKey))))
	if err != nil {
		t.Fatal(err)
	}
	otherJSON, _ := json.Marshal(otherCert)
	forged := *cert
	forged.Signature = ed25519.Sign(other, []byte("anything"))
	forgedJSON, _ := json.Marshal(&forged)
	for name, a := range map[string]Anchor{
		"edited checkpoint":     {Checkpoint: edited, KeyCertificate: certJSON},
		"another's certificate": {Checkpoint: cp, KeyCertificate: otherJSON},
		"forged certificate":    {Checkpoint: cp, KeyCertificate: forgedJSON},
		"certificate not JSON":  {Checkpoint: cp, KeyCertificate: []byte("x")},
	} {
		if err := VerifyProtocolBody(entry(a)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
