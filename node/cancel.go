package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
)

// Cancellation by both parties. A cancel action needs both agents'
// signatures (protocol.Commitment.Apply). The first party to ask signs it
// and sends it, signed once, as an offer (wireCancel): nothing is recorded
// (alone it binds nobody) and the counterparty's node holds it in memory
// and publishes it. When the other party asks too, its node adds its
// agent's signature to the offer held and drives the action, now signed by
// both, like any commitment action: recorded, sent, CANCELLED on both
// nodes. An offer lost in a restart is asked again.

// CancelCommitment implements api.DisputeBackend.
func (n *Node) CancelCommitment(ctx context.Context, agent, id string) (api.CommitmentInfo, error) {
	c := n.getCommitment(id)
	if c == nil || c.local.id.String() != agent {
		return api.CommitmentInfo{}, notFound("commitment", id)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pendingAction != nil {
		return n.commitmentInfo(c), errorf(codePending, "the previous action on %s is not yet acknowledged by the counterparty; it is being resent", id)
	}
	if offer := n.disputes.takeCancel(id); offer != nil {
		a, err := protocol.DecodeAction(offer)
		if err == nil {
			if err = a.Sign(c.local.key, c.local.cert); err == nil {
				var next *protocol.Commitment
				if next, err = c.pc.ApplyAt(a, n.now(), 0); err == nil {
					var raw []byte
					if raw, err = protocol.EncodeAction(a); err == nil {
						st := n.actionStep(c, raw, next, false)
						st.records = []ledger.Record{ledger.CommitmentUpdateRecord(n.now(), c.session, id, ledger.CommitmentUpdate{State: next.State, Action: raw})}
						err = n.drive(ctx, st)
						return n.commitmentInfo(c), err
					}
				}
			}
		}
		n.log.Info("cancellation offer no longer applies; offering ours", "commitment", id, "err", err)
	}
	a := &protocol.Action{CommitmentID: id, Kind: protocol.ActionCancel, Actor: agent, Time: n.now()}
	if a.Time.Before(c.pc.Updated) {
		a.Time = c.pc.Updated
	}
	if err := a.Sign(c.local.key, c.local.cert); err != nil {
		return api.CommitmentInfo{}, err
	}
	if _, err := c.pc.Apply(a); !errors.Is(err, protocol.ErrMissingSignature) {
		if err == nil {
			err = fmt.Errorf("%w: a cancellation signed once applied", protocol.ErrMalformed)
		}
		return n.commitmentInfo(c), err
	}
	raw, err := protocol.EncodeAction(a)
	if err != nil {
		return api.CommitmentInfo{}, err
	}
	err = n.drive(ctx, &step{what: "cancel offer", to: c.remote.Org, send: &wireReq{Type: wireCancel, Action: raw}, sending: &c.sending,
		settle: func(o *outcome) (*step, error) {
			switch {
			case o.err != nil:
				return nil, errUndelivered("the counterparty did not acknowledge the cancellation offer; ask again")
			case o.refused():
				return nil, &RemoteRefusal{Code: o.ack.Code, Message: o.ack.Message}
			}
			return nil, nil
		}})
	return n.commitmentInfo(c), err
}

// onCancel receives the counterparty's cancellation offer, signed by its
// agent alone: checked (its signature, its time against our clock, and
// that the cancellation would apply with our agent's signature added),
// then held and published.
func (n *Node) onCancel(ctx context.Context, from string, raw []byte) *wireResp {
	a, err := protocol.DecodeAction(raw)
	if err != nil {
		return refuseErr(err)
	}
	c := n.getCommitment(a.CommitmentID)
	if c == nil {
		return &wireResp{Code: codeNotFound, Message: "no commitment " + a.CommitmentID}
	}
	if a.Kind != protocol.ActionCancel || a.Actor != c.remote.String() || c.remote.Org != from || len(a.Signatures) != 1 {
		return refuse(protocol.ErrNotParty, fmt.Errorf("want a cancellation offer by %s from its node", c.remote))
	}
	if err := a.Verify(); err != nil {
		return refuseErr(err)
	}
	if err := c.acquireForAction(ctx, c.acceptor); err != nil {
		return refuseErr(err)
	}
	defer c.mu.Unlock()
	both, _ := protocol.DecodeAction(raw)
	if err := both.Sign(c.local.key, c.local.cert); err != nil {
		return refuseErr(err)
	}
	if _, err := c.pc.ApplyAt(both, n.now(), 0); err != nil {
		return refuseErr(err)
	}
	n.disputes.holdCancel(c.id, raw)
	err = n.drive(ctx, &step{what: "cancel offer", settle: func(o *outcome) (*step, error) {
		o.publish(api.Event{Type: "commitment", Data: map[string]any{
			"commitmentId": c.id, "state": c.stateLocked(), "sessionId": c.session, "cancelRequestedBy": a.Actor,
		}}, c.local.id.String())
		return nil, nil
	}})
	if err != nil {
		return refuseErr(err)
	}
	return &wireResp{}
}

func (b *disputeBook) holdCancel(id string, raw []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cancels == nil {
		b.cancels = map[string][]byte{}
	}
	b.cancels[id] = raw
}

func (b *disputeBook) takeCancel(id string) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	raw := b.cancels[id]
	delete(b.cancels, id)
	return raw
}
