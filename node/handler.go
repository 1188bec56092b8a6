package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/aspnode/asp/protocol"
	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p/core/peer"
)

// handleWire serves the session protocol: requests from other nodes. Bad
// input is refused with a typed code, counted, and changes nothing.
func (n *Node) handleWire(ctx context.Context, from peer.ID, req []byte) ([]byte, error) {
	r, err := decodeWireReq(req)
	var resp *wireResp
	switch {
	case n.denied(from.String()):
		// Revoked while a connection was open.
		resp = &wireResp{Code: protocol.CodePolicyViolation, Message: "this organisation no longer deals with yours"}
	case err != nil:
		resp = refuse(protocol.ErrMalformed, err)
	default:
		switch r.Type {
		case wireEnvelope:
			resp = n.onEnvelope(ctx, from.String(), r.Envelope)
		case wireReceipt:
			resp = n.onReceipt(ctx, from.String(), r.Receipt, r.KeyCert)
		case wireAction:
			resp = n.onAction(ctx, from.String(), r.Action)
		case wireHead:
			resp = n.onHead(from.String(), r)
		case wireDispute:
			resp = n.onDispute(ctx, from.String(), r)
		case wireCancel:
			resp = n.onCancel(ctx, from.String(), r.Action)
		default:
			resp = &wireResp{Code: protocol.CodeBadRequest, Message: fmt.Sprintf("unknown request type %d", r.Type)}
		}
	}
	if resp.Code != "" {
		n.m.refusedIncoming.WithLabelValues(resp.Code).Inc()
		n.log.Debug("refused request", "peer", from, "code", resp.Code, "msg", resp.Message)
	}
	return cbor.Marshal(resp)
}

// refuse turns an error into a refusal. Only the error's text and code are
// sent; they name nothing private.
func refuse(code error, err error) *wireResp {
	c := protocol.ErrorCode(code)
	if err == nil {
		err = code
	}
	return &wireResp{Code: c, Message: err.Error()}
}

// refuseErr turns an error of the engine into a refusal with its code
// (codeOf: the node's own, or protocol's table); a counterparty's refusal
// passed on keeps its code and message.
func refuseErr(err error) *wireResp {
	var rr *RemoteRefusal
	if errors.As(err, &rr) {
		return &wireResp{Code: rr.Code, Message: rr.Message}
	}
	return &wireResp{Code: codeOf(err), Message: err.Error()}
}

// onEnvelope receives a session envelope from the node of its sender.
func (n *Node) onEnvelope(ctx context.Context, from string, raw []byte) *wireResp {
	env, err := protocol.DecodeEnvelope(raw)
	if err != nil {
		return refuseErr(err)
	}
	sender, err := protocol.ParseAgentID(env.Sender)
	if err != nil {
		return refuseErr(err)
	}
	if sender.Org != from {
		return refuse(protocol.ErrNotParty, fmt.Errorf("node %s may not speak for %s", from, env.Sender))
	}
	la := n.localAgent(env.Recipient)
	if la == nil {
		return &wireResp{Code: codeNotFound, Message: "no agent " + env.Recipient + " here"}
	}
	s := n.getSession(env.SessionID)
	if s == nil {
		if !isInvitation(env) {
			return &wireResp{Code: codeNotFound, Message: "no session " + env.SessionID}
		}
		now := n.now()
		s, err = n.admitInbound(&session{
			id:      env.SessionID,
			lock:    make(chan struct{}, 1),
			local:   la,
			remote:  sender,
			ps:      protocol.NewSession(n.pcfg, env.SessionID, sender, la.id, now),
			created: now,
			updated: now,
		})
		if err != nil {
			return refuseErr(err)
		}
	}
	if s.remote != sender || s.local != la {
		return refuse(protocol.ErrNotParty, fmt.Errorf("%s is not a party to session %s", env.Sender, env.SessionID))
	}
	// A resent envelope we already hold is answered as the first time,
	// before the session lock is asked for: a move of ours in flight must
	// not turn the answer into "busy" (the sender would take it for a
	// refusal of a move we hold).
	if v := s.snapshot(); v.find(env.MessageID) >= 0 && !(isInvitation(env) && len(v.tr) == 1) {
		return n.dupAck(ctx, s, v, env)
	}
	if err := s.acquire(ctx, true, !s.initiator); err != nil {
		return refuseErr(err)
	}
	defer s.release()
	if hasMessage(s.ps, env.MessageID) {
		resp := n.dupAck(ctx, s, s.snapshot(), env)
		if resp.Code == "" && isInvitation(env) && s.ps.Len() == 1 && s.ps.State() == protocol.StateInvited && s.ended == "" {
			// Held but never answered (a crash came between the two
			// writes): answered now, as the first time would have been.
			resp.Reply = n.consentReplyLocked(ctx, s, env)
		}
		return resp
	}
	if s.ended != "" {
		// Ended carries the reason: a counterparty that missed our head
		// request ends its side now.
		resp := refuse(protocol.ErrInvalidTransition, fmt.Errorf("session %s has ended: %s", s.id, s.ended))
		resp.Ended = s.ended
		return resp
	}
	if p := s.pending; p != nil && env.Integrity.PreviousHash == p.Hash() {
		// The counterparty's move follows our pending one: it holds it.
		// Its acknowledgement (and receipt) is fetched first.
		n.resendLocked(ctx, s, p)
	}
	c, err := n.receiveLocked(ctx, s, env, raw)
	if err != nil {
		n.dropIfEmpty(s)
		if divergentErr(err) && s.ps.Len() > 0 {
			n.reconcileSoon(s)
		}
		return refuseErr(err)
	}
	resp := &wireResp{}
	if c != nil {
		resp.Receipt, resp.KeyCert = c.ours, n.keyCert
	}
	if isInvitation(env) {
		n.bus.publish(sessionEvent(s), la.id.String())
		if reply := n.consentReplyLocked(ctx, s, env); reply != nil {
			resp.Reply = reply
		}
	}
	return resp
}

// dropIfEmpty forgets a session whose invitation was refused.
func (n *Node) dropIfEmpty(s *session) {
	if len(s.ps.Transcript()) > 0 {
		return
	}
	n.sessions.drop(s)
}

// dupAck answers a resent envelope we already hold: the same answer as the
// first time. v is a view of s that holds it; s.lock is not needed.
func (n *Node) dupAck(ctx context.Context, s *session, v *sessionView, env *protocol.Envelope) *wireResp {
	resp := &wireResp{}
	tr := v.tr
	for i, e := range tr {
		if e.MessageID != env.MessageID {
			continue
		}
		if e.Hash() != env.Hash() {
			return refuse(protocol.ErrReplay, fmt.Errorf("message %s differs from the one recorded", env.MessageID))
		}
		if !bytes.Equal(e.Integrity.Signature, env.Integrity.Signature) {
			return refuse(protocol.ErrBadSignature, fmt.Errorf("message %s: signature differs from the one recorded", env.MessageID))
		}
		if isInvitation(env) && i+1 < len(tr) && tr[i+1].Sender == s.local.id.String() {
			if b, err := protocol.EncodeEnvelope(tr[i+1]); err == nil {
				resp.Reply = b
			}
		}
	}
	// The commitment this envelope formed, if it was an acceptance: found
	// among the session's own commitments, not by scanning the node's.
	for _, pc := range v.cs {
		if pc.Acceptance.MessageID != env.MessageID {
			continue
		}
		if c := n.getCommitment(pc.ID); c != nil {
			if err := n.ensureOurReceipt(ctx, c); err != nil {
				return refuseErr(err)
			}
			resp.Receipt, resp.KeyCert = c.ours, n.keyCert
		}
	}
	return resp
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
