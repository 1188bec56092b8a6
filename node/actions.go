package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
)

// Commitment actions (fulfilment claimed, confirmed, disputed) are signed by
// the acting agent, recorded by its node, sent to the counterparty's node,
// which checks them against its own copy of the commitment and records them
// too. Both nodes derive the same state from the same signed actions.

// expireDue moves ACTIVE commitments past their deadline to EXPIRED. Both
// nodes do so on their own: the deadline is in the signed terms.
func (n *Node) expireDue(ctx context.Context) {
	now := n.now()
	// The deadline is immutable; the state is checked under c.mu below.
	due := n.commitments.list(func(c *commitment) bool { return !c.deadline.IsZero() && now.After(c.deadline) })
	sort.Slice(due, func(i, j int) bool { return due[i].id < due[j].id })
	for _, c := range due {
		// A commitment whose action is in flight is left to the next
		// tick: a counterparty slow to answer must not hold up the
		// deadlines of others.
		if !c.mu.TryLock() {
			continue
		}
		if c.stateLocked() == protocol.CommitmentActive {
			if next, ok := c.pc.Expire(now); ok {
				rec := ledger.CommitmentUpdateRecord(now, c.session, c.id, ledger.CommitmentUpdate{State: protocol.CommitmentExpired})
				err := n.drive(ctx, &step{what: "expiry", records: []ledger.Record{rec}, settle: func(o *outcome) (*step, error) {
					n.applyLocked(c, nil, next, o)
					return nil, nil
				}})
				if err != nil {
					n.log.Error("record expiry", "commitment", c.id, "err", err)
				}
			}
		}
		c.mu.Unlock()
	}
}

func actionKind(action string) (protocol.ActionKind, error) {
	switch action {
	case "fulfill":
		return protocol.ActionClaim, nil
	case "confirm":
		return protocol.ActionConfirm, nil
	case "dispute":
		return protocol.ActionDispute, nil
	}
	return "", badRequest("unknown action %q (want fulfill, confirm or dispute)", action)
}

// CommitmentAction implements api.Backend.
func (n *Node) CommitmentAction(ctx context.Context, agent, id, action string, body json.RawMessage) (api.CommitmentInfo, error) {
	c := n.getCommitment(id)
	if c == nil || c.local.id.String() != agent {
		return api.CommitmentInfo{}, notFound("commitment", id)
	}
	kind, err := actionKind(action)
	if err != nil {
		return api.CommitmentInfo{}, err
	}
	a := &protocol.Action{CommitmentID: id, Kind: kind, Actor: agent, Time: n.now()}
	if len(body) > 0 {
		var req struct {
			Evidence json.RawMessage `json:"evidence"`
			Note     string          `json:"note"`
			Reason   string          `json:"reason"`
			Severity string          `json:"severity"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return api.CommitmentInfo{}, badRequest("body: %v", err)
		}
		a.Reason = req.Reason
		if a.Reason == "" {
			a.Reason = req.Note
		}
		a.Severity = req.Severity
		if len(req.Evidence) > 0 {
			a.Evidence = req.Evidence
		}
	}
	if kind == protocol.ActionDispute && a.Severity == "" {
		a.Severity = "medium"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if kind == protocol.ActionDispute {
		// A dispute is a filing (disputes.go), with its dispute action.
		err := n.fileLegacyLocked(ctx, c, a.Reason, a.Severity, a.Evidence)
		return n.commitmentInfo(c), err
	}
	if c.stateLocked() == protocol.CommitmentPending {
		return api.CommitmentInfo{}, invalidTransition("commitment %s is not ACTIVE yet: receipts are still being exchanged", id)
	}
	if c.pendingAction != nil {
		return api.CommitmentInfo{}, errorf(codePending, "the previous action on %s is not yet acknowledged by the counterparty; it is being resent", id)
	}
	if a.Time.Before(c.pc.Updated) {
		a.Time = c.pc.Updated
	}
	if err := a.Sign(c.local.key, c.local.cert); err != nil {
		return api.CommitmentInfo{}, err
	}
	next, err := c.pc.Apply(a)
	if err != nil {
		return api.CommitmentInfo{}, err
	}
	raw, err := protocol.EncodeAction(a)
	if err != nil {
		return api.CommitmentInfo{}, err
	}
	rec := ledger.CommitmentUpdateRecord(a.Time, c.session, id, ledger.CommitmentUpdate{State: next.State, Action: raw})
	st := n.actionStep(c, raw, next, false)
	st.records = []ledger.Record{rec}
	err = n.drive(ctx, st)
	return commitmentInfoLocked(c), err
}

// actionStep sends an action of ours, recorded, and settles it: applied
// once acknowledged (next; nil when it is applied already), pending
// (resent) when unanswered, recorded as refused when refused (and taken
// out if it was applied). resend says the counterparty may hold it
// already: a busy answer then means "later".
// REQUIRES: c.mu.
func (n *Node) actionStep(c *commitment, raw []byte, next *protocol.Commitment, resend bool) *step {
	return &step{what: "action", to: c.remote.Org, send: &wireReq{Type: wireAction, Action: raw}, sending: &c.sending,
		settle: func(o *outcome) (*step, error) {
			if o.err != nil {
				c.pendingAction, c.pendingApplied = raw, next == nil
				n.log.Warn("action delivery failed; will resend", "commitment", c.id, "err", o.err)
				return nil, errUndelivered("the action is recorded but the counterparty did not acknowledge it yet; it will be resent")
			}
			if o.ack.Code == codeBusy && resend {
				c.pendingAction, c.pendingApplied = raw, next == nil
				return nil, errorf(codePending, "the counterparty is acting on %s; the action is recorded and will be resent", c.id)
			}
			c.pendingAction, c.pendingApplied = nil, false
			if o.refused() {
				if next == nil {
					n.withdrawLocked(c, raw, o)
				}
				return n.refusedStep(c.session, c.id, actionID(raw), o.ack, func(context.Context) error {
					if o.ack.Code == codeBusy {
						return errorf(protocol.CodeConflict, "the counterparty acted on %s at the same time; read the commitment and retry", c.id)
					}
					return nil
				}), nil
			}
			if next != nil {
				n.applyLocked(c, raw, next, o)
			}
			return nil, nil
		}}
}

// withdrawLocked takes an applied action of ours out of c: the
// counterparty refused it (it never held it). c is derived again from its
// signed facts without it.
// REQUIRES: c.mu.
func (n *Node) withdrawLocked(c *commitment, raw []byte, o *outcome) {
	var kept [][]byte
	for _, x := range c.actions {
		if string(x) != string(raw) {
			kept = append(kept, x)
		}
	}
	formed, err := protocol.RebuildCommitment(c.pc.Offer, c.pc.Acceptance, nil, nil, time.Time{})
	if err == nil {
		was := c.actions
		c.actions = kept
		var pc *protocol.Commitment
		if pc, err = n.replayCommitment(formed, c, c.pc.ExpiredAt); err != nil {
			c.actions = was
		} else {
			installCommitment(c, pc)
			c.updated = n.now()
			o.publish(commitmentEvent(c), c.local.id.String())
			return
		}
	}
	n.log.Error("refused action not taken out", "commitment", c.id, "err", err)
}

// resendActionLocked resends our pending action and settles it. One not
// yet applied that no longer applies (the counterparty's action came
// first) is recorded as refused, as a superseded move is.
// REQUIRES: c.mu.
func (n *Node) resendActionLocked(ctx context.Context, c *commitment, raw []byte) {
	var next *protocol.Commitment
	if !c.pendingApplied {
		a, err := protocol.DecodeAction(raw)
		if err == nil {
			next, err = c.pc.Apply(a)
		}
		if err != nil {
			n.log.Warn("pending action no longer applies", "commitment", c.id, "err", err)
			rec := ledger.RefusalRecord(n.now(), c.session, c.id, ledger.Refusal{MessageID: actionID(raw), Code: codeSuperseded, Reason: err.Error()})
			_ = n.drive(ctx, &step{what: "refusal", records: []ledger.Record{rec}, settle: func(*outcome) (*step, error) {
				c.pendingAction = nil
				return nil, nil
			}})
			return
		}
	}
	if err := n.drive(ctx, n.actionStep(c, raw, next, true)); err != nil {
		n.log.Debug("resend action", "commitment", c.id, "err", err)
	}
}

func actionID(raw []byte) string {
	h := sha256.Sum256(raw)
	return "action:" + hex.EncodeToString(h[:16])
}

// refusedStep records the counterparty's refusal of a move or an action
// of ours (named by id) and reports it; then (when set) runs after, which
// may replace the error reported.
func (n *Node) refusedStep(session, commitment, id string, ack *wireResp, after func(ctx context.Context) error) *step {
	n.m.refusedOutgoing.WithLabelValues(ack.Code).Inc()
	rec := ledger.RefusalRecord(n.now(), session, commitment, ledger.Refusal{MessageID: id, Code: ack.Code, Reason: ack.Message})
	return &step{what: "refusal", records: []ledger.Record{rec}, settle: func(o *outcome) (*step, error) {
		if after != nil {
			if err := after(o.ctx); err != nil {
				return nil, err
			}
		}
		return nil, &RemoteRefusal{Code: ack.Code, Message: ack.Message}
	}}
}

// applyLocked installs an acknowledged or received action (raw), or an
// expiry (raw nil): next is the commitment after it.
// REQUIRES: c.mu.
func (n *Node) applyLocked(c *commitment, raw []byte, next *protocol.Commitment, o *outcome) {
	if raw != nil {
		c.actions = append(c.actions, raw)
	}
	installCommitment(c, next)
	c.updated = n.now()
	n.m.commitments.WithLabelValues(string(next.State)).Inc()
	o.publish(commitmentEvent(c), c.local.id.String())
	n.onCommitmentSettled(c)
}

// onAction receives the counterparty's signed action.
func (n *Node) onAction(ctx context.Context, from string, raw []byte) *wireResp {
	a, err := protocol.DecodeAction(raw)
	if err != nil {
		return refuseErr(err)
	}
	c := n.getCommitment(a.CommitmentID)
	if c == nil {
		return &wireResp{Code: codeNotFound, Message: "no commitment " + a.CommitmentID}
	}
	// The counterparty's agent acts, or countersigns an action of ours
	// (a cancellation both asked for, cancel.go).
	if (a.Actor != c.remote.String() && !slices.Contains(a.Signers(), c.remote.String())) || c.remote.Org != from {
		return refuse(protocol.ErrNotParty, fmt.Errorf("%s may not act on %s from node %s", a.Actor, c.id, from))
	}
	if err := c.acquireForAction(ctx, c.acceptor); err != nil {
		return refuseErr(err)
	}
	defer c.mu.Unlock()
	for _, x := range c.actions {
		if string(x) == string(raw) {
			return &wireResp{} // a resend
		}
	}
	if c.stateLocked() == protocol.CommitmentPending {
		return refuse(protocol.ErrCommitmentState, fmt.Errorf("commitment %s is not ACTIVE here yet", c.id))
	}
	next, err := c.pc.Apply(a)
	if err != nil {
		return refuseErr(err)
	}
	rec := ledger.CommitmentUpdateRecord(n.now(), c.session, c.id, ledger.CommitmentUpdate{State: next.State, Action: raw})
	err = n.drive(ctx, &step{what: "action", records: []ledger.Record{rec}, settle: func(o *outcome) (*step, error) {
		n.applyLocked(c, raw, next, o)
		return nil, nil
	}})
	if err != nil {
		return refuseErr(err)
	}
	return &wireResp{}
}
