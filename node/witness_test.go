package node

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/ledger/witness"
	"github.com/aspnode/asp/node/client"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/mod/sumdb/note"
)

// awaitf polls cond until it holds or the deadline passes.
func awaitf(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// anchorsOf returns the checkpoints of org's ledger that n anchored.
func anchorsOf(t testing.TB, n *Node, org string) []ledger.CheckpointBody {
	t.Helper()
	ents, err := n.led.ByKind(ledger.KindAnchor, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []ledger.CheckpointBody
	for _, e := range ents {
		if err := ledger.VerifyProtocolBody(e); err != nil {
			t.Fatalf("anchor entry %d: %v", e.Index, err)
		}
		a, _ := ledger.DecodeAnchor(e.Body)
		cp, cert, err := ledger.VerifyAnchor(a)
		if err != nil {
			t.Fatal(err)
		}
		if cert.Org != org {
			continue
		}
		// Our own cosignature is on the anchored checkpoint.
		vkey, _ := witness.VerifierKeyFor(n.peerID)
		if _, _, err := ledger.ParseCheckpoint(a.Checkpoint, cert.Origin, mustCertVerifier(t, cert)); err != nil {
			t.Fatal(err)
		}
		if !hasCosignature(a.Checkpoint, vkey) {
			t.Fatalf("anchor of %s bears no cosignature by %s", org, n.peerID)
		}
		out = append(out, cp)
	}
	return out
}

// cosignedBy returns the size of n's ledger that org last cosigned, and
// verifies the cosignature n holds.
func cosignedBy(t testing.TB, n *Node, org string) uint64 {
	t.Helper()
	n.wit.mu.Lock()
	var size uint64
	var cp, cosig []byte
	if p := n.wit.rounds[org]; p != nil {
		size, cp, cosig = p.size, p.cp, p.cosig
	}
	n.wit.mu.Unlock()
	if size == 0 {
		return 0
	}
	vkey, _ := witness.VerifierKeyFor(org)
	if _, err := witness.VerifyCosignature(cp, cosig, vkey); err != nil {
		t.Fatalf("cosignature by %s: %v", org, err)
	}
	body, err := n.ownCheckpoint(cp)
	if err != nil || body.Size != size {
		t.Fatalf("cosigned checkpoint: %+v %v, want size %d", body, err, size)
	}
	return size
}

// TestDealWitnessedBothWays: after a deal each node has cosigned the
// other's checkpoint covering the commitment and anchored it in its own
// ledger, and holds the other's verified cosignature of its own.
func TestDealWitnessedBothWays(t *testing.T) {
	p := newPair(t)
	id := seedDeal(t, p)
	awaitActive(t, p.vendorNode, id)
	awaitActive(t, p.buyerNode, id)
	a, b := p.buyerNode, p.vendorNode
	for _, x := range [][2]*Node{{a, b}, {b, a}} {
		log, wit := x[0], x[1]
		index := log.getCommitment(id).index
		awaitf(t, "cosignature of "+log.cfg.Org+" by "+wit.cfg.Org, func() bool { return cosignedBy(t, log, wit.peerID) > index })
		awaitf(t, "anchor of "+log.cfg.Org+" in "+wit.cfg.Org, func() bool {
			for _, cp := range anchorsOf(t, wit, log.peerID) {
				if cp.Size > index {
					return true
				}
			}
			return false
		})
	}
}

func mustCertVerifier(t testing.TB, c *ledger.KeyCertificate) note.Verifier {
	t.Helper()
	v, err := c.Verifier()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// hasCosignature reports whether the signed note cp carries a valid
// cosignature by the witness key vkey (its last signature line).
func hasCosignature(cp []byte, vkey string) bool {
	i := bytes.LastIndex(cp[:len(cp)-1], []byte("\n"))
	_, err := witness.VerifyCosignature(cp[:i+1], cp[i+1:], vkey)
	return err == nil
}

// TestWitnessesAndProofsServed: GET /v1/witnesses reports both sides of
// the witnessing after a deal, and the inclusion and consistency proofs
// the node serves verify against its signed checkpoint and the checkpoint
// its witness cosigned.
func TestWitnessesAndProofsServed(t *testing.T) {
	p := newPair(t)
	id := seedDeal(t, p)
	awaitActive(t, p.vendorNode, id)
	awaitActive(t, p.buyerNode, id)
	a, b := p.buyerNode, p.vendorNode
	index := a.getCommitment(id).index
	awaitf(t, "B to cosign A", func() bool { return cosignedBy(t, a, b.peerID) > index })
	awaitf(t, "A to cosign B", func() bool { return cosignedBy(t, b, a.peerID) > 0 })
	ctx := context.Background()

	w, err := a.Witnesses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.WitnessedBy) != 1 || w.WitnessedBy[0].Org != b.peerID || w.WitnessedBy[0].Size <= index || w.WitnessedBy[0].CosignedAt.IsZero() {
		t.Fatalf("witnessed by: %+v", w.WitnessedBy)
	}
	if len(w.Witnessing) != 1 || w.Witnessing[0].Origin != ledger.OriginFor(b.peerID) || w.Witnessing[0].Size == 0 {
		t.Fatalf("witnessing: %+v", w.Witnessing)
	}
	cosigned := w.WitnessedBy[0].Size

	cp, err := a.led.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	body, err := a.ownCheckpoint(cp)
	if err != nil {
		t.Fatal(err)
	}
	incl, err := a.InclusionProof(ctx, index, body.Size)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := a.led.EntryHash(index)
	if err != nil {
		t.Fatal(err)
	}
	if err := ledger.VerifyInclusion(index, body.Size, leaf, incl.Hashes, body.Root); err != nil {
		t.Fatalf("inclusion proof of the commitment's entry: %v", err)
	}
	held, err := a.ownCheckpoint([]byte(w.WitnessedBy[0].Checkpoint[:len(w.WitnessedBy[0].Checkpoint)-cosigLen(w.WitnessedBy[0].Checkpoint)]))
	if err != nil {
		t.Fatal(err)
	}
	cons, err := a.ConsistencyProof(ctx, cosigned, body.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := ledger.VerifyConsistency(cosigned, body.Size, cons.Hashes, held.Root, body.Root); err != nil {
		t.Fatalf("consistency from the cosigned size: %v", err)
	}
	for _, bad := range [][2]uint64{{body.Size, body.Size}, {0, body.Size + 1}} {
		if _, err := a.InclusionProof(ctx, bad[0], bad[1]); codeOf(err) != "bad_request" {
			t.Errorf("inclusion %v: %v", bad, err)
		}
	}
	if _, err := a.ConsistencyProof(ctx, 3, 2); codeOf(err) != "bad_request" {
		t.Errorf("consistency 3..2: %v", err)
	}
}

// cosigLen is the length of the last signature line of a signed note.
func cosigLen(note string) int {
	i := strings.LastIndex(note[:len(note)-1], "\n")
	return len(note) - i - 1
}

// TestWitnessClient: the Go client reads the same witnessing and proofs
// over the node's real HTTP API.
func TestWitnessClient(t *testing.T) {
	p := newPair(t)
	id := seedDeal(t, p)
	awaitActive(t, p.buyerNode, id)
	a, b := p.buyerNode, p.vendorNode
	awaitf(t, "B to cosign A", func() bool { return cosignedBy(t, a, b.peerID) > 0 })
	tok, err := ReadAdminToken(a.cfg.Home)
	if err != nil {
		t.Fatal(err)
	}
	cl := client.New(a.APIURL(), tok)
	ctx := context.Background()
	w, err := cl.Witnesses(ctx)
	if err != nil || len(w.WitnessedBy) != 1 || w.WitnessedBy[0].Org != b.peerID {
		t.Fatalf("witnesses: %+v %v", w, err)
	}
	size := a.led.Size()
	hashes, err := cl.InclusionProof(ctx, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := a.led.InclusionProof(0, size)
	if len(hashes) != len(want) || (len(want) > 0 && !bytes.Equal(hashes[0], want[0])) {
		t.Fatalf("inclusion: %x, want %x", hashes, want)
	}
	if _, err := cl.ConsistencyProof(ctx, 1, size); err != nil {
		t.Fatal(err)
	}
	var ae *client.Error
	if _, err := cl.ConsistencyProof(ctx, size, 1); !errors.As(err, &ae) || ae.Status != 400 {
		t.Fatalf("consistency %d..1: %v", size, err)
	}
}

// TestWitnessPeersEveryInterval: two organisations without business that
// name each other in witness.peers witness each other every
// witness.interval, and a restarted node still knows the latest size its
// witness cosigned.
func TestWitnessPeersEveryInterval(t *testing.T) {
	dir := t.TempDir()
	ha, hb := filepath.Join(dir, "a-org"), filepath.Join(dir, "b-org")
	for _, h := range []string{ha, hb} {
		if _, err := Init(h, filepath.Base(h), "test"); err != nil {
			t.Fatal(err)
		}
	}
	ida, err := LoadIdentity(ha)
	if err != nil {
		t.Fatal(err)
	}
	idb, err := LoadIdentity(hb)
	if err != nil {
		t.Fatal(err)
	}
	pa, pb := peerIDOf(t, ida), peerIDOf(t, idb)
	edit := func(peer string) func(*Config) {
		return func(c *Config) { c.Witness.Peers = []string{peer}; c.Witness.Interval = 20 * time.Millisecond }
	}
	a := startNodeWith(t, ha, edit(pb))
	b := startNodeWith(t, hb, edit(pa))
	defer b.Close()
	connect(t, a, b)
	awaitf(t, "B to cosign A", func() bool { return cosignedBy(t, a, pb) > 0 })
	awaitf(t, "A to cosign B", func() bool { return cosignedBy(t, b, pa) > 0 })
	size := cosignedBy(t, a, pb)
	a.Close()
	a = startNodeWith(t, ha, func(c *Config) { c.Witness.Interval = time.Hour })
	defer a.Close()
	if got := cosignedBy(t, a, pb); got != size {
		t.Fatalf("after restart B's latest cosignature of A is of size %d, want %d", got, size)
	}
}

func peerIDOf(t *testing.T, k crypto.PrivKey) string {
	t.Helper()
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

// TestWitnessConfig: witness.interval defaults to a minute and
// witness.peers must name peer ids.
func TestWitnessConfig(t *testing.T) {
	c := Config{Home: t.TempDir()}
	c.fillDefaults()
	if c.Witness.Interval != time.Minute {
		t.Fatalf("default interval %v", c.Witness.Interval)
	}
	c.Witness.Peers = []string{"not-a-peer"}
	if err := c.Validate(); err == nil {
		t.Fatal("witness.peers of a non peer id accepted")
	}
}
