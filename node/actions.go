package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
)

// Commitment actions (fulfilment claimed, confirmed, disputed) are signed by
// the acting agent, recorded by its node, sent to the counterparty's node,
// which checks them against its own copy of the commitment and records them
// too. Both nodes derive the same state from the same signed actions.

// protocolViewLocked derives the commitment as the protocol sees it: the
// signed offer and acceptance, both receipts, every action applied.
// REQUIRES: c.mu.
func (n *Node) protocolViewLocked(c *commitment) (*protocol.Commitment, error) {
	var receipts []*protocol.Receipt
	for _, raw := range [][]byte{c.ours, c.theirs} {
		if raw == nil {
			continue
		}
		r, err := protocol.DecodeReceipt(raw)
		if err != nil {
			return nil, err
		}
		receipts = append(receipts, r)
	}
	var actions []*protocol.Action
	for _, raw := range c.actions {
		a, err := protocol.DecodeAction(raw)
		if err != nil {
			return nil, err
		}
		actions = append(actions, a)
	}
	return protocol.RebuildCommitment(c.c.Offer, c.c.Acceptance, receipts, actions, c.expiredAt)
}

// expireDue moves ACTIVE commitments past their deadline to EXPIRED. Both
// nodes do so on their own: the deadline is in the signed terms.
func (n *Node) expireDue(ctx context.Context) {
	now := n.now()
	n.sessMu.RLock()
	var due []*commitment
	for _, c := range n.commitments {
		// The deadline is immutable; the state is checked under c.mu below.
		if d := c.c.Deadline(); !d.IsZero() && now.After(d) {
			due = append(due, c)
		}
	}
	n.sessMu.RUnlock()
	for _, c := range due {
		c.mu.Lock()
		if c.state == protocol.CommitmentActive {
			rec := ledger.CommitmentUpdateRecord(now, c.session, c.id, ledger.CommitmentUpdate{State: protocol.CommitmentExpired})
			if _, err := n.led.Append(ctx, rec); err != nil {
				n.log.Error("record expiry", "commitment", c.id, "err", err)
			} else {
				c.expiredAt = now
				c.state = protocol.CommitmentExpired
				c.settled.Store(true)
				c.updated = now
				n.m.commitments.WithLabelValues(string(c.state)).Inc()
				n.publishCommitment(c)
				n.onCommitmentSettled(c)
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
	return "", api.BadRequest("unknown action %q (want fulfill, confirm or dispute)", action)
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
			return api.CommitmentInfo{}, api.BadRequest("body: %v", err)
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
	if c.state == protocol.CommitmentPending {
		return api.CommitmentInfo{}, api.InvalidTransition("commitment %s is not ACTIVE yet: receipts are still being exchanged", id)
	}
	if c.pendingAction != nil {
		return api.CommitmentInfo{}, api.Conflict("pending", "the previous action on %s is not yet acknowledged by the counterparty; it is being resent", id)
	}
	cur, err := n.protocolViewLocked(c)
	if err != nil {
		return api.CommitmentInfo{}, err
	}
	if a.Time.Before(cur.Updated) {
		a.Time = cur.Updated
	}
	if err := a.Sign(c.local.key, c.local.cert); err != nil {
		return api.CommitmentInfo{}, err
	}
	next, err := cur.Apply(a)
	if err != nil {
		return api.CommitmentInfo{}, err
	}
	raw, err := protocol.EncodeAction(a)
	if err != nil {
		return api.CommitmentInfo{}, err
	}
	rec := ledger.CommitmentUpdateRecord(a.Time, c.session, id, ledger.CommitmentUpdate{State: next.State, Action: raw})
	if _, err := n.led.Append(ctx, rec); err != nil {
		return api.CommitmentInfo{}, fmt.Errorf("record action: %w", err)
	}
	c.pendingAction = raw
	if err := n.deliverActionLocked(ctx, c, raw, next.State); err != nil {
		return commitmentInfoLocked(c), err
	}
	return commitmentInfoLocked(c), nil
}

func actionID(raw []byte) string {
	h := sha256.Sum256(raw)
	return "action:" + hex.EncodeToString(h[:16])
}

// deliverActionLocked sends a recorded action and settles it.
// REQUIRES: c.mu.
func (n *Node) deliverActionLocked(ctx context.Context, c *commitment, raw []byte, to protocol.CommitmentState) error {
	resp, err := n.request(ctx, c.remote.Org, &wireReq{Type: wireAction, Action: raw})
	if err != nil {
		n.log.Warn("action delivery failed; will resend", "commitment", c.id, "err", err)
		return api.Errorf(http.StatusGatewayTimeout, api.CodeTimeout,
			"the action is recorded but the counterparty did not acknowledge it yet; it will be resent")
	}
	c.pendingAction = nil
	if resp.Code != "" {
		n.m.refusedOutgoing.WithLabelValues(resp.Code).Inc()
		rec := ledger.RefusalRecord(n.now(), c.session, c.id, ledger.Refusal{MessageID: actionID(raw), Code: resp.Code, Reason: resp.Message})
		if _, err := n.led.Append(ctx, rec); err != nil {
			return err
		}
		return &RemoteRefusal{Code: resp.Code, Message: resp.Message}
	}
	n.setStateLocked(c, raw, to)
	return nil
}

// setStateLocked applies an acknowledged (or received) action.
// REQUIRES: c.mu.
func (n *Node) setStateLocked(c *commitment, raw []byte, to protocol.CommitmentState) {
	c.actions = append(c.actions, raw)
	c.state = to
	c.settled.Store(settledState(to))
	c.updated = n.now()
	n.m.commitments.WithLabelValues(string(to)).Inc()
	n.publishCommitment(c)
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
		return &wireResp{Code: "not_found", Message: "no commitment " + a.CommitmentID}
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
	if c.state == protocol.CommitmentPending {
		return refuse(protocol.ErrCommitmentState, fmt.Errorf("commitment %s is not ACTIVE here yet", c.id))
	}
	cur, err := n.protocolViewLocked(c)
	if err != nil {
		return refuseErr(err)
	}
	next, err := cur.Apply(a)
	if err != nil {
		return refuseErr(err)
	}
	rec := ledger.CommitmentUpdateRecord(n.now(), c.session, c.id, ledger.CommitmentUpdate{State: next.State, Action: raw})
	if _, err := n.led.Append(ctx, rec); err != nil {
		return refuseErr(err)
	}
	n.setStateLocked(c, raw, next.State)
	return &wireResp{}
}
