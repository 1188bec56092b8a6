package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

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
	for _, c := range due {
		c.mu.Lock()
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
	err = n.drive(ctx, &step{what: "action", records: []ledger.Record{rec}, to: c.remote.Org, send: &wireReq{Type: wireAction, Action: raw},
		settle: func(o *outcome) (*step, error) {
			if o.err != nil {
				c.pendingAction = raw
				n.log.Warn("action delivery failed; will resend", "commitment", c.id, "err", o.err)
				return nil, errUndelivered("the action is recorded but the counterparty did not acknowledge it yet; it will be resent")
			}
			c.pendingAction = nil
			if o.refused() {
				return n.refusedStep(c.session, c.id, actionID(raw), o.ack, nil), nil
			}
			n.applyLocked(c, raw, next, o)
			return nil, nil
		}})
	return commitmentInfoLocked(c), err
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
	if a.Actor != c.remote.String() || c.remote.Org != from {
		return refuse(protocol.ErrNotParty, fmt.Errorf("%s may not act on %s from node %s", a.Actor, c.id, from))
	}
	c.mu.Lock()
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
