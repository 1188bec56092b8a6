package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/ledger/witness"
	"github.com/aspnode/asp/node/api"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// CheckpointsTopic is the GossipSub topic of equivocation proofs: a
// witness that meets a second root for a size it cosigned publishes the
// proof, and every node that verifies one holds the organisation to the
// hard rule (docs/node.md "Witnessing", docs/trust.md). A message is one
// proof as witness.EncodeEquivocation writes it, with the log's key
// certificate inside; the topic's validator verifies it before GossipSub
// forwards it, so a forged or non-contradictory proof goes no further
// than the peer that sent it (and costs that peer its gossip score).
const CheckpointsTopic = "/asp/checkpoints/1"

// heldProof is an equivocation proof this node verified: the organisation
// it accuses signed two checkpoints that cannot both be true.
type heldProof struct {
	org   string
	proof []byte // witness.EncodeEquivocation
	at    time.Time
}

// verifyProof checks an encoded equivocation proof and returns the
// organisation it accuses. Only the certificate inside, signed by the
// organisation its log names, is trusted (witness.VerifyEquivocation).
func verifyProof(b []byte) (string, error) {
	p, err := witness.DecodeEquivocation(b)
	if err != nil {
		return "", err
	}
	origin, err := witness.VerifyEquivocation(p, nil)
	if err != nil {
		return "", err
	}
	org, ok := orgOfOrigin(origin)
	if !ok {
		return "", fmt.Errorf("%w: origin %q is no organisation's ledger", witness.ErrInvalidProof, origin)
	}
	return org, nil
}

// orgOfOrigin returns the organisation whose ledger origin is origin.
func orgOfOrigin(origin string) (string, bool) {
	const prefix = "asp-ledger/"
	if len(origin) <= len(prefix) || origin[:len(prefix)] != prefix {
		return "", false
	}
	org := origin[len(prefix):]
	if _, err := peer.Decode(org); err != nil || ledger.OriginFor(org) != origin {
		return "", false
	}
	return org, true
}

// startEquivocations applies the proofs the ledger holds and joins the
// checkpoints topic.
func (n *Node) startEquivocations() error {
	wi := n.wit
	for from := uint64(0); ; {
		ents, err := n.led.ByKind(ledger.KindEquivocation, from, 256)
		if err != nil {
			return err
		}
		if len(ents) == 0 {
			break
		}
		for _, e := range ents {
			if org, err := verifyProof(e.Body); err == nil {
				wi.proofs[org] = heldProof{org: org, proof: e.Body, at: e.Time}
				n.condemn(org)
			}
		}
		from = ents[len(ents)-1].Index + 1
	}
	ps := n.host.PubSub()
	if ps == nil {
		return nil
	}
	if err := ps.RegisterTopicValidator(CheckpointsTopic, n.validateProof); err != nil {
		return err
	}
	topic, err := ps.Join(CheckpointsTopic)
	if err != nil {
		return err
	}
	sub, err := topic.Subscribe()
	if err != nil {
		return err
	}
	wi.topic = topic
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer sub.Cancel()
		for {
			msg, err := sub.Next(n.ctx)
			if err != nil {
				return
			}
			if org, ok := msg.ValidatorData.(string); ok {
				if n.acceptEquivocation(n.ctx, org, msg.GetData()) {
					wi.equivC.WithLabelValues("accepted").Inc()
				}
			}
		}
	}()
	return nil
}

// validateProof is the checkpoints topic's validator.
func (n *Node) validateProof(_ context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	if len(msg.GetData()) > witness.MaxEquivocationSize {
		n.wit.equivC.WithLabelValues("refused").Inc()
		return pubsub.ValidationReject
	}
	org, err := verifyProof(msg.GetData())
	if err != nil {
		n.wit.equivC.WithLabelValues("refused").Inc()
		n.log.Info("equivocation proof refused", "from", from, "err", err)
		return pubsub.ValidationReject
	}
	msg.ValidatorData = org
	return pubsub.ValidationAccept
}

// onEquivocation handles the witness's discovery that a log it witnesses
// signed a second root for a size it cosigned: the proof, with the log's
// certificate, is recorded, held and published.
func (n *Node) onEquivocation(ctx context.Context, eq *witness.EquivocationError, cert *ledger.KeyCertificate) {
	p, err := eq.Proof().WithCertificate(cert)
	if err == nil {
		var b []byte
		if b, err = witness.EncodeEquivocation(p); err == nil {
			n.wit.equivC.WithLabelValues("built").Inc()
			n.acceptEquivocation(ctx, cert.Org, b)
			n.publishProof(ctx, b)
		}
	}
	if err != nil {
		n.log.Warn("equivocation proof", "org", cert.Org, "err", err)
	}
}

// publishProof gossips a proof on the checkpoints topic.
func (n *Node) publishProof(ctx context.Context, b []byte) {
	if t := n.wit.topic; t != nil {
		if err := t.Publish(ctx, b); err != nil && !errors.Is(err, context.Canceled) {
			n.log.Warn("publish equivocation proof", "err", err)
		}
	}
}

// acceptEquivocation records and holds a verified proof against org, once,
// and applies the hard rule. It reports whether the proof was new.
func (n *Node) acceptEquivocation(ctx context.Context, org string, proof []byte) bool {
	wi := n.wit
	if org == n.peerID {
		// A proof against ourselves: our ledger was forked (restored from
		// an older copy and written again). Nothing to refuse; say it.
		n.log.Error("an equivocation proof against this node's own ledger is gossiped: its history was forked")
		return false
	}
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
	n.condemn(org)
	n.log.Warn("equivocation proven: the organisation's ledger signed two histories", "org", org)
	var agents []string
	for _, a := range n.agents.list() {
		agents = append(agents, a.id.String())
	}
	n.bus.publish(api.Event{Type: "equivocation", Data: map[string]any{"org": org}}, agents...)
	return true
}

// condemn applies the hard rule to org in the trust model.
func (n *Node) condemn(org string) {
	if t := n.ext.trust; t != nil {
		t.model.Equivocated(org)
		t.mu.Lock()
		t.snap = nil
		t.mu.Unlock()
	}
}

// equivocated reports whether the node holds a verified equivocation
// proof against org.
func (n *Node) equivocated(org string) bool {
	wi := n.wit
	if wi == nil {
		return false
	}
	wi.mu.Lock()
	defer wi.mu.Unlock()
	_, ok := wi.proofs[org]
	return ok
}
