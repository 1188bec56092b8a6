package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
)

// Disputes between the two parties of a commitment (docs/disputes.md, "On
// the node"). A filing or a step is signed by the acting agent, recorded
// (ledger.KindDispute) and sent to the counterparty's node (wireDispute)
// by the driver, like a commitment action; the counterparty checks it
// with protocol (OpenDispute, DisputeCase.Step) against its own clock and
// records it. A filing travels with the filer's dispute action, which
// moves the commitment to DISPUTED; an accepted remedy with the resolve
// action, signed by the accepting party and countersigned by the other
// party's node (whose agent offered the remedy), which answers with it:
// both records hold both signatures. A dispute's state is changed only
// under its commitment's lock (commitment.mu).

// disputeBook holds the node's disputes and its dispute policy.
type disputeBook struct {
	policy policyState

	mu   sync.Mutex // a leaf
	byID map[string]*dcase
	// breaches holds the obligations (ids) whose breach is recorded.
	breaches map[string]bool
	// cancels holds the counterparty's cancellation offers, by
	// commitment (cancel.go).
	cancels map[string][]byte
	// rulings holds the counterparty's ruling offers at the human rung,
	// by dispute (disputes_rule.go).
	rulings map[string]*rulingOffer
}

func newDisputeBook() *disputeBook {
	return &disputeBook{byID: map[string]*dcase{}, breaches: map[string]bool{}}
}

// dcase is one dispute on one of our commitments.
type dcase struct {
	id string
	c  *commitment

	// Guarded by c.mu.
	k      *protocol.DisputeCase
	filing []byte   // the signed filing (CBOR)
	steps  [][]byte // the signed steps (CBOR), in order
	// cosigned is the resolve action we countersigned, answered again
	// to a resent accept.
	cosigned []byte
	// pending is a request of ours recorded but not yet acknowledged: it
	// is resent. unapplied: it is our filing, whose dispute action is
	// applied only once acknowledged.
	pending   *wireReq
	unapplied bool
}

func (b *disputeBook) get(id string) *dcase {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.byID[id]
}

func (b *disputeBook) put(d *dcase) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.byID[d.id] = d
}

// of returns the disputes on commitment id, in filing order.
func (b *disputeBook) of(id string) []*dcase {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*dcase
	for _, d := range b.byID {
		if d.c.id == id {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (b *disputeBook) list() []*dcase {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*dcase, 0, len(b.byID))
	for _, d := range b.byID {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (b *disputeBook) drop(d *dcase) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.byID[d.id] == d {
		delete(b.byID, d.id)
	}
}

// disputePendingLocked reports whether a filing or step of ours on c is
// not yet acknowledged.
// REQUIRES: c.mu.
func (n *Node) disputePendingLocked(c *commitment) bool {
	for _, d := range n.disputes.of(c.id) {
		if d.pending != nil {
			return true
		}
	}
	return false
}

// breachSeen marks an obligation's breach as recorded; it reports whether
// it was already.
func (b *disputeBook) breachSeen(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	seen := b.breaches[id]
	b.breaches[id] = true
	return seen
}

// rules are the dispute machine's rules under the policy in force.
func (n *Node) disputeRules() protocol.DisputeRules {
	return protocol.DisputeRules{Windows: n.disputes.policy.get().windows}
}

// priorFilings are the filings on c already held.
// REQUIRES: c.mu.
func (n *Node) priorFilings(c *commitment) []*protocol.Dispute {
	var out []*protocol.Dispute
	for _, d := range n.disputes.of(c.id) {
		out = append(out, d.k.Dispute)
	}
	return out
}

func recordID(what string, raw []byte) string {
	h := sha256.Sum256(raw)
	return what + ":" + hex.EncodeToString(h[:16])
}

// severityToken is the dispute action's severity token for a filing's 1–5.
func severityToken(s int) string {
	switch {
	case s <= 2:
		return "low"
	case s == 3:
		return "medium"
	}
	return "high"
}

// fileLocked signs d by our agent, opens its case, and drives the filing
// (with our dispute action when the commitment can still move to
// DISPUTED) to the counterparty.
// REQUIRES: c.mu.
func (n *Node) fileLocked(ctx context.Context, c *commitment, d *protocol.Dispute) (string, error) {
	if c.stateLocked() == protocol.CommitmentPending {
		return "", invalidTransition("commitment %s is not ACTIVE yet: receipts are still being exchanged", c.id)
	}
	if c.pendingAction != nil || n.disputePendingLocked(c) {
		return "", errorf(codePending, "the previous action on %s is not yet acknowledged by the counterparty; it is being resent", c.id)
	}
	d.CommitmentID, d.FiledBy, d.Against = c.id, c.local.id.String(), c.remote.String()
	if d.Time.Before(c.pc.Updated) {
		d.Time = c.pc.Updated
	}
	if err := d.Sign(c.local.key, c.local.cert); err != nil {
		return "", err
	}
	k, err := protocol.OpenDispute(c.pc, d, n.priorFilings(c), n.now(), n.disputeRules())
	if err != nil {
		return "", err
	}
	filing, err := protocol.EncodeDispute(d)
	if err != nil {
		return "", err
	}
	recs := []ledger.Record{ledger.DisputeRecord(d.Time, c.session, c.id, ledger.DisputeRecordBody{Filing: filing})}
	req := &wireReq{Type: wireDispute, Filing: filing}
	var act []byte
	var next *protocol.Commitment
	switch c.pc.State {
	case protocol.CommitmentActive, protocol.CommitmentFulfillmentClaimed, protocol.CommitmentExpired:
		a := &protocol.Action{CommitmentID: c.id, Kind: protocol.ActionDispute, Actor: d.FiledBy, Time: d.Time,
			Reason: string(d.Grounds) + ": " + d.Claim, Severity: severityToken(d.Severity), Obligation: d.Obligation}
		if len(a.Reason) > 200 {
			a.Reason = a.Reason[:200]
		}
		if err := a.Sign(c.local.key, c.local.cert); err != nil {
			return "", err
		}
		if next, err = c.pc.Apply(a); err != nil {
			return "", err
		}
		if act, err = protocol.EncodeAction(a); err != nil {
			return "", err
		}
		recs = append(recs, ledger.CommitmentUpdateRecord(d.Time, c.session, c.id, ledger.CommitmentUpdate{State: next.State, Action: act}))
		req.Action = act
	}
	dc := &dcase{id: k.ID, c: c, k: k, filing: filing}
	err = n.drive(ctx, &step{what: "dispute filing", records: recs, to: c.remote.Org, send: req, sending: &c.sending,
		settle: func(o *outcome) (*step, error) {
			if o.refused() {
				st := n.refusedStep(c.session, c.id, recordID("dispute", filing), o.ack, nil)
				if act != nil {
					// The dispute action recorded with it is refused with it.
					st.records = append(st.records, ledger.RefusalRecord(n.now(), c.session, c.id,
						ledger.Refusal{MessageID: actionID(act), Code: o.ack.Code, Reason: o.ack.Message}))
				}
				return st, nil
			}
			n.disputes.put(dc)
			if o.err != nil {
				// Applied once acknowledged, as an action is: until then
				// the counterparty's actions may come first.
				dc.pending, dc.unapplied = req, next != nil
				return nil, errUndelivered("the dispute is recorded but the counterparty did not acknowledge it yet; it will be resent")
			}
			if next != nil {
				n.applyLocked(c, act, next, o)
			}
			o.publish(disputeEvent(dc, "filed"), c.local.id.String())
			return nil, nil
		}})
	return k.ID, err
}

// stepLocked signs and drives a step of our agent in dc.
// REQUIRES: dc.c.mu.
func (n *Node) stepLocked(ctx context.Context, dc *dcase, kind protocol.StepKind, remedy, reason string) error {
	c := dc.c
	if dc.pending != nil {
		return errorf(codePending, "the previous step in %s is not yet acknowledged by the counterparty; it is being resent", dc.id)
	}
	now := n.now()
	s := &protocol.DisputeStep{DisputeID: dc.id, CommitmentID: c.id, Kind: kind, By: c.local.id.String(),
		Remedy: remedy, Reason: reason, Time: now}
	if s.Time.Before(dc.k.Updated) {
		s.Time = dc.k.Updated
	}
	if kind == protocol.StepAccept {
		s.Reference = dc.k.Table[:]
	}
	if err := s.Sign(c.local.key, c.local.cert); err != nil {
		return err
	}
	rules := n.disputeRules()
	cur, _ := dc.k.Tick(now, rules.Windows)
	k, err := cur.Step(s, now, rules)
	if err != nil {
		return err
	}
	raw, err := protocol.EncodeDisputeStep(s)
	if err != nil {
		return err
	}
	req := &wireReq{Type: wireDispute, Step: raw}
	var half *protocol.Action
	if k.State == protocol.DisputeResolved && c.pc.State == protocol.CommitmentDisputed {
		// The resolve action, signed by us; the counterparty's node
		// countersigns it for the agent whose remedy we accept.
		half = &protocol.Action{CommitmentID: c.id, Kind: protocol.ActionResolve, Actor: s.By, Time: s.Time,
			Outcome: protocol.CommitmentResolved, Reason: "remedy accepted in " + dc.id}
		if err := half.Sign(c.local.key, c.local.cert); err != nil {
			return err
		}
		if req.Action, err = protocol.EncodeAction(half); err != nil {
			return err
		}
	}
	rec := ledger.DisputeRecord(s.Time, c.session, c.id, ledger.DisputeRecordBody{Step: raw})
	return n.drive(ctx, &step{what: "dispute step", records: []ledger.Record{rec}, to: c.remote.Org, send: req, sending: &c.sending,
		settle: func(o *outcome) (*step, error) {
			if o.refused() {
				return n.refusedStep(c.session, c.id, recordID("dispute-step", raw), o.ack, nil), nil
			}
			dc.k, dc.steps = k, append(dc.steps, raw)
			o.publish(disputeEvent(dc, string(kind)), c.local.id.String())
			if o.err != nil {
				dc.pending = req
				return nil, errUndelivered("the step is recorded but the counterparty did not acknowledge it yet; it will be resent")
			}
			if half != nil {
				return n.resolvedStep(c, half, o.ack.Cosigned), nil
			}
			return nil, nil
		}})
}

// resolvedStep records and applies the resolve action the counterparty
// countersigned (cosigned), if it is ours with its signature added.
// REQUIRES: c.mu.
func (n *Node) resolvedStep(c *commitment, half *protocol.Action, cosigned []byte) *step {
	a, err := protocol.DecodeAction(cosigned)
	if err == nil {
		var want, got [32]byte
		if want, err = half.Digest(); err == nil {
			if got, err = a.Digest(); err == nil && got != want {
				err = fmt.Errorf("%w: the countersigned resolve action is not ours", protocol.ErrMalformed)
			}
		}
	}
	var next *protocol.Commitment
	if err == nil {
		next, err = c.pc.Apply(a)
	}
	if err != nil {
		n.log.Warn("countersigned resolve action refused", "commitment", c.id, "err", err)
		return nil
	}
	rec := ledger.CommitmentUpdateRecord(a.Time, c.session, c.id, ledger.CommitmentUpdate{State: next.State, Action: cosigned})
	return &step{what: "resolve", records: []ledger.Record{rec}, settle: func(o *outcome) (*step, error) {
		n.applyLocked(c, cosigned, next, o)
		return nil, nil
	}}
}

// onDispute receives the counterparty's filing or step.
func (n *Node) onDispute(ctx context.Context, from string, r *wireReq) *wireResp {
	switch {
	case r.Filing != nil && r.Step == nil && r.Ruling == nil:
		return n.onFiling(ctx, from, r.Filing, r.Action)
	case r.Step != nil && r.Filing == nil && r.Ruling == nil:
		return n.onStep(ctx, from, r.Step, r.Action)
	case r.Ruling != nil && r.Filing == nil && r.Step == nil:
		return n.onRuling(ctx, from, r.Ruling, r.Action)
	}
	return refuse(protocol.ErrMalformed, fmt.Errorf("a dispute request carries one filing, one step or one ruling"))
}

func (n *Node) onFiling(ctx context.Context, from string, raw, act []byte) *wireResp {
	d, err := protocol.DecodeDispute(raw)
	if err != nil {
		return refuseErr(err)
	}
	c := n.getCommitment(d.CommitmentID)
	if c == nil {
		return &wireResp{Code: codeNotFound, Message: "no commitment " + d.CommitmentID}
	}
	if d.FiledBy != c.remote.String() || c.remote.Org != from {
		return refuse(protocol.ErrNotParty, fmt.Errorf("%s may not file on %s from node %s", d.FiledBy, c.id, from))
	}
	if err := c.acquireForAction(ctx, c.acceptor); err != nil {
		return refuseErr(err)
	}
	defer c.mu.Unlock()
	if old := n.disputes.get(d.ID()); old != nil && string(old.filing) == string(raw) {
		return &wireResp{} // a resend
	}
	if c.stateLocked() == protocol.CommitmentPending {
		return refuse(protocol.ErrCommitmentState, fmt.Errorf("commitment %s is not ACTIVE here yet", c.id))
	}
	now := n.now()
	k, err := protocol.OpenDispute(c.pc, d, n.priorFilings(c), now, n.disputeRules())
	if err != nil {
		return refuseErr(err)
	}
	recs := []ledger.Record{ledger.DisputeRecord(now, c.session, c.id, ledger.DisputeRecordBody{Filing: raw})}
	var next *protocol.Commitment
	if act != nil && !c.holds(act) {
		a, err := protocol.DecodeAction(act)
		if err != nil {
			return refuseErr(err)
		}
		if a.Kind != protocol.ActionDispute || a.Actor != d.FiledBy {
			return refuse(protocol.ErrMalformed, fmt.Errorf("a filing travels with its filer's dispute action, not a %s by %s", a.Kind, a.Actor))
		}
		if next, err = c.pc.ApplyAt(a, now, 0); err != nil {
			return refuseErr(err)
		}
		recs = append(recs, ledger.CommitmentUpdateRecord(now, c.session, c.id, ledger.CommitmentUpdate{State: next.State, Action: act}))
	} else {
		act = nil
	}
	dc := &dcase{id: k.ID, c: c, k: k, filing: raw}
	err = n.drive(ctx, &step{what: "dispute filing", records: recs, settle: func(o *outcome) (*step, error) {
		n.disputes.put(dc)
		if next != nil {
			n.applyLocked(c, act, next, o)
		}
		o.publish(disputeEvent(dc, "filed"), c.local.id.String())
		return nil, nil
	}})
	if err != nil {
		return refuseErr(err)
	}
	return &wireResp{}
}

func (n *Node) onStep(ctx context.Context, from string, raw, act []byte) *wireResp {
	s, err := protocol.DecodeDisputeStep(raw)
	if err != nil {
		return refuseErr(err)
	}
	dc := n.disputes.get(s.DisputeID)
	if dc == nil {
		return &wireResp{Code: codeNotFound, Message: "no dispute " + s.DisputeID}
	}
	c := dc.c
	if s.By != c.remote.String() || c.remote.Org != from {
		return refuse(protocol.ErrNotParty, fmt.Errorf("%s may not step in %s from node %s", s.By, dc.id, from))
	}
	if err := c.acquireForAction(ctx, c.acceptor); err != nil {
		return refuseErr(err)
	}
	defer c.mu.Unlock()
	for _, x := range dc.steps {
		if string(x) == string(raw) {
			return &wireResp{Cosigned: dc.cosigned} // a resend
		}
	}
	now := n.now()
	rules := n.disputeRules()
	cur, _ := dc.k.Tick(now, rules.Windows)
	k, err := cur.Step(s, now, rules)
	if err != nil {
		return refuseErr(err)
	}
	recs := []ledger.Record{ledger.DisputeRecord(now, c.session, c.id, ledger.DisputeRecordBody{Step: raw})}
	var next *protocol.Commitment
	var cosigned []byte
	if k.State == protocol.DisputeResolved && c.pc.State == protocol.CommitmentDisputed {
		if act == nil {
			return refuse(protocol.ErrMissingSignature, fmt.Errorf("an accepted remedy travels with the accepting party's resolve action"))
		}
		a, err := protocol.DecodeAction(act)
		if err != nil {
			return refuseErr(err)
		}
		if a.Kind != protocol.ActionResolve || a.Actor != s.By || a.Outcome != protocol.CommitmentResolved || len(a.Signatures) != 1 {
			return refuse(protocol.ErrMalformed, fmt.Errorf("want the acceptor's resolve action to RESOLVED, signed once"))
		}
		if err := a.Verify(); err != nil {
			return refuseErr(err)
		}
		// Our agent offered the remedy accepted: the node countersigns
		// the resolution for it.
		if err := a.Sign(c.local.key, c.local.cert); err != nil {
			return refuseErr(err)
		}
		if next, err = c.pc.ApplyAt(a, now, 0); err != nil {
			return refuseErr(err)
		}
		if cosigned, err = protocol.EncodeAction(a); err != nil {
			return refuseErr(err)
		}
		recs = append(recs, ledger.CommitmentUpdateRecord(now, c.session, c.id, ledger.CommitmentUpdate{State: next.State, Action: cosigned}))
	}
	err = n.drive(ctx, &step{what: "dispute step", records: recs, settle: func(o *outcome) (*step, error) {
		dc.k, dc.steps, dc.cosigned = k, append(dc.steps, raw), cosigned
		if next != nil {
			n.applyLocked(c, cosigned, next, o)
		}
		o.publish(disputeEvent(dc, string(s.Kind)), c.local.id.String())
		return nil, nil
	}})
	if err != nil {
		return refuseErr(err)
	}
	return &wireResp{Cosigned: cosigned}
}

// holds reports whether c holds the action raw already.
// REQUIRES: c.mu.
func (c *commitment) holds(raw []byte) bool {
	for _, x := range c.actions {
		if string(x) == string(raw) {
			return true
		}
	}
	return false
}

// resendDisputesLocked resends c's disputes' pending requests.
// REQUIRES: c.mu.
func (n *Node) resendDisputesLocked(ctx context.Context, c *commitment) {
	for _, dc := range n.disputes.of(c.id) {
		req := dc.pending
		if req == nil {
			continue
		}
		var half *protocol.Action
		if req.Action != nil && req.Step != nil {
			half, _ = protocol.DecodeAction(req.Action)
		}
		var next *protocol.Commitment
		if dc.unapplied {
			a, err := protocol.DecodeAction(req.Action)
			if err == nil {
				next, err = c.pc.Apply(a)
			}
			if err != nil {
				// The counterparty's action came first and the dispute
				// action no longer applies: the filing is superseded, as
				// an action is (resendActionLocked).
				n.log.Warn("pending dispute filing no longer applies", "dispute", dc.id, "err", err)
				recs := []ledger.Record{
					ledger.RefusalRecord(n.now(), c.session, c.id, ledger.Refusal{MessageID: recordID("dispute", req.Filing), Code: codeSuperseded, Reason: err.Error()}),
					ledger.RefusalRecord(n.now(), c.session, c.id, ledger.Refusal{MessageID: actionID(req.Action), Code: codeSuperseded, Reason: err.Error()}),
				}
				_ = n.drive(ctx, &step{what: "refusal", records: recs, quiet: true, settle: func(*outcome) (*step, error) {
					n.disputes.drop(dc)
					return nil, nil
				}})
				continue
			}
		}
		err := n.drive(ctx, &step{what: "dispute resend", to: c.remote.Org, send: req, sending: &c.sending, quiet: true,
			settle: func(o *outcome) (*step, error) {
				switch {
				case o.err != nil:
					return nil, nil
				case o.refused() && o.ack.Code == codeBusy:
					return nil, nil
				}
				dc.pending = nil
				if o.refused() {
					n.log.Warn("dispute record refused on resend", "dispute", dc.id, "code", o.ack.Code, "msg", o.ack.Message)
					if req.Step != nil {
						return n.refusedStep(c.session, c.id, recordID("dispute-step", req.Step), o.ack, nil), nil
					}
					n.disputes.drop(dc)
					st := n.refusedStep(c.session, c.id, recordID("dispute", req.Filing), o.ack, nil)
					if req.Action != nil {
						st.records = append(st.records, ledger.RefusalRecord(n.now(), c.session, c.id,
							ledger.Refusal{MessageID: actionID(req.Action), Code: o.ack.Code, Reason: o.ack.Message}))
					}
					return st, nil
				}
				if dc.unapplied {
					dc.unapplied = false
					n.applyLocked(c, req.Action, next, o)
					o.publish(disputeEvent(dc, "filed"), c.local.id.String())
				}
				if half != nil && half.Kind == protocol.ActionResolve && !c.holds(o.ack.Cosigned) {
					return n.resolvedStep(c, half, o.ack.Cosigned), nil
				}
				return nil, nil
			}})
		if err != nil {
			n.log.Debug("resend dispute", "dispute", dc.id, "err", err)
		}
	}
}

// disputeEvent is the dispute SSE event of dc's state after what.
// REQUIRES: dc.c.mu.
func disputeEvent(dc *dcase, what string) api.Event {
	return api.Event{Type: "dispute", Data: map[string]any{
		"disputeId": dc.id, "commitmentId": dc.c.id, "state": dc.k.State, "step": what,
		"filedBy": dc.k.Filer, "against": dc.k.Respondent,
	}}
}
