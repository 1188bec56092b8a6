package node

import (
	"context"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/ledger/witness"
)

// heldProof is an equivocation proof this node verified: the organisation
// it accuses signed two checkpoints that cannot both be true.
type heldProof struct {
	org   string
	proof []byte // witness.EncodeEquivocation
	at    time.Time
}

// onEquivocation handles the witness's discovery that a log it witnesses
// signed a second root for a size it cosigned: the proof, with the log's
// certificate, is recorded, held and published.
func (n *Node) onEquivocation(ctx context.Context, eq *witness.EquivocationError, cert *ledger.KeyCertificate) {
	p, err := eq.Proof().WithCertificate(cert)
	if err != nil {
		n.log.Warn("equivocation proof", "org", cert.Org, "err", err)
		return
	}
	b, err := witness.EncodeEquivocation(p)
	if err != nil {
		n.log.Warn("equivocation proof", "org", cert.Org, "err", err)
		return
	}
	n.wit.equivC.WithLabelValues("built").Inc()
	n.acceptEquivocation(ctx, cert.Org, b)
}

// acceptEquivocation records and holds a verified proof against org, once.
func (n *Node) acceptEquivocation(ctx context.Context, org string, proof []byte) bool {
	wi := n.wit
	wi.mu.Lock()
	if _, ok := wi.proofs[org]; ok {
		wi.mu.Unlock()
		return false
	}
	wi.proofs[org] = heldProof{org: org, proof: proof, at: n.now()}
	wi.mu.Unlock()
	if _, err := n.record(ctx, "equivocation", ledger.EquivocationRecord(n.now(), proof)); err != nil {
		n.log.Warn("equivocation", "org", org, "err", err)
	}
	n.log.Warn("equivocation proven", "org", org)
	return true
}
