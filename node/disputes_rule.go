package node

import (
	"context"
	"fmt"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
)

// A ruling at the human rung (HUMAN: no arbiter, or the arbiter silent
// past ruleWithin) is signed by both parties, each organisation's human
// deciding through the admin API (POST /v1/disputes/{id}/rule) and its
// node signing with its agent's key. The first side's ruling, signed
// once, travels as an offer with its resolve action (wireDispute, field
// ruling), held in memory by the other node and published; when the other
// side rules the same (outcome, breacher, remedy, reasoning), its node
// countersigns both and drives them like a step: recorded, sent, checked
// there with DisputeCase.Rule and Commitment.Apply, recorded. A different
// ruling becomes the new offer. An offer lost in a restart is ruled again.

// RuleDispute implements api.DisputeBackend: the admin rules at the human
// rung (the arbiter's ruling is not served yet).
func (n *Node) RuleDispute(ctx context.Context, p api.Principal, id string, req api.RuleRequest) (api.DisputeInfo, error) {
	dc := n.disputes.get(id)
	if dc == nil {
		return api.DisputeInfo{}, notFound("dispute", id)
	}
	if !p.Admin {
		return api.DisputeInfo{}, errorf(protocol.CodeUnauthorized, "only the organisation's admin rules, at the human rung")
	}
	c := dc.c
	c.mu.Lock()
	defer c.mu.Unlock()
	now := n.now()
	rules := n.disputeRules()
	cur, _ := dc.k.Tick(now, rules.Windows)
	if cur.State != protocol.DisputeHuman {
		return n.disputeInfoLocked(dc), invalidTransition("dispute %s is %s: the parties rule at the human rung only", id, cur.State)
	}
	if dc.pending != nil {
		return n.disputeInfoLocked(dc), errorf(codePending, "the previous record in %s is not yet acknowledged by the counterparty; it is being resent", id)
	}
	me := c.local.id.String()
	ru := &protocol.Ruling{DisputeID: id, CommitmentID: c.id, Outcome: protocol.RulingOutcome(req.Outcome), Breacher: req.Breacher,
		Remedy: req.Remedy, Reasoning: req.Reasoning, Time: now}
	var act *protocol.Action
	if o := n.disputes.takeRuling(id); o != nil && o.ru.Outcome == ru.Outcome && o.ru.Breacher == ru.Breacher &&
		o.ru.Remedy == ru.Remedy && o.ru.Reasoning == ru.Reasoning {
		ru, act = o.ru, o.act
	} else if ru.Time.Before(cur.Updated) {
		ru.Time = cur.Updated
	}
	if err := ru.Sign(c.local.key, c.local.cert); err != nil {
		return n.disputeInfoLocked(dc), err
	}
	raw, err := protocol.EncodeRuling(ru)
	if err != nil {
		return api.DisputeInfo{}, err
	}
	if act == nil && c.pc.State == protocol.CommitmentDisputed {
		act = &protocol.Action{CommitmentID: c.id, Kind: protocol.ActionResolve, Actor: me, Time: ru.Time,
			Outcome: ru.CommitmentOutcome(), Breacher: ru.Breacher, Reason: "ruled at the human rung in " + id}
	}
	var actRaw []byte
	if act != nil {
		if err := act.Sign(c.local.key, c.local.cert); err != nil {
			return n.disputeInfoLocked(dc), err
		}
		if actRaw, err = protocol.EncodeAction(act); err != nil {
			return api.DisputeInfo{}, err
		}
	}
	req2 := &wireReq{Type: wireDispute, Ruling: raw, Action: actRaw}
	if len(ru.Signatures) == 1 {
		// Our offer: binding on nobody alone, so not recorded.
		err := n.drive(ctx, &step{what: "ruling offer", to: c.remote.Org, send: req2, sending: &c.sending,
			settle: func(o *outcome) (*step, error) {
				switch {
				case o.err != nil:
					return nil, errUndelivered("the counterparty did not acknowledge the ruling offer; rule again")
				case o.refused():
					return nil, &RemoteRefusal{Code: o.ack.Code, Message: o.ack.Message}
				}
				return nil, nil
			}})
		return n.disputeInfoLocked(dc), err
	}
	k, err := cur.Rule(ru, now, rules)
	if err != nil {
		return n.disputeInfoLocked(dc), err
	}
	recs := []ledger.Record{ledger.DisputeRecord(ru.Time, c.session, c.id, ledger.DisputeRecordBody{Ruling: raw})}
	var next *protocol.Commitment
	if act != nil {
		if next, err = c.pc.ApplyAt(act, now, 0); err != nil {
			return n.disputeInfoLocked(dc), err
		}
		recs = append(recs, ledger.CommitmentUpdateRecord(ru.Time, c.session, c.id, ledger.CommitmentUpdate{State: next.State, Action: actRaw}))
	}
	err = n.drive(ctx, &step{what: "ruling", records: recs, to: c.remote.Org, send: req2, sending: &c.sending,
		settle: func(o *outcome) (*step, error) {
			if o.refused() {
				st := n.refusedStep(c.session, c.id, recordID("ruling", raw), o.ack, nil)
				if actRaw != nil {
					st.records = append(st.records, ledger.RefusalRecord(n.now(), c.session, c.id,
						ledger.Refusal{MessageID: actionID(actRaw), Code: o.ack.Code, Reason: o.ack.Message}))
				}
				return st, nil
			}
			dc.k = k
			if next != nil {
				n.applyLocked(c, actRaw, next, o)
			}
			o.publish(disputeEvent(dc, "ruled"), me)
			if o.err != nil {
				dc.pending = req2
				return nil, errUndelivered("the ruling is recorded but the counterparty did not acknowledge it yet; it will be resent")
			}
			return nil, nil
		}})
	return n.disputeInfoLocked(dc), err
}

// onRuling receives the counterparty's ruling at the human rung: an offer
// (signed by its party alone), held and published, or the ruling
// countersigned by it, checked and recorded.
func (n *Node) onRuling(ctx context.Context, from string, raw, act []byte) *wireResp {
	ru, err := protocol.DecodeRuling(raw)
	if err != nil {
		return refuseErr(err)
	}
	dc := n.disputes.get(ru.DisputeID)
	if dc == nil {
		return &wireResp{Code: codeNotFound, Message: "no dispute " + ru.DisputeID}
	}
	c := dc.c
	remote := c.remote.String()
	if c.remote.Org != from || ru.Arbiter != "" || !signedBy(ru.Signatures, remote) {
		return refuse(protocol.ErrNotParty, fmt.Errorf("a ruling at the human rung from %s's node, signed by it", remote))
	}
	var a *protocol.Action
	if act != nil {
		if a, err = protocol.DecodeAction(act); err != nil {
			return refuseErr(err)
		}
		if a.Kind != protocol.ActionResolve || a.Outcome != ru.CommitmentOutcome() || a.Breacher != ru.Breacher || a.CommitmentID != c.id {
			return refuse(protocol.ErrMalformed, fmt.Errorf("the resolve action does not carry the ruling's outcome"))
		}
	}
	if err := c.acquireForAction(ctx, c.acceptor); err != nil {
		return refuseErr(err)
	}
	defer c.mu.Unlock()
	if k := dc.k; k.Ruling != nil {
		if enc, _ := protocol.EncodeRuling(k.Ruling); string(enc) == string(raw) {
			return &wireResp{} // a resend
		}
	}
	now := n.now()
	rules := n.disputeRules()
	cur, _ := dc.k.Tick(now, rules.Windows)
	if len(ru.Signatures) == 1 {
		if cur.State != protocol.DisputeHuman {
			return refuse(protocol.ErrDisputeStep, fmt.Errorf("dispute %s is %s here, not HUMAN", dc.id, cur.State))
		}
		if err := ru.Verify(remote); err != nil {
			return refuseErr(err)
		}
		if a != nil {
			if err := a.Verify(); err != nil || a.Actor != remote {
				return refuse(protocol.ErrBadSignature, fmt.Errorf("the resolve action offered is not %s's", remote))
			}
		}
		n.disputes.holdRuling(dc.id, &rulingOffer{ru: ru, act: a})
		err = n.drive(ctx, &step{what: "ruling offer", settle: func(o *outcome) (*step, error) {
			ev := disputeEvent(dc, "ruling offered")
			ev.Data.(map[string]any)["ruling"] = ru
			o.publish(ev, c.local.id.String())
			return nil, nil
		}})
		if err != nil {
			return refuseErr(err)
		}
		return &wireResp{}
	}
	k, err := cur.Rule(ru, now, rules)
	if err != nil {
		return refuseErr(err)
	}
	recs := []ledger.Record{ledger.DisputeRecord(now, c.session, c.id, ledger.DisputeRecordBody{Ruling: raw})}
	var next *protocol.Commitment
	if c.pc.State == protocol.CommitmentDisputed {
		if a == nil {
			return refuse(protocol.ErrMissingSignature, fmt.Errorf("a ruling on a DISPUTED commitment travels with its resolve action"))
		}
		if next, err = c.pc.ApplyAt(a, now, 0); err != nil {
			return refuseErr(err)
		}
		recs = append(recs, ledger.CommitmentUpdateRecord(now, c.session, c.id, ledger.CommitmentUpdate{State: next.State, Action: act}))
	}
	err = n.drive(ctx, &step{what: "ruling", records: recs, settle: func(o *outcome) (*step, error) {
		dc.k = k
		n.disputes.takeRuling(dc.id)
		if next != nil {
			n.applyLocked(c, act, next, o)
		}
		o.publish(disputeEvent(dc, "ruled"), c.local.id.String())
		return nil, nil
	}})
	if err != nil {
		return refuseErr(err)
	}
	return &wireResp{}
}

func signedBy(sigs []protocol.ActionSignature, agent string) bool {
	for _, s := range sigs {
		if s.Certificate != nil && s.Certificate.AgentID == agent {
			return true
		}
	}
	return false
}

// rulingOffer is the counterparty's ruling at the human rung, signed by it
// alone, with its resolve action.
type rulingOffer struct {
	ru  *protocol.Ruling
	act *protocol.Action
}

func (b *disputeBook) holdRuling(id string, o *rulingOffer) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rulings == nil {
		b.rulings = map[string]*rulingOffer{}
	}
	b.rulings[id] = o
}

func (b *disputeBook) takeRuling(id string) *rulingOffer {
	b.mu.Lock()
	defer b.mu.Unlock()
	o := b.rulings[id]
	delete(b.rulings, id)
	return o
}
