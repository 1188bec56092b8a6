package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var updateVectors = flag.Bool("update-vectors", false, "rewrite testdata/vectors from the current code")

type vecKey struct {
	Seed      string `json:"seed"`      // Ed25519 seed (RFC 8032 private key), hex
	PublicKey string `json:"publicKey"` // hex
	PeerID    string `json:"peerId"`    // libp2p peer id of the key
}

func vkey(k ed25519.PrivateKey) vecKey {
	pub := k.Public().(ed25519.PublicKey)
	return vecKey{hex.EncodeToString(k.Seed()), hex.EncodeToString(pub), PeerIDFromPublicKey(pub)}
}

type vecParty struct {
	Name        string          `json:"name"`
	AgentID     string          `json:"agentId"`
	Org         vecKey          `json:"org"`
	Agent       vecKey          `json:"agent"`
	Certificate json.RawMessage `json:"certificate"`
	CertCBOR    string          `json:"certificateCbor"`
	CertPayload string          `json:"certificatePayloadSha256"` // what the org signs (after the domain tag)
}

type vecEnvelope struct {
	JSON           json.RawMessage `json:"json"`
	CBOR           string          `json:"cbor"`
	SigningPayload string          `json:"signingPayload"` // canonical CBOR with integrity = {previousHash}
	Hash           string          `json:"hash"`           // SHA-256(signingPayload)
	SignedMessage  string          `json:"signedMessage"`  // "asp/1.0 envelope" 0x00 hash
	State          State           `json:"stateAfter"`
}

type vecFile struct {
	Comment     string          `json:"comment"`
	Start       string          `json:"start"`
	Buyer       vecParty        `json:"buyer"`
	Vendor      vecParty        `json:"vendor"`
	Envelopes   []vecEnvelope   `json:"envelopes"`
	Commitment  string          `json:"commitmentId"`
	Receipt     json.RawMessage `json:"receipt"`
	ReceiptCBOR string          `json:"receiptCbor"`
	Action      json.RawMessage `json:"claimAction"`
	ActionCBOR  string          `json:"claimActionCbor"`
	Encoded     string          `json:"commitmentCbor"`
}

type vecRefusal struct {
	Name string `json:"name"`
	CBOR string `json:"cbor"`
	Code string `json:"code"`
}

type vecGrammar struct {
	Comment         string       `json:"comment"`
	ValidDecimals   []string     `json:"validDecimals"`
	InvalidDecimals []string     `json:"invalidDecimals"`
	ValidTimes      []string     `json:"validTimes"`
	InvalidTimes    []string     `json:"invalidTimes"`
	Refusals        []vecRefusal `json:"refusals"`
}

func buildVectors(t *testing.T) map[string][]byte {
	buyer, vendor := FixtureParty("buyer", "buyer"), FixtureParty("vendor", "vendor")
	d, err := SeedDeal(buyer, vendor, t0)
	if err != nil {
		t.Fatal(err)
	}
	party := func(p Party, c *Certificate) vecParty {
		cj, _ := json.Marshal(c)
		cb, _ := c.MarshalCBOR()
		dg, _ := c.Digest()
		return vecParty{p.Name, p.Agent().String(), vkey(p.OrgKey), vkey(p.AgentKey), cj, hex.EncodeToString(cb),
			hex.EncodeToString(dg[:])}
	}
	v := vecFile{
		Comment: "The ASP seed deal, signed with fixed keys at a fixed time. Each envelope's cbor must decode, " +
			"re-encode to the same bytes, hash to hash and verify; stepping them in order yields stateAfter; the " +
			"ACCEPT of the last offer yields commitmentId. See docs/protocol.md.",
		Start:  FormatTime(t0),
		Buyer:  party(buyer, d.BuyerCert),
		Vendor: party(vendor, d.VendorCert),
	}
	s := NewSession(Config{}, d.Session.ID(), d.Buyer, d.Vendor, t0)
	for _, e := range d.Transcript {
		eff, err := s.Step(e, e.Timestamp)
		if err != nil {
			t.Fatal(err)
		}
		j, _ := json.Marshal(e)
		b, _ := EncodeEnvelope(e)
		p, _ := e.SigningPayload()
		h := sha256.Sum256(p)
		v.Envelopes = append(v.Envelopes, vecEnvelope{j, hex.EncodeToString(b), hex.EncodeToString(p),
			hex.EncodeToString(h[:]), hex.EncodeToString(signedMessage(domainEnvelope, h)), eff.To})
	}
	c := d.Commitment
	v.Commitment = c.ID
	r, _ := SignCommitmentReceipt(vendor.OrgKey, c, 42, []byte("example.org/log\n42\nAAAA\n"))
	v.Receipt, _ = json.Marshal(r)
	rb, _ := EncodeReceipt(r)
	v.ReceiptCBOR = hex.EncodeToString(rb)
	a := &Action{CommitmentID: c.ID, Kind: ActionClaim, Actor: d.Vendor.String(), Time: t0.Add(24 * time.Hour),
		Evidence: []byte("usage report")}
	if err := a.Sign(vendor.AgentKey, d.VendorCert); err != nil {
		t.Fatal(err)
	}
	v.Action, _ = json.Marshal(a)
	ab, _ := EncodeAction(a)
	v.ActionCBOR = hex.EncodeToString(ab)
	cb, _ := EncodeCommitment(c)
	v.Encoded = hex.EncodeToString(cb)

	good, _ := EncodeEnvelope(d.Transcript[2])
	g := vecGrammar{
		Comment:         "Grammar vectors: decimals and times a decoder must accept or refuse, and encodings it must refuse with the given ASP code.",
		ValidDecimals:   []string{"0", "1000", "2.40", "0.001", "15"},
		InvalidDecimals: []string{"", ".5", "5.", "01", "-1", "+1", "1e3", "1,5", "NaN", "2.4000000000000000001"},
		ValidTimes:      []string{"2027-03-15T00:00:00.000Z", "1970-01-01T00:00:00.001Z"},
		InvalidTimes:    []string{"2027-03-15T00:00:00Z", "2027-03-15T00:00:00.0000Z", "2027-03-15T01:00:00.000+01:00", "2027-02-30T00:00:00.000Z"},
	}
	ref := func(name string, b []byte) {
		_, err := DecodeEnvelope(b)
		if err == nil {
			t.Fatalf("refusal vector %s decodes", name)
		}
		g.Refusals = append(g.Refusals, vecRefusal{name, hex.EncodeToString(b), ErrorCode(err)})
	}
	ref("float unitPrice", reencode(t, good, func(m map[any]any) {
		m["body"].(map[any]any)["terms"].(map[any]any)["unitPrice"] = 2.4
	}))
	ref("integer quantity", reencode(t, good, func(m map[any]any) {
		m["body"].(map[any]any)["terms"].(map[any]any)["quantity"] = 1000
	}))
	ref("non-shortest integer", bytes.Replace(good, []byte("sequenceNumber\x02"), []byte("sequenceNumber\x18\x02"), 1))
	ref("unknown field", reencode(t, good, func(m map[any]any) { m["x"] = 1 }))
	ref("timestamp without milliseconds", reencode(t, good, func(m map[any]any) { m["timestamp"] = "2027-02-01T09:00:02Z" }))

	out := map[string][]byte{}
	out["seed-deal.json"], _ = json.MarshalIndent(v, "", "  ")
	out["grammar.json"], _ = json.MarshalIndent(g, "", "  ")
	return out
}

func TestVectors(t *testing.T) {
	dir := filepath.Join("testdata", "vectors")
	files := buildVectors(t)
	for name, want := range files {
		want = append(want, '\n')
		path := filepath.Join(dir, name)
		if *updateVectors {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -run TestVectors -update-vectors)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: the code no longer produces the published vectors", path)
		}
	}
}

// TestVectorsIndependently checks the published seed-deal vectors the way a
// second implementation would: from the files alone.
func TestVectorsIndependently(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "vectors", "seed-deal.json"))
	if err != nil {
		t.Skip("no vectors yet")
	}
	var v vecFile
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	seed, _ := hex.DecodeString(v.Buyer.Org.Seed)
	if PeerIDFromPublicKey(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)) != v.Buyer.Org.PeerID {
		t.Fatal("peer id vector")
	}
	var envs []*Envelope
	for i, ve := range v.Envelopes {
		b, _ := hex.DecodeString(ve.CBOR)
		e, err := DecodeEnvelope(b)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		var fromJSON Envelope
		if err := json.Unmarshal(ve.JSON, &fromJSON); err != nil {
			t.Fatal(err)
		}
		if b2, _ := EncodeEnvelope(&fromJSON); !bytes.Equal(b, b2) {
			t.Fatalf("%d: JSON and CBOR vectors disagree", i)
		}
		p, _ := hex.DecodeString(ve.SigningPayload)
		h := sha256.Sum256(p)
		if hex.EncodeToString(h[:]) != ve.Hash || e.Hash() != h {
			t.Fatalf("%d: hash", i)
		}
		pub, _ := hex.DecodeString(v.Buyer.Agent.PublicKey)
		if e.Sender == v.Vendor.AgentID {
			pub, _ = hex.DecodeString(v.Vendor.Agent.PublicKey)
		}
		msg, _ := hex.DecodeString(ve.SignedMessage)
		if !ed25519.Verify(pub, msg, e.Integrity.Signature) {
			t.Fatalf("%d: signature over signedMessage", i)
		}
		envs = append(envs, e)
	}
	s, err := Replay(Config{}, envs, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Commitments()[0].ID != v.Commitment {
		t.Fatal("commitment id")
	}
}
