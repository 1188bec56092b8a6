package p2p

import (
	"crypto/ed25519"
	crand "crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestLoadOrCreateKeyPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "home", "identity.key")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != 0o600 {
		t.Fatalf("key file mode %v, want 0600", got)
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equals(k2) {
		t.Fatal("reloaded key differs from the created one")
	}
	raw, _ := os.ReadFile(path)
	k3, err := crypto.UnmarshalPrivateKey(raw)
	if err != nil || !k3.Equals(k1) {
		t.Fatalf("file is not the libp2p-marshalled key: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("home holds %d files, want only the key", len(entries))
	}
}

func TestEd25519KeyMatchesPeerID(t *testing.T) {
	k := newKey(t)
	priv, err := Ed25519Key(k)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("asp")
	sig := ed25519.Sign(priv, msg)
	if ok, err := k.GetPublic().Verify(msg, sig); err != nil || !ok {
		t.Fatalf("libp2p key does not verify a crypto/ed25519 signature: %v", err)
	}
	pub, err := crypto.UnmarshalEd25519PublicKey(priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	id1, _ := peer.IDFromPublicKey(pub)
	id2, _ := peer.IDFromPrivateKey(k)
	if id1 != id2 {
		t.Fatalf("peer ids differ: %s vs %s", id1, id2)
	}
}

func TestLoadKeyRefusals(t *testing.T) {
	dir := t.TempDir()

	loose := filepath.Join(dir, "loose.key")
	if _, err := LoadOrCreateKey(loose); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(loose); !errors.Is(err, ErrKeyPermissions) {
		t.Fatalf("group-readable key: got %v, want ErrKeyPermissions", err)
	}

	garbage := filepath.Join(dir, "garbage.key")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(garbage); err == nil {
		t.Fatal("garbage key file accepted")
	}
	if b, _ := os.ReadFile(garbage); string(b) != "not a key" {
		t.Fatal("garbage key file was overwritten")
	}

	secp, _, err := crypto.GenerateSecp256k1Key(crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := crypto.MarshalPrivateKey(secp)
	other := filepath.Join(dir, "secp.key")
	if err := os.WriteFile(other, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(other); err == nil {
		t.Fatal("non-Ed25519 key accepted")
	}
	if _, err := Ed25519Key(secp); err == nil {
		t.Fatal("Ed25519Key accepted a secp256k1 key")
	}
}

func TestLoadOrCreateKeyRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity.key")
	keys := make([]crypto.PrivKey, 8)
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() { keys[i], errs[i] = LoadOrCreateKey(path) })
	}
	wg.Wait()
	for i := range keys {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !keys[i].Equals(keys[0]) {
			t.Fatal("racing creators returned different keys")
		}
	}
}
