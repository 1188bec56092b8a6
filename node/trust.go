package node

import (
	"context"
	"sync"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
	"github.com/aspnode/asp/registry/attest"
	"github.com/aspnode/asp/registry/trust"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Trust: when a commitment settles, our agent signs an attestation about the
// counterparty, records it, and gossips it on attest.Topic. Every verified
// attestation (ours, or received) is recorded and fed to the trust model;
// scores are this node's view (EigenTrust anchored on its own
// counterparties and configured pre-trusted organisations).

// trustState is the node's trust model and the gossip service feeding it.
type trustState struct {
	model *trust.Model
	svc   *attest.Service

	mu       sync.Mutex
	snap     *trust.Snapshot
	snapAt   time.Time
	dirty    bool
	recorded map[[32]byte]bool // attestation hashes in the ledger
}

// snapshotMaxAge bounds how stale a served score may be once new evidence
// has arrived.
const snapshotMaxAge = 200 * time.Millisecond

func (n *Node) startTrust() error {
	m, err := trust.New(trust.Config{PreTrusted: n.cfg.PreTrusted})
	if err != nil {
		return err
	}
	t := &trustState{model: m, dirty: true, recorded: map[[32]byte]bool{}}
	n.ext.trust = t
	// Evidence already recorded.
	for from := uint64(0); ; {
		ents, err := n.led.ByKind(ledger.KindAttestation, from, 4096)
		if err != nil {
			return err
		}
		if len(ents) == 0 {
			break
		}
		for _, e := range ents {
			a, err := attest.Decode(e.Body)
			if err != nil {
				continue
			}
			h, _ := a.Hash()
			t.recorded[h] = true
			n.addEvidence(a)
		}
		from = ents[len(ents)-1].Index + 1
	}
	svc, err := attest.New(attest.Config{Clock: n.opts.clock, Registerer: n.reg, Logger: n.log})
	if err != nil {
		return err
	}
	if err := svc.Join(n.ctx, n.host.PubSub()); err != nil {
		return err
	}
	t.svc = svc
	ch, _ := svc.Subscribe()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for {
			select {
			case <-n.ctx.Done():
				return
			case d, ok := <-ch:
				if !ok {
					return
				}
				n.onAttestation(d)
			}
		}
	}()
	// GossipSub's application score of a peer is its organisation's weight
	// in our trust view: peers we have reason to trust are heard first.
	if err := n.host.SetAppSpecificScore(func(p peer.ID) float64 {
		return n.trustSnapshot().OrgWeight(p.String())
	}); err != nil {
		return err
	}
	return nil
}

func (n *Node) stopTrust() {
	if t := n.ext.trust; t != nil && t.svc != nil {
		t.svc.Close()
	}
}

// onAttestation records a verified attestation from the topic and feeds
// the model.
func (n *Node) onAttestation(d attest.Delivery) {
	t := n.ext.trust
	t.mu.Lock()
	seen := t.recorded[d.Hash]
	t.recorded[d.Hash] = true
	t.mu.Unlock()
	if !seen {
		raw, err := d.Attestation.Encode()
		if err != nil {
			return
		}
		if _, err := n.record(n.ctx, "attestation", ledger.AttestationRecord(n.now(), "", d.Attestation.CommitmentID, raw)); err != nil {
			n.log.Warn("record attestation", "err", err)
			return
		}
	}
	n.addEvidence(d.Attestation)
	for _, a := range []string{d.Attestation.Subject, d.Attestation.Attester} {
		if n.localAgent(a) != nil {
			n.bus.publish(api.Event{Type: "trust", Data: map[string]any{
				"attester": d.Attestation.Attester, "subject": d.Attestation.Subject,
				"commitmentId": d.Attestation.CommitmentID, "outcome": d.Attestation.Outcome,
			}}, a)
		}
	}
}

func (n *Node) addEvidence(a *attest.Attestation) {
	t := n.ext.trust
	o, err := trust.ParseOutcome(string(a.Outcome))
	if err != nil {
		return
	}
	ev := trust.Evidence{Attester: a.Attester, Subject: a.Subject, CommitmentID: a.CommitmentID, Outcome: o, Time: a.Time}
	if offer, err := protocol.DecodeEnvelope(a.Offer); err == nil {
		ev.Value = commitmentValue(offer)
	}
	if err := t.model.Add(ev); err != nil {
		n.log.Debug("evidence not counted", "commitment", a.CommitmentID, "err", err)
	}
	t.mu.Lock()
	t.dirty = true
	t.mu.Unlock()
}

// commitmentValue is quantity × unit price of an offer's terms, or "".
func commitmentValue(offer *protocol.Envelope) string {
	var terms *protocol.Terms
	switch b := offer.Body.(type) {
	case *protocol.ProposeBody:
		terms = b.Terms
	case *protocol.CounterBody:
		terms = &b.Terms
	case *protocol.CommitBody:
		terms = &b.Terms
	}
	if terms == nil || terms.Quantity == "" || terms.UnitPrice == "" {
		return ""
	}
	v, err := protocol.MulDecimal(terms.Quantity, terms.UnitPrice)
	if err != nil {
		return ""
	}
	return v
}

// trustSnapshot returns the current scores, recomputed when evidence
// arrived (at most every snapshotMaxAge).
func (n *Node) trustSnapshot() *trust.Snapshot {
	t := n.ext.trust
	t.mu.Lock()
	defer t.mu.Unlock()
	now := n.now()
	if t.snap == nil || (t.dirty && now.Sub(t.snapAt) >= snapshotMaxAge) || now.Sub(t.snapAt) > time.Minute {
		t.snap = t.model.Compute(n.peerID, now)
		t.snapAt = now
		t.dirty = false
	}
	return t.snap
}

// trustView is the registry's trust view.
func (n *Node) trustView(agentID string) (float64, string, int) {
	if n.ext.trust == nil {
		return 0, "L0", 0
	}
	s := n.trustSnapshot().Score(agentID)
	return s.Score, s.Level.String(), s.Completed
}

// Trust implements api.Backend.
func (n *Node) Trust(ctx context.Context, agentID string) (api.TrustInfo, error) {
	if _, err := protocol.ParseAgentID(agentID); err != nil {
		return api.TrustInfo{}, badRequest("agent id: %v", err)
	}
	if n.ext.trust == nil {
		// No trust model (the node harness): nothing known, score 0.
		return api.TrustInfo{AgentID: agentID, Level: "L0"}, nil
	}
	n.ext.trust.mu.Lock()
	n.ext.trust.dirty = true // an explicit question gets a fresh answer
	n.ext.trust.snapAt = time.Time{}
	n.ext.trust.mu.Unlock()
	snap := n.trustSnapshot()
	if !n.knownAgent(snap, agentID) {
		return api.TrustInfo{}, errorf(codeNotFound, "agent %s not known here: no card and no evidence about it (find agents with GET /v1/discover)", agentID)
	}
	e := snap.Explain(agentID)
	info := api.TrustInfo{
		AgentID: agentID, Score: e.Score, Level: e.Level.String(), Completed: e.Completed,
		Components: e.Components.Map(), Anchored: snap.Anchored(),
	}
	if !info.Anchored {
		info.Hint = unanchoredHint
	}
	return info, nil
}

// onCommitmentSettled attests the counterparty's conduct when a commitment
// reaches an outcome: FULFILLED (both parties attest each other), EXPIRED
// (the session's initiator, who asked for the service, attests the
// provider; it counts as a breach), BREACHED (the other party attests the
// breacher).
// REQUIRES: c.mu.
func (n *Node) onCommitmentSettled(c *commitment) {
	if n.ext.trust == nil || n.ext.trust.svc == nil {
		return
	}
	var outcome attest.Outcome
	switch c.stateLocked() {
	case protocol.CommitmentFulfilled:
		outcome = attest.Fulfilled
	case protocol.CommitmentExpired:
		s := n.getSession(c.session)
		if s == nil || !s.initiator {
			return
		}
		outcome = attest.Expired
	case protocol.CommitmentBreached:
		if v := c.pc; len(v.Actions) == 0 || v.Actions[len(v.Actions)-1].Breacher != c.remote.String() {
			return
		}
		outcome = attest.Breached
	default:
		return
	}
	// The evidence is the commitment with both organisations' receipts:
	// without the counterparty's, no observer counts it.
	a, err := attest.FromCommitment(c.pc, outcome, n.now(), c.local.key, c.local.cert)
	if err != nil {
		n.log.Warn("attestation", "commitment", c.id, "err", err)
		return
	}
	raw, err := a.Encode()
	if err != nil {
		return
	}
	h, _ := a.Hash()
	t := n.ext.trust
	t.mu.Lock()
	t.recorded[h] = true
	t.mu.Unlock()
	// Recorded before it is published.
	if _, err := n.record(n.ctx, "attestation", ledger.AttestationRecord(a.Time, c.session, c.id, raw)); err != nil {
		n.log.Warn("record attestation", "commitment", c.id, "err", err)
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		defer cancel()
		if err := t.svc.Publish(ctx, a); err != nil {
			n.log.Warn("publish attestation", "commitment", c.id, "err", err)
		}
	}()
}

func (n *Node) trustScore(agentID string) float64 {
	s, _, _ := n.trustView(agentID)
	return s
}
