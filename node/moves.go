package node

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
)

// Session steps: the moves of a session as the driver carries them out
// (drive.go). A move is applied to the session's state machine only once
// the counterparty has acknowledged it (ours) or once it is durable in our
// ledger (theirs), so both sides always hold the same transcript.

// moveLocked makes one outgoing move: check it on a copy of the state
// machine, record it, send it, and apply it once the counterparty
// acknowledges. It returns the commitment the move formed, if any.
// REQUIRES: s.lock.
func (n *Node) moveLocked(ctx context.Context, s *session, env *protocol.Envelope) (*commitment, error) {
	next := s.ps.Clone()
	eff, err := next.Step(env, n.now())
	if err != nil {
		return nil, err
	}
	raw, err := protocol.EncodeEnvelope(env)
	if err != nil {
		return nil, err
	}
	var c *commitment
	st := n.deliverStep(s, env, raw, next, eff, false, &c)
	st.records = []ledger.Record{ledger.EnvelopeRecord(ledger.KindMessageSent, env, raw)}
	err = n.drive(ctx, st)
	n.exchangeReceipts(ctx, c)
	return c, err
}

// exchangeReceipts completes the receipt exchange of a commitment our
// ACCEPT formed: our receipt goes last, and its acknowledgement makes the
// commitment ACTIVE.
func (n *Node) exchangeReceipts(ctx context.Context, c *commitment) {
	if c == nil || !c.acceptor {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.theirs != nil && !c.activated {
		n.sendReceiptLocked(ctx, c)
	}
}

// deliverStep sends a recorded move and settles it: next and eff are the
// session and effects the move leads to. resend says the move may have
// reached the counterparty before: a "busy" answer then means "later" (the
// move stays pending), never a refusal, since the peer may hold it. The
// commitment the move formed, if any, is stored in *formedBy.
// REQUIRES: s.lock.
func (n *Node) deliverStep(s *session, env *protocol.Envelope, raw []byte, next *protocol.Session, eff protocol.Effects, resend bool, formedBy **commitment) *step {
	return &step{what: "message", to: s.remote.Org, send: &wireReq{Type: wireEnvelope, Envelope: raw}, sending: &s.sending,
		settle: func(o *outcome) (*step, error) {
			if o.err != nil {
				s.pending = env
				n.log.Warn("delivery failed; will resend", "session", s.id, "message", env.MessageID, "err", o.err)
				return nil, errUndelivered("message %s is recorded but the counterparty did not acknowledge it yet; it will be resent", env.MessageID)
			}
			resp := o.ack
			if resp.Code == codeBusy && resend {
				// The counterparty did not look at it now; it may hold it
				// from an earlier delivery. It stays pending and is resent.
				s.pending = env
				return nil, errorf(codePending, "the counterparty is moving in this session; message %s is recorded and will be resent", env.MessageID)
			}
			s.pending = nil
			if resp.Code != "" {
				if s.ps.Len() == 0 {
					// The invitation itself was refused: the session never
					// began, and reads FAILED with the counterparty's reason
					// (recovery leaves it out).
					s.ended = fmt.Sprintf("the counterparty refused the invitation: %s: %s", resp.Code, resp.Message)
					s.publishView()
				}
				return n.refusedStep(s.id, "", env.MessageID, resp, func(ctx context.Context) error {
					if resp.Code == codeBusy {
						return errorf(protocol.CodeConflict, "the counterparty moved in this session at the same time; read the session and retry")
					}
					if resp.Ended != "" {
						n.endLocked(ctx, s, "the counterparty ended the session: "+resp.Ended, false)
					} else if divergent(resp.Code) {
						// The counterparty's transcript differs from ours:
						// converge before the agent moves again.
						n.reconcileLocked(ctx, s)
					}
					return nil
				}), nil
			}
			n.m.moveSeconds.Observe(o.rtt.Seconds())
			n.m.messagesSent.Inc()
			installSession(s, next)
			s.updated = n.now()
			n.publishMessage(o, s, env)
			if eff.Commitment != nil {
				f, recs, err := n.formCommitment(s, eff.Commitment, resp.Receipt, resp.KeyCert, true, nil)
				if err != nil {
					return nil, err
				}
				return &step{what: "commitment", records: recs, settle: func(o *outcome) (*step, error) {
					*formedBy = n.installFormed(f, o)
					return nil, nil
				}}, nil
			}
			if len(resp.Reply) > 0 {
				// The counterparty's answer to our invitation, sent back
				// with its acknowledgement.
				st, err := n.replyStep(s, resp.Reply)
				if err != nil {
					n.log.Warn("counterparty reply refused", "session", s.id, "err", err)
					return nil, nil
				}
				return st, nil
			}
			return nil, nil
		}}
}

// replyStep is the step of an envelope the counterparty sent back in its
// acknowledgement. Its errors are logged: our move stands.
// REQUIRES: s.lock.
func (n *Node) replyStep(s *session, raw []byte) (*step, error) {
	env, err := protocol.DecodeEnvelope(raw)
	if err != nil {
		return nil, err
	}
	if env.Sender != s.remote.String() {
		return nil, fmt.Errorf("reply from %s, want %s", env.Sender, s.remote)
	}
	st, err := n.receiveStep(s, env, raw, nil)
	if err != nil {
		return nil, err
	}
	st.quiet = true
	return st, nil
}

// receiveLocked verifies and records an incoming envelope, then applies it.
// It returns the commitment the envelope formed, if any.
// REQUIRES: s.lock.
func (n *Node) receiveLocked(ctx context.Context, s *session, env *protocol.Envelope, raw []byte) (*commitment, error) {
	var c *commitment
	st, err := n.receiveStep(s, env, raw, &c)
	if err != nil {
		return nil, err
	}
	return c, n.drive(ctx, st)
}

// receiveStep is the step of the counterparty's move: recorded (with the
// commitment it forms, and the refusal of a pending move of ours it
// supersedes, in the same write), then applied. formedBy, if set, gets the
// commitment formed.
// REQUIRES: s.lock.
func (n *Node) receiveStep(s *session, env *protocol.Envelope, raw []byte, formedBy **commitment) (*step, error) {
	next := s.ps.Clone()
	eff, err := next.Step(env, n.now())
	if err != nil {
		return nil, err
	}
	recs := []ledger.Record{ledger.EnvelopeRecord(ledger.KindMessageReceived, env, raw)}
	if p := s.pending; p != nil {
		// The counterparty moved on from the head our pending move
		// follows: it does not hold that move and never will. The move
		// is recorded as refused in the same write.
		ref := ledger.Refusal{MessageID: p.MessageID, Code: codeSuperseded, Reason: "the counterparty moved first: " + env.MessageID}
		recs = append([]ledger.Record{ledger.RefusalRecord(n.now(), s.id, "", ref)}, recs...)
	}
	var f *formed
	if eff.Commitment != nil {
		// The message and the commitment it forms are recorded together.
		if f, recs, err = n.formCommitment(s, eff.Commitment, nil, nil, false, recs); err != nil {
			return nil, err
		}
	}
	return &step{what: "message", records: recs, settle: func(o *outcome) (*step, error) {
		if f != nil {
			c := n.installFormed(f, o)
			if formedBy != nil {
				*formedBy = c
			}
		}
		n.m.messagesReceived.Inc()
		s.pending = nil
		installSession(s, next)
		s.updated = n.now()
		n.publishMessage(o, s, env)
		return nil, nil
	}}, nil
}

// consentReplyLocked answers an invitation under the organisation's consent
// policy: accept, decline, or leave it to the agent (ask). The answer is
// recorded and applied; it goes back with the acknowledgement.
// REQUIRES: s.lock.
func (n *Node) consentReplyLocked(ctx context.Context, s *session, inv *protocol.Envelope) []byte {
	var p protocol.Performative
	var body protocol.Body
	pol := n.consentPolicy()
	switch {
	case n.equivocated(s.remote.Org):
		p, body = protocol.Reject, &protocol.RejectBody{ReferenceID: inv.MessageID, Code: protocol.CodeEquivocation,
			Reason: "this node holds a verified proof that your organisation's ledger signed two histories"}
	case pol.MinTrust > 0 && n.trustScore(s.remote.String()) < pol.MinTrust:
		p, body = protocol.Reject, &protocol.RejectBody{ReferenceID: inv.MessageID, Code: "insufficient_trust_score",
			Reason: fmt.Sprintf("invitations are accepted from agents with a trust score of at least %g", pol.MinTrust)}
	case pol.Consent == ConsentAsk:
		return nil
	case pol.Consent == ConsentAllowList && !contains(pol.Allow, s.remote.Org):
		p, body = protocol.Reject, &protocol.RejectBody{ReferenceID: inv.MessageID, Code: "policy_violation", Reason: "invitations are accepted from allowed organisations only"}
	default:
		p, body = protocol.Accept, &protocol.AcceptBody{ReferenceID: inv.MessageID}
	}
	env, err := n.prepare(s, p, body, n.now())
	if err != nil {
		n.log.Error("consent reply", "session", s.id, "err", err)
		return nil
	}
	raw, err := protocol.EncodeEnvelope(env)
	if err != nil {
		return nil
	}
	next := s.ps.Clone()
	if _, err := next.Step(env, n.now()); err != nil {
		n.log.Error("consent reply", "session", s.id, "err", err)
		return nil
	}
	err = n.drive(ctx, &step{what: "consent reply", records: []ledger.Record{ledger.EnvelopeRecord(ledger.KindMessageSent, env, raw)},
		settle: func(o *outcome) (*step, error) {
			installSession(s, next)
			n.publishMessage(o, s, env)
			return nil, nil
		}})
	if err != nil {
		n.log.Error("consent reply", "session", s.id, "err", err)
		return nil
	}
	return raw
}

// supersedeLocked records our pending move as refused (superseded, with
// why) and forgets it: it is never resent.
// REQUIRES: s.lock.
func (n *Node) supersedeLocked(ctx context.Context, s *session, why string) error {
	p := s.pending
	if p == nil {
		return nil
	}
	rec := ledger.RefusalRecord(n.now(), s.id, "", ledger.Refusal{MessageID: p.MessageID, Code: codeSuperseded, Reason: why})
	return n.drive(ctx, &step{what: "refusal", records: []ledger.Record{rec}, settle: func(*outcome) (*step, error) {
		s.pending = nil
		return nil, nil
	}})
}

// resendLocked resends a pending move and settles it.
// REQUIRES: s.lock.
func (n *Node) resendLocked(ctx context.Context, s *session, env *protocol.Envelope) {
	raw, err := protocol.EncodeEnvelope(env)
	if err != nil {
		return
	}
	next := s.ps.Clone()
	eff, err := next.Step(env, env.Timestamp)
	if err != nil {
		// The session moved past it: the counterparty cannot hold it.
		n.log.Warn("pending move no longer applies", "session", s.id, "err", err)
		rec := ledger.RefusalRecord(n.now(), s.id, "", ledger.Refusal{MessageID: env.MessageID, Code: codeSuperseded, Reason: err.Error()})
		_ = n.drive(ctx, &step{what: "refusal", records: []ledger.Record{rec}, settle: func(*outcome) (*step, error) {
			s.pending = nil
			return nil, nil
		}})
		return
	}
	if _, err := n.resendMoveLocked(ctx, s, env, raw, next, eff); err != nil {
		n.log.Debug("resend", "session", s.id, "err", err)
	}
}

// resendMoveLocked delivers a move already recorded (pending, or adopted
// back by reconciliation) and settles it.
// REQUIRES: s.lock.
func (n *Node) resendMoveLocked(ctx context.Context, s *session, env *protocol.Envelope, raw []byte, next *protocol.Session, eff protocol.Effects) (*commitment, error) {
	var c *commitment
	err := n.drive(ctx, n.deliverStep(s, env, raw, next, eff, true, &c))
	n.exchangeReceipts(ctx, c)
	return c, err
}

// endLocked ends s: its transcripts here and at the counterparty cannot
// converge. The end is recorded; the session reads FAILED with the reason
// and takes no more moves. tell sends the reason to the counterparty,
// which ends its side too.
// REQUIRES: s.lock.
func (n *Node) endLocked(ctx context.Context, s *session, reason string, tell bool) {
	if s.ended != "" || s.ps.State().Terminal() {
		return
	}
	rec := ledger.ReconciledRecord(n.now(), s.id, ledger.Reconciled{Ended: reason})
	err := n.drive(ctx, &step{what: "session end", records: []ledger.Record{rec}, settle: func(o *outcome) (*step, error) {
		n.log.Warn("session ended", "session", s.id, "reason", reason)
		s.ended, s.pending = reason, nil
		s.updated = n.now()
		s.publishView()
		n.m.sessionsEnded.Inc()
		o.publish(api.Event{Type: "session", Data: map[string]any{
			"sessionId": s.id, "state": protocol.StateFailed, "reason": reason, "from": s.remote.String(),
		}}, s.local.id.String())
		if !tell {
			return nil, nil
		}
		h := s.ps.Head()
		return &step{what: "session end", to: s.remote.Org, quiet: true,
			send: &wireReq{Type: wireHead, Session: s.id, Length: uint64(s.ps.Len()), Head: h[:], Ended: reason},
			settle: func(o *outcome) (*step, error) {
				if o.err != nil {
					n.log.Debug("end session: tell counterparty", "session", s.id, "err", o.err)
				}
				return nil, nil
			}}, nil
	}})
	if err != nil {
		n.log.Error("end session", "session", s.id, "err", err)
	}
}

// publishMessage queues the event of a move applied in s.
func (n *Node) publishMessage(o *outcome, s *session, env *protocol.Envelope) {
	if !n.bus.has(s.local.id.String()) {
		return
	}
	b, err := json.Marshal(env)
	if err != nil {
		return
	}
	o.publish(api.Event{Type: "message", Data: json.RawMessage(b)}, s.local.id.String())
}
