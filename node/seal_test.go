package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/aspnode/asp/node/api"
	"github.com/cockroachdb/pebble/v2"
	"github.com/fxamacker/cbor/v2"
)

// checkStateFiles fails t if a file of the state store is readable by
// anyone but its owner, or holds any of seeds in clear.
func checkStateFiles(t *testing.T, home string, seeds map[string][]byte) {
	t.Helper()
	dir := filepath.Join(home, StateDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("state directory: %v %v", fi.Mode(), err)
	}
	files := 0
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		files++
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v, want 0600", e.Name(), fi.Mode().Perm())
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for name, seed := range seeds {
			if bytes.Contains(b, seed) {
				t.Errorf("%s holds the seed of %s in clear", e.Name(), name)
			}
		}
	}
	if files < 3 {
		t.Fatalf("state store has %d files", files)
	}
}

// createAgents creates n agents on node and returns their seeds by id.
func createAgents(t *testing.T, node *Node, n int) map[string][]byte {
	t.Helper()
	seeds := map[string][]byte{}
	for i := 0; i < n; i++ {
		r, err := node.CreateAgent(context.Background(), api.CreateAgentRequest{Name: fmt.Sprintf("agent-%d", i), Capabilities: []string{"compute"}})
		if err != nil {
			t.Fatal(err)
		}
		seeds[r.AgentID] = bytes.Clone(node.localAgent(r.AgentID).key.Seed())
	}
	return seeds
}

// checkKeys fails t unless node holds each agent with its seed.
func checkKeys(t *testing.T, node *Node, seeds map[string][]byte) {
	t.Helper()
	for id, seed := range seeds {
		a := node.localAgent(id)
		if a == nil || !bytes.Equal(a.key.Seed(), seed) {
			t.Fatalf("after restart, agent %s lost its key", id)
		}
	}
}

// TestAgentSeedsSealedAndPrivate runs a real node on disk: its state
// files are mode 0600 and none holds an agent's signing seed in clear;
// after a restart every agent signs with its own key again.
func TestAgentSeedsSealedAndPrivate(t *testing.T) {
	home := filepath.Join(t.TempDir(), "org")
	n := startNode(t, home)
	seeds := createAgents(t, n, 3)
	n.Close()
	checkStateFiles(t, home, seeds)

	n = startNode(t, home)
	checkKeys(t, n, seeds)
	n.Close()
	checkStateFiles(t, home, seeds)
}

// TestClearSeedsMigrated writes a state store as a node did before seeds
// were sealed (seeds in clear, files 0644) and starts a node on it: the
// seeds are sealed, no file keeps them in clear, modes are 0600, and
// every agent keeps its key.
func TestClearSeedsMigrated(t *testing.T) {
	home := filepath.Join(t.TempDir(), "org")
	n := startNode(t, home)
	seeds := createAgents(t, n, 3)
	n.Close()

	// Rewrite the store in the old form, with Pebble's own file modes.
	dir := filepath.Join(home, StateDir)
	db, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte("a/"), UpperBound: []byte("a0")})
	if err != nil {
		t.Fatal(err)
	}
	var old [][2][]byte
	for it.First(); it.Valid(); it.Next() {
		var r agentRecord
		if err := cbor.Unmarshal(it.Value(), &r); err != nil {
			t.Fatal(err)
		}
		r.Seed = seeds["agent://"+n.PeerID()+"/"+r.Name]
		r.SealedSeed = nil
		if len(r.Seed) != ed25519.SeedSize {
			t.Fatalf("no seed for %s", r.Name)
		}
		v, _ := cbor.Marshal(&r)
		old = append(old, [2][]byte{bytes.Clone(it.Key()), v})
	}
	it.Close()
	for _, kv := range old {
		if err := db.Set(kv[0], kv[1], pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Delete(keySeedsSealed, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()
	clear := 0
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		os.Chmod(p, 0o644)
		b, _ := os.ReadFile(p)
		for _, seed := range seeds {
			if bytes.Contains(b, seed) {
				clear++
			}
		}
	}
	if clear == 0 {
		t.Fatal("the old-form store holds no seed in clear: the test shows nothing")
	}

	n = startNode(t, home)
	checkKeys(t, n, seeds)
	n.Close()
	checkStateFiles(t, home, seeds)
	n = startNode(t, home)
	checkKeys(t, n, seeds)
	n.Close()
}

// TestSealerBindsIdentityAndName: a sealed seed opens only under the
// identity that sealed it and for the agent it was sealed for.
func TestSealerBindsIdentityAndName(t *testing.T) {
	idA, idB := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	a, err := newSealer(idA)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newSealer(idB)
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	sealed := a.seal("buyer", seed)
	if bytes.Contains(sealed, seed) {
		t.Fatal("sealed form holds the seed")
	}
	if got, err := a.open("buyer", sealed); err != nil || !bytes.Equal(got, seed) {
		t.Fatalf("open: %v", err)
	}
	if _, err := b.open("buyer", sealed); err == nil {
		t.Fatal("opened under another identity")
	}
	if _, err := a.open("vendor", sealed); err == nil {
		t.Fatal("opened for another agent")
	}
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	if _, err := a.open("buyer", flipped); err == nil {
		t.Fatal("opened an altered seal")
	}
}
