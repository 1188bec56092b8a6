package protocol

import (
	"crypto/ed25519"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func detKey(seed byte) ed25519.PrivateKey {
	var s [32]byte
	for i := range s {
		s[i] = seed
	}
	return ed25519.NewKeyFromSeed(s[:])
}

func TestPeerIDMatchesLibp2p(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := 0; i < 64; i++ {
		var s [32]byte
		for j := range s {
			s[j] = byte(r.Uint32())
		}
		priv := ed25519.NewKeyFromSeed(s[:])
		pub := priv.Public().(ed25519.PublicKey)
		lk, err := crypto.UnmarshalEd25519PublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		want, err := peer.IDFromPublicKey(lk)
		if err != nil {
			t.Fatal(err)
		}
		got := PeerIDFromPublicKey(pub)
		if got != want.String() {
			t.Fatalf("peer id %s, libp2p %s", got, want)
		}
		back, err := PublicKeyFromPeerID(want.String())
		if err != nil || !back.Equal(pub) {
			t.Fatalf("PublicKeyFromPeerID: %v", err)
		}
		// libp2p's own extraction agrees.
		lpub, err := want.ExtractPublicKey()
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := lpub.Raw()
		if !ed25519.PublicKey(raw).Equal(back) {
			t.Fatal("libp2p extracts a different key")
		}
	}
}

func TestPeerIDRefusesOthers(t *testing.T) {
	// An RSA / secp256k1 / sha256 peer id, garbage, and a non-canonical form.
	_, sk, _ := crypto.GenerateSecp256k1Key(nil)
	id, _ := peer.IDFromPublicKey(sk)
	for _, s := range []string{"", "xyz0OIl", id.String(), "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
		"112D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"} {
		if _, err := PublicKeyFromPeerID(s); !errors.Is(err, ErrBadPeerID) {
			t.Errorf("%q: err %v", s, err)
		}
	}
}

func TestAgentID(t *testing.T) {
	org := PeerIDFromPublicKey(detKey(1).Public().(ed25519.PublicKey))
	a, err := ParseAgentID("agent://" + org + "/buyer-1")
	if err != nil || a.Org != org || a.Name != "buyer-1" || a.String() != "agent://"+org+"/buyer-1" {
		t.Fatalf("%+v %v", a, err)
	}
	for _, s := range []string{"", "agent://", "agent://" + org, "agent://" + org + "/", "agent://" + org + "/a/b",
		"agent://" + org + "/-x", "agent://x/buyer", "agent:/" + org + "/buyer", "AGENT://" + org + "/b",
		"agent://" + org + "/b c", "agent://" + org + "/" + string(make([]byte, 65))} {
		if _, err := ParseAgentID(s); !errors.Is(err, ErrBadAgentID) {
			t.Errorf("%q: err %v", s, err)
		}
	}
}

func TestCertificate(t *testing.T) {
	orgKey, agentKey := detKey(1), detKey(2)
	org := PeerIDFromPublicKey(orgKey.Public().(ed25519.PublicKey))
	a := AgentID{Org: org, Name: "buyer"}
	na := time.Date(2030, 1, 1, 0, 0, 0, 123456789, time.UTC)
	c, err := IssueCertificate(orgKey, a, agentKey.Public().(ed25519.PublicKey), []string{"buy"}, na)
	if err != nil {
		t.Fatal(err)
	}
	if !c.NotAfter.Equal(Millis(na)) {
		t.Fatalf("notAfter %v", c.NotAfter)
	}
	now := time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := c.Verify(now); err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(na.Add(time.Second)); !errors.Is(err, ErrCertificateExpired) {
		t.Fatalf("expired: %v", err)
	}
	bad := *c
	bad.Capabilities = []string{"buy", "sell"}
	if err := bad.Verify(now); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered: %v", err)
	}
	// Another org cannot issue for this org's agent.
	if _, err := IssueCertificate(detKey(3), a, agentKey.Public().(ed25519.PublicKey), nil, na); !errors.Is(err, ErrBadCertificate) {
		t.Fatalf("foreign issue: %v", err)
	}
	b, err := c.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	var back Certificate
	if err := decodeCanonical(b, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.Verify(now); err != nil {
		t.Fatal(err)
	}
}
