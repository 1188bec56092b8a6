package registry

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aspnode/asp/protocol"
)

func seedKey(seed byte) ed25519.PrivateKey {
	var s [32]byte
	for i := range s {
		s[i] = seed
	}
	return ed25519.NewKeyFromSeed(s[:])
}

var t0 = time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)

// testCard returns a valid card of agent name of org, signed at t0 and
// valid for a day.
func testCard(t testing.TB, org ed25519.PrivateKey, name string, caps ...string) *Card {
	t.Helper()
	orgID := protocol.PeerIDFromPublicKey(org.Public().(ed25519.PublicKey))
	id := protocol.AgentID{Org: orgID, Name: name}
	agentKey := seedKey(200)
	pub := agentKey.Public().(ed25519.PublicKey)
	notAfter := t0.Add(24 * time.Hour)
	cert, err := protocol.IssueCertificate(org, id, pub, caps, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	c := &Card{
		AgentID:      id.String(),
		Org:          orgID,
		Name:         name,
		Description:  "sells " + strings.Join(caps, ", "),
		Capabilities: caps,
		Protocols:    []string{protocol.Version},
		Endpoints:    []string{"/ip4/127.0.0.1/tcp/4001/p2p/" + orgID},
		PublicKey:    pub,
		Certificate:  cert,
		Version:      1,
		NotAfter:     notAfter,
	}
	if err := c.Sign(org); err != nil {
		t.Fatal(err)
	}
	return c
}

func mustMarshal(t testing.TB, c *Card) []byte {
	t.Helper()
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCardRoundTrip(t *testing.T) {
	org := seedKey(1)
	c := testCard(t, org, "vendor", "compute.gpu-hours", "storage")
	if err := c.Verify(t0); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := c.VerifyFrom(c.Org, t0); err != nil {
		t.Fatalf("VerifyFrom own org: %v", err)
	}
	raw := mustMarshal(t, c)
	d, err := DecodeCard(raw)
	if err != nil {
		t.Fatalf("DecodeCard: %v", err)
	}
	if err := d.Verify(t0); err != nil {
		t.Fatalf("decoded Verify: %v", err)
	}
	if again := mustMarshal(t, d); !bytes.Equal(again, raw) {
		t.Fatal("CBOR round trip changed the bytes")
	}
	// JSON round-trips to the same signed bytes.
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var fromJSON Card
	if err := json.Unmarshal(j, &fromJSON); err != nil {
		t.Fatalf("UnmarshalJSON: %v\n%s", err, j)
	}
	if err := fromJSON.Verify(t0); err != nil {
		t.Fatalf("JSON card Verify: %v", err)
	}
	if again := mustMarshal(t, &fromJSON); !bytes.Equal(again, raw) {
		t.Fatalf("JSON round trip changed the signed bytes:\n%s", j)
	}
	for _, f := range []string{`"agentId"`, `"org"`, `"capabilities"`, `"protocols":["asp/1.0"]`, `"certificate"`, `"version":1`, `"notAfter":"2027-03-02T12:00:00.000Z"`, `"signature"`} {
		if !bytes.Contains(j, []byte(f)) {
			t.Errorf("JSON lacks %s: %s", f, j)
		}
	}
	var clone Card
	if err := clone.UnmarshalCBOR(raw); err != nil || !bytes.Equal(mustMarshal(t, &clone), raw) {
		t.Fatalf("UnmarshalCBOR: %v", err)
	}
}

func TestCardRejections(t *testing.T) {
	org, other := seedKey(1), seedKey(2)
	otherID := protocol.PeerIDFromPublicKey(other.Public().(ed25519.PublicKey))
	cases := []struct {
		name   string
		mutate func(c *Card) // applied to a fresh valid card
		resign ed25519.PrivateKey
		now    time.Time
		want   error
	}{
		{name: "tampered description", mutate: func(c *Card) { c.Description = "free GPUs" }, want: ErrForged},
		{name: "tampered capability", mutate: func(c *Card) { c.Capabilities = []string{"compute.gpu-hours", "storage", "zzz"} }, want: ErrForged},
		{name: "signed by another key", mutate: func(c *Card) { c.Org = otherID }, resign: other, want: ErrForged},
		{name: "capability not granted", mutate: func(c *Card) { c.Capabilities = []string{"compute.gpu-hours", "legal"} }, resign: org, want: ErrForged},
		{name: "agent key not certified", mutate: func(c *Card) { c.PublicKey = seedKey(9).Public().(ed25519.PublicKey) }, resign: org, want: ErrForged},
		{name: "no certificate", mutate: func(c *Card) { c.Certificate = nil }, resign: org, want: ErrForged},
		{name: "outlives certificate", mutate: func(c *Card) { c.NotAfter = c.NotAfter.Add(time.Hour) }, resign: org, want: ErrForged},
		{name: "expired", now: t0.Add(25 * time.Hour), want: ErrExpired},
		{name: "certificate expired", mutate: func(c *Card) {
			cert, _ := protocol.IssueCertificate(org, protocol.AgentID{Org: c.Org, Name: c.Name}, c.PublicKey, c.Capabilities, t0.Add(time.Minute))
			c.Certificate = cert
			c.NotAfter = t0.Add(time.Minute)
		}, resign: org, now: t0.Add(2 * time.Minute), want: ErrExpired},
		{name: "unsorted capabilities", mutate: func(c *Card) { c.Capabilities = []string{"storage", "compute.gpu-hours"} }, resign: org, want: ErrMalformed},
		{name: "bad capability name", mutate: func(c *Card) { c.Capabilities = []string{"Compute"} }, resign: org, want: ErrMalformed},
		{name: "description too long", mutate: func(c *Card) { c.Description = strings.Repeat("x", MaxDescription+1) }, resign: org, want: ErrOversized},
		{name: "version zero", mutate: func(c *Card) { c.Version = 0 }, resign: org, want: ErrMalformed},
		{name: "withdrawn with capabilities", mutate: func(c *Card) { c.Withdrawn = true }, resign: org, want: ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testCard(t, org, "vendor", "compute.gpu-hours", "storage")
			if tc.mutate != nil {
				tc.mutate(c)
			}
			if tc.resign != nil {
				if err := c.Sign(tc.resign); err != nil {
					t.Fatal(err)
				}
			}
			now := tc.now
			if now.IsZero() {
				now = t0
			}
			err := c.Verify(now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			if RejectReason(err) == "" {
				t.Fatalf("RejectReason(%v) is empty", err)
			}
		})
	}
}

func TestCardReplayedByAnotherPeer(t *testing.T) {
	c := testCard(t, seedKey(1), "vendor", "compute")
	other := protocol.PeerIDFromPublicKey(seedKey(2).Public().(ed25519.PublicKey))
	if err := c.VerifyFrom(other, t0); !errors.Is(err, ErrReplayed) {
		t.Fatalf("VerifyFrom(other) = %v, want ErrReplayed", err)
	}
	v := NewValidator(nil, func() time.Time { return t0 })
	raw := mustMarshal(t, c)
	if err := v.Validate(CardKey("agent://"+other+"/vendor"), raw); !errors.Is(err, ErrReplayed) {
		t.Fatalf("Validate under another key = %v, want ErrReplayed", err)
	}
	if err := v.Validate(c.Key(), raw); err != nil {
		t.Fatalf("Validate own key: %v", err)
	}
	if err := v.Validate("/asp/other/x", raw); err == nil {
		t.Fatal("Validate accepted a non-card key")
	}
}

func TestDecodeRejects(t *testing.T) {
	c := testCard(t, seedKey(1), "vendor", "compute")
	raw := mustMarshal(t, c)
	if _, err := DecodeCard(make([]byte, MaxCardSize+1)); !errors.Is(err, ErrOversized) {
		t.Fatalf("oversized: %v", err)
	}
	if _, err := DecodeCard(raw[:len(raw)-3]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated: %v", err)
	}
	if _, err := DecodeCard([]byte("not cbor at all")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("garbage: %v", err)
	}
	// A non-canonical encoding of the same card (a map with a 2-byte
	// length header instead of 1) is refused.
	if raw[0]&0xe0 != 0xa0 || raw[0]&0x1f >= 24 {
		t.Fatalf("unexpected map header %#x", raw[0])
	}
	nc := append([]byte{0xb8, raw[0] & 0x1f}, raw[1:]...)
	if _, err := DecodeCard(nc); !errors.Is(err, ErrMalformed) {
		t.Fatalf("non-canonical: %v", err)
	}
}

func TestValidatorSelect(t *testing.T) {
	org := seedKey(1)
	v := NewValidator(nil, func() time.Time { return t0 })
	var vals [][]byte
	for _, ver := range []uint64{3, 7, 5} {
		c := testCard(t, org, "vendor", "compute")
		c.Version = ver
		if err := c.Sign(org); err != nil {
			t.Fatal(err)
		}
		vals = append(vals, mustMarshal(t, c))
	}
	key := testCard(t, org, "vendor", "compute").Key()
	i, err := v.Select(key, vals)
	if err != nil || i != 1 {
		t.Fatalf("Select = %d, %v; want 1", i, err)
	}
	// Garbage never wins; identical values keep the first.
	i, err = v.Select(key, [][]byte{[]byte("junk"), vals[0], vals[0]})
	if err != nil || i != 1 {
		t.Fatalf("Select with junk = %d, %v; want 1", i, err)
	}
	if _, err := v.Select(key, [][]byte{[]byte("junk")}); err == nil {
		t.Fatal("Select among junk succeeded")
	}
}

func TestValidatorCountsRejections(t *testing.T) {
	m, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	v := NewValidator(m, func() time.Time { return t0 })
	org := seedKey(1)
	good := testCard(t, org, "vendor", "compute")
	forged := good.Clone()
	forged.Description = "changed"
	expired := testCard(t, org, "old", "compute")
	_, _ = v.Check(mustMarshal(t, forged))
	_, _ = v.Check(make([]byte, MaxCardSize+1))
	_, _ = v.Check([]byte{0xff})
	v2 := NewValidator(m, func() time.Time { return t0.Add(48 * time.Hour) })
	_, _ = v2.Check(mustMarshal(t, expired))
	_, _ = v.CheckFrom("12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK", mustMarshal(t, good))
	for _, r := range []string{ReasonForged, ReasonOversized, ReasonMalformed, ReasonExpired, ReasonReplayed} {
		if got := m.Rejected(r); got != 1 {
			t.Errorf("Rejected(%s) = %v, want 1", r, got)
		}
	}
}

func TestCapabilities(t *testing.T) {
	for _, ok := range []string{"compute", "compute.gpu-hours", "a.b.c.d.e.f.g.h", "x_1-2"} {
		if err := ValidateCapability(ok); err != nil {
			t.Errorf("ValidateCapability(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Compute", ".x", "x.", "x..y", "-x", "a.b.c.d.e.f.g.h.i", strings.Repeat("a", 129), "sp ace", "ü"} {
		if err := ValidateCapability(bad); !errors.Is(err, ErrBadCapability) {
			t.Errorf("ValidateCapability(%q) = %v, want ErrBadCapability", bad, err)
		}
	}
	if got := Prefixes("compute.gpu-hours.h100"); !slices.Equal(got, []string{"compute", "compute.gpu-hours", "compute.gpu-hours.h100"}) {
		t.Errorf("Prefixes = %v", got)
	}
	for _, tc := range []struct {
		cp, q string
		want  bool
	}{
		{"compute.gpu-hours", "compute", true},
		{"compute.gpu-hours", "compute.gpu-hours", true},
		{"compute", "compute.gpu-hours", false},
		{"computer", "compute", false},
		{"compute.gpu-hours", "comp", false},
	} {
		if got := CapabilityMatches(tc.cp, tc.q); got != tc.want {
			t.Errorf("CapabilityMatches(%q, %q) = %v", tc.cp, tc.q, got)
		}
	}
	a, b := CapabilityCID("compute"), CapabilityCID("compute.gpu-hours")
	if a.Equals(b) || !a.Equals(CapabilityCID("compute")) || a.Prefix().Codec != 0x55 || a.Prefix().MhType != 0x12 {
		t.Errorf("CapabilityCID: %s %s %+v", a, b, a.Prefix())
	}
	n, err := NormalizeCapabilities([]string{" Storage ", "compute", "storage"})
	if err != nil || !slices.Equal(n, []string{"compute", "storage"}) {
		t.Errorf("NormalizeCapabilities = %v, %v", n, err)
	}
}

func TestA2A(t *testing.T) {
	c := testCard(t, seedKey(1), "vendor", "compute.gpu-hours", "storage")
	b, err := json.Marshal(c.A2A("http://127.0.0.1:8080/v1/agents/x/card"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"protocolVersion", "name", "description", "url", "version", "capabilities", "defaultInputModes", "defaultOutputModes", "skills", "provider"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("A2A document lacks %q: %s", k, b)
		}
	}
	skills := doc["skills"].([]any)
	if len(skills) != 2 || skills[0].(map[string]any)["id"] != "compute.gpu-hours" {
		t.Errorf("skills = %v", skills)
	}
	// The embedded signed card verifies.
	ext := doc["capabilities"].(map[string]any)["extensions"].([]any)[0].(map[string]any)
	raw, _ := json.Marshal(ext["params"].(map[string]any)["card"])
	var embedded Card
	if err := json.Unmarshal(raw, &embedded); err != nil {
		t.Fatal(err)
	}
	if err := embedded.Verify(t0); err != nil {
		t.Fatalf("embedded card: %v", err)
	}
}

func TestTombstone(t *testing.T) {
	org := seedKey(1)
	c := testCard(t, org, "vendor", "compute")
	tomb := &Card{AgentID: c.AgentID, Org: c.Org, Name: c.Name, Version: 2, NotAfter: c.NotAfter, Withdrawn: true}
	if err := tomb.Sign(org); err != nil {
		t.Fatal(err)
	}
	v := NewValidator(nil, func() time.Time { return t0 })
	traw := mustMarshal(t, tomb)
	if err := v.Validate(c.Key(), traw); err != nil {
		t.Fatalf("tombstone refused: %v", err)
	}
	if i, _ := v.Select(c.Key(), [][]byte{mustMarshal(t, c), traw}); i != 1 {
		t.Fatal("tombstone did not win over the older card")
	}
	if tomb.Matches("compute") {
		t.Fatal("tombstone matches a capability")
	}
}
