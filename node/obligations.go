package node

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
)

// Obligations watched, on the node's timer (watchDisputes): each
// commitment's obligations (protocol.Commitment.Watch, under the policy's
// windows) and each open dispute's deadlines (DisputeCase.Tick).
//
//   - A breach of an obligation owed to our agent (its deadline passed
//     with no claim by the obligor the terms name) is recorded once
//     (ledger.Breach) and published (the dispute event, step "breach");
//     under onBreach: file, our agent files at once: timeout_breach for a
//     delivery or COMMIT obligation, payment_default for the payment,
//     against the obligor. notify and ask only record and publish (ask
//     says the agent is to decide).
//   - A claim of an obligation owed to our agent, neither confirmed nor
//     disputed within confirmWithin of its signed time (AutoDue), is
//     confirmed by the node for the agent (whose key it holds): a confirm
//     action driven like any other.
//   - An open dispute past a deadline moves as protocol derives
//     (escalated at respondWithin or negotiateFor, to the humans at
//     ruleWithin), at the deadline's time; the change is published. It
//     is not recorded: every node holding the same records and windows
//     derives it.

// watchDisputes runs the dispute timers once.
func (n *Node) watchDisputes(ctx context.Context) {
	now := n.now()
	pol := n.disputes.policy.get()
	cs := n.commitments.list(nil)
	sort.Slice(cs, func(i, j int) bool { return cs[i].id < cs[j].id })
	for _, c := range cs {
		if !c.mu.TryLock() {
			continue
		}
		if c.activated && c.pendingAction == nil {
			n.watchLocked(ctx, c, now, pol)
		}
		n.tickDisputesLocked(c, now, pol)
		c.mu.Unlock()
	}
}

// watchLocked acts on c's obligations owed to our agent.
// REQUIRES: c.mu.
func (n *Node) watchLocked(ctx context.Context, c *commitment, now time.Time, pol policy) {
	me := c.local.id.String()
	for _, s := range c.pc.Watch(now, pol.windows) {
		if s.Obligee != me {
			continue
		}
		switch {
		case s.Status == protocol.DutyBreached:
			if n.disputes.breachSeen(s.ID) {
				continue
			}
			n.breachLocked(ctx, c, s, pol)
		case s.Status == protocol.DutyClaimed && s.AutoDue && c.pc.State == protocol.CommitmentFulfillmentClaimed:
			a := &protocol.Action{CommitmentID: c.id, Kind: protocol.ActionConfirm, Actor: me, Time: now,
				Reason: "confirmed automatically: not disputed within confirmWithin", Obligation: s.Claim.Obligation}
			if err := n.actLocked(ctx, c, a); err != nil {
				n.log.Warn("automatic confirmation", "commitment", c.id, "err", err)
			}
			return
		}
	}
}

// breachLocked records and publishes a breach detected, and files under
// onBreach: file.
// REQUIRES: c.mu.
func (n *Node) breachLocked(ctx context.Context, c *commitment, s protocol.DutyState, pol policy) {
	b := &ledger.Breach{Obligation: s.ID, Obligor: s.Obligor, Deadline: protocol.FormatTime(s.Deadline)}
	rec := ledger.DisputeRecord(n.now(), c.session, c.id, ledger.DisputeRecordBody{Breach: b})
	me := c.local.id.String()
	err := n.drive(ctx, &step{what: "breach", records: []ledger.Record{rec}, quiet: true, settle: func(o *outcome) (*step, error) {
		o.publish(api.Event{Type: "dispute", Data: map[string]any{
			"step": "breach", "commitmentId": c.id, "obligation": s.Key, "obligor": s.Obligor,
			"deadline": s.Deadline, "onBreach": pol.onBreach, "penaltyOwed": s.Penalty, "currency": s.Currency,
		}}, me)
		return nil, nil
	}})
	if err != nil || pol.onBreach != OnBreachFile {
		return
	}
	grounds := protocol.GroundsTimeoutBreach
	if s.Kind == protocol.ObligationPayment {
		grounds = protocol.GroundsPaymentDefault
	}
	claim := fmt.Sprintf("%s missed its deadline %s: fulfil it", s.Key, protocol.FormatTime(s.Deadline))
	if s.Penalty != "" {
		claim += fmt.Sprintf(", and pay the penalty owed (%s %s so far)", s.Penalty, s.Currency)
	}
	key := s.Key
	if key == protocol.ObligationKeyDelivery {
		key = ""
	}
	d := &protocol.Dispute{Obligation: key, Grounds: grounds, Severity: 3, Claim: claim, Time: n.now(),
		Statement: "filed automatically by the node's dispute policy (onBreach: file)"}
	if id, err := n.fileLocked(ctx, c, d); err != nil {
		n.log.Warn("automatic filing", "commitment", c.id, "dispute", id, "err", err)
	}
}

// actLocked signs, records and drives an action of our agent on c.
// REQUIRES: c.mu.
func (n *Node) actLocked(ctx context.Context, c *commitment, a *protocol.Action) error {
	if a.Time.Before(c.pc.Updated) {
		a.Time = c.pc.Updated
	}
	if err := a.Sign(c.local.key, c.local.cert); err != nil {
		return err
	}
	next, err := c.pc.Apply(a)
	if err != nil {
		return err
	}
	raw, err := protocol.EncodeAction(a)
	if err != nil {
		return err
	}
	st := n.actionStep(c, raw, next, false)
	st.records = []ledger.Record{ledger.CommitmentUpdateRecord(a.Time, c.session, c.id, ledger.CommitmentUpdate{State: next.State, Action: raw})}
	return n.drive(ctx, st)
}

// tickDisputesLocked moves c's open disputes past their deadlines.
// REQUIRES: c.mu.
func (n *Node) tickDisputesLocked(c *commitment, now time.Time, pol policy) {
	for _, dc := range n.disputes.of(c.id) {
		if next, changed := dc.k.Tick(now, pol.windows); changed {
			dc.k = next
			n.bus.publish(disputeEvent(dc, "deadline"), c.local.id.String())
		}
	}
}

// resendDisputes resends the dispute records counterparties have not
// acknowledged.
func (n *Node) resendDisputes() {
	seen := map[*commitment]bool{}
	for _, dc := range n.disputes.list() {
		c := dc.c
		if seen[c] {
			continue
		}
		seen[c] = true
		if !c.mu.TryLock() {
			continue
		}
		n.resendDisputesLocked(n.ctx, c)
		c.mu.Unlock()
	}
}

// recoverDisputes rebuilds the disputes from the ledger
// (protocol.RebuildDispute, each record at its own time), the breaches
// recorded, and puts the configured policy in force (recording it if it
// is not the last recorded).
func (n *Node) recoverDisputes(ctx context.Context) error {
	type held struct {
		filing []byte
		steps  [][]byte
		ruling []byte
		index  uint64
	}
	cases := map[string]*held{}
	var order []string
	refused := map[string]bool{}
	var last *ledger.Policy
	size := n.led.Size()
	const page = 4096
	for from := uint64(0); from < size; from += page {
		ents, err := n.led.Entries(from, page)
		if err != nil {
			return err
		}
		for _, e := range ents {
			switch e.Kind {
			case kindMessageRefused:
				if r, err := ledger.DecodeRefusal(e.Body); err == nil {
					refused[r.MessageID] = true
				}
			case ledger.KindPolicy:
				if p, err := ledger.DecodePolicy(e.Body); err == nil {
					last = &p
				}
			case ledger.KindDispute:
				b, err := ledger.DecodeDisputeRecord(e.Body)
				if err != nil {
					continue
				}
				switch {
				case b.Breach != nil:
					n.disputes.breachSeen(b.Breach.Obligation)
				case b.Filing != nil:
					d, err := protocol.DecodeDispute(b.Filing)
					if err == nil && cases[d.ID()] == nil {
						cases[d.ID()] = &held{filing: b.Filing, index: e.Index}
						order = append(order, d.ID())
					}
				case b.Step != nil:
					s, err := protocol.DecodeDisputeStep(b.Step)
					if err == nil && cases[s.DisputeID] != nil {
						h := cases[s.DisputeID]
						h.steps = append(h.steps, b.Step)
					}
				case b.Ruling != nil:
					r, err := protocol.DecodeRuling(b.Ruling)
					if err == nil && cases[r.DisputeID] != nil && !refused[recordID("ruling", b.Ruling)] {
						cases[r.DisputeID].ruling = b.Ruling
					}
				}
			}
		}
	}
	n.disputes.policy.recorded = last
	pol, err := resolvePolicy(n.cfg.Disputes)
	if err != nil {
		return err
	}
	rules := protocol.DisputeRules{Windows: pol.windows}
	for _, id := range order {
		h := cases[id]
		if refused[recordID("dispute", h.filing)] {
			continue
		}
		d, _ := protocol.DecodeDispute(h.filing)
		c := n.getCommitment(d.CommitmentID)
		if c == nil {
			continue
		}
		var steps []*protocol.DisputeStep
		var raws [][]byte
		for _, raw := range h.steps {
			if refused[recordID("dispute-step", raw)] {
				continue
			}
			s, _ := protocol.DecodeDisputeStep(raw)
			steps, raws = append(steps, s), append(raws, raw)
		}
		var prior []*protocol.Dispute
		for _, o := range n.disputes.of(c.id) {
			prior = append(prior, o.k.Dispute)
		}
		var ruling *protocol.Ruling
		if h.ruling != nil && !refused[recordID("ruling", h.ruling)] {
			ruling, _ = protocol.DecodeRuling(h.ruling)
		}
		k, err := protocol.RebuildDispute(c.pc, d, prior, steps, ruling, rules)
		if err != nil {
			n.log.Error("dispute does not replay from the ledger", "dispute", id, "err", err)
			continue
		}
		dc := &dcase{id: id, c: c, k: k, filing: h.filing, steps: raws}
		dc.pending = n.unacknowledged(dc)
		n.disputes.put(dc)
	}
	return n.putPolicy(ctx, pol)
}

// unacknowledged returns the request of our last record in dc, to be
// resent after a restart: the ledger does not say whether the counterparty
// acknowledged it, and it answers a resend as the first time.
// REQUIRES: dc.c.mu, or dc not yet shared.
func (n *Node) unacknowledged(dc *dcase) *wireReq {
	c, me := dc.c, dc.c.local.id.String()
	if ru := dc.k.Ruling; ru != nil {
		// A ruling at the human rung: resent by whichever side completed
		// it (the counterparty answers a resend as the first time).
		raw, err := protocol.EncodeRuling(ru)
		if err != nil || ru.Arbiter != "" {
			return nil
		}
		req := &wireReq{Type: wireDispute, Ruling: raw}
		if k := len(c.actions); k > 0 {
			if a, err := protocol.DecodeAction(c.actions[k-1]); err == nil && a.Kind == protocol.ActionResolve {
				req.Action = c.actions[k-1]
			}
		}
		return req
	}
	if len(dc.steps) == 0 {
		if dc.k.Filer != me {
			return nil
		}
		req := &wireReq{Type: wireDispute, Filing: dc.filing}
		for _, raw := range c.actions {
			if a, err := protocol.DecodeAction(raw); err == nil && a.Kind == protocol.ActionDispute && a.Actor == me {
				req.Action = raw
			}
		}
		return req
	}
	raw := dc.steps[len(dc.steps)-1]
	s, err := protocol.DecodeDisputeStep(raw)
	if err != nil || s.By != me {
		return nil
	}
	req := &wireReq{Type: wireDispute, Step: raw}
	if dc.k.State == protocol.DisputeResolved && c.pc.State == protocol.CommitmentDisputed {
		// The resolve action we sent with it, signed again (the same
		// bytes: Ed25519 signatures are deterministic).
		half := &protocol.Action{CommitmentID: c.id, Kind: protocol.ActionResolve, Actor: me, Time: s.Time,
			Outcome: protocol.CommitmentResolved, Reason: "remedy accepted in " + dc.id}
		if half.Sign(c.local.key, c.local.cert) == nil {
			req.Action, _ = protocol.EncodeAction(half)
		}
	}
	return req
}
