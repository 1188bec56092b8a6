package node

import (
	"bytes"
	"testing"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/ledger/witness"
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
