package node

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/protocol"
)

// recover rebuilds sessions and commitments from the ledger, the only
// source of truth: every move this node acknowledged or sent is in it. A
// move we recorded and sent but whose acknowledgement we never saw is
// pending and is resent (the counterparty dedupes it).
func (n *Node) recover(ctx context.Context) error {
	type msg struct {
		sent  bool
		env   *protocol.Envelope
		index uint64
	}
	lastEntry := map[string]uint64{} // session id -> index of its last entry
	bySession := map[string][]msg{}
	var order []string
	refused := map[string]bool{}
	ended := map[string]string{} // session id -> why reconciliation ended it
	type cstate struct {
		index     uint64
		ours      []byte
		theirs    []byte
		state     protocol.CommitmentState
		actions   [][]byte
		session   string
		expiredAt time.Time
	}
	cs := map[string]*cstate{}

	size := n.led.Size()
	const page = 4096
	for from := uint64(0); from < size; from += page {
		ents, err := n.led.Entries(from, page)
		if err != nil {
			return err
		}
		for _, e := range ents {
			// A refusal, or a reconciliation's record, says nothing of
			// whether the counterparty acknowledged the move before it: an
			// adopted move with no acknowledgement recorded is resent.
			if e.Session != "" && e.Kind != kindMessageRefused && e.Kind != kindReconciled {
				lastEntry[e.Session] = e.Index
			}
			switch e.Kind {
			case ledger.KindMessageSent, ledger.KindMessageReceived:
				env, err := protocol.DecodeEnvelope(e.Body)
				if err != nil {
					return fmt.Errorf("entry %d: %w", e.Index, err)
				}
				if _, ok := bySession[env.SessionID]; !ok {
					order = append(order, env.SessionID)
				}
				bySession[env.SessionID] = append(bySession[env.SessionID], msg{sent: e.Kind == ledger.KindMessageSent, env: env, index: e.Index})
			case kindMessageRefused:
				if r, err := ledger.DecodeRefusal(e.Body); err == nil {
					refused[r.MessageID] = true
				}
			case kindReconciled:
				if r, err := ledger.DecodeReconciled(e.Body); err == nil {
					if r.Adopted != "" {
						delete(refused, r.Adopted)
					}
					if r.Ended != "" {
						ended[e.Session] = r.Ended
					}
				}
			case ledger.KindCommitment:
				cs[e.Commitment] = &cstate{index: e.Index, state: protocol.CommitmentPending, session: e.Session}
			case ledger.KindReceipt:
				if c := cs[e.Commitment]; c != nil {
					if r, err := protocol.DecodeReceipt(e.Body); err == nil {
						if r.Org == n.peerID {
							c.ours = e.Body
						} else {
							c.theirs = e.Body
						}
					}
				}
			case ledger.KindCommitmentUpdate:
				c := cs[e.Commitment]
				if u, err := ledger.DecodeCommitmentUpdate(e.Body); c != nil && err == nil {
					c.state = u.State
					if u.Action != nil {
						c.actions = append(c.actions, u.Action)
					}
					if c.state == protocol.CommitmentExpired && u.Action == nil {
						c.expiredAt = e.Time
					}
				}
			}
		}
	}

	for _, id := range order {
		msgs := bySession[id]
		var live []msg
		for _, m := range msgs {
			if !refused[m.env.MessageID] {
				live = append(live, m)
			}
		}
		if len(live) == 0 {
			continue
		}
		first := live[0].env
		init, err := protocol.ParseAgentID(first.Sender)
		if err != nil {
			return err
		}
		resp, err := protocol.ParseAgentID(first.Recipient)
		if err != nil {
			return err
		}
		s := &session{id: id, lock: make(chan struct{}, 1), created: first.Timestamp}
		if live[0].sent {
			s.initiator, s.remote = true, resp
			s.local = n.localAgent(init.String())
		} else {
			s.remote = init
			s.local = n.localAgent(resp.String())
		}
		if s.local == nil {
			n.log.Warn("session of a removed agent not restored", "session", id)
			continue
		}
		s.ps = protocol.NewSession(n.pcfg, id, init, resp, first.Timestamp)
		for i, m := range live {
			// The last move we sent, with nothing recorded after it, may
			// never have reached the counterparty: it is resent before it is
			// applied. (An answer to an invitation is applied when sent.)
			if m.sent && i == len(live)-1 && lastEntry[id] == m.index && !(i == 1 && isInvitation(live[0].env) && !s.initiator) {
				s.pending = m.env
				break
			}
			eff, err := s.ps.Step(m.env, m.env.Timestamp)
			if err != nil {
				return fmt.Errorf("replay session %s message %s: %w", id, m.env.MessageID, err)
			}
			s.updated = m.env.Timestamp
			if eff.Commitment != nil {
				st := cs[eff.Commitment.ID]
				if st == nil {
					// Formed but not recorded as a commitment: the crash
					// came between the message and the commitment entry.
					// Record it now (the receiver side never acked without it).
					continue
				}
				c := &commitment{
					mu: newSlot(), id: eff.Commitment.ID, session: id, local: s.local, remote: s.remote,
					acceptor: m.sent, index: st.index, ours: st.ours, oursRecorded: st.ours != nil, theirs: st.theirs,
					activated: st.state != protocol.CommitmentPending,
					created:   m.env.Timestamp, updated: m.env.Timestamp, deadline: eff.Commitment.Deadline(),
				}
				for _, raw := range st.actions {
					if !refused[actionID(raw)] {
						c.actions = append(c.actions, raw)
					}
				}
				if k := len(c.actions); k > 0 {
					// Our last action may not have reached the counterparty:
					// it is resent (a resend is acknowledged as such). It
					// stays applied, as recorded; should the counterparty
					// refuse it, the refusal is recorded and it is taken
					// out (resendActionLocked).
					if a, err := protocol.DecodeAction(c.actions[k-1]); err == nil && a.Actor == s.local.id.String() {
						c.pendingAction, c.pendingApplied = c.actions[k-1], true
					}
				}
				pc, err := n.replayCommitment(eff.Commitment, c, st.expiredAt)
				if err != nil {
					n.log.Error("commitment does not replay from the ledger; it reads as formed", "commitment", c.id, "err", err)
					pc = eff.Commitment
				}
				installCommitment(c, pc)
				if c.activated {
					c.updated = pc.Updated
				}
				n.commitments.put(c)
			}
		}
		if s.ended = ended[id]; s.ended != "" {
			s.pending = nil
		}
		s.publishView()
		n.sessions.put(s)
		n.trackInbound(s, n.now())
	}
	n.log.Info("recovered", "entries", size, "sessions", n.sessions.len(), "commitments", n.commitments.len())
	return n.recoverDisputes(ctx)
}

// resendPending pushes what a counterparty has not acknowledged: pending
// moves, and receipts of commitments not yet ACTIVE.
func (n *Node) resendPending() {
	ctx := n.ctx
	// Candidates are read without their locks; each is checked again
	// under its own lock.
	// In id order, so that a run is replayable.
	ss := n.sessions.list(nil)
	sort.Slice(ss, func(i, j int) bool { return ss[i].id < ss[j].id })
	for _, s := range ss {
		select {
		case s.lock <- struct{}{}:
		default:
			continue
		}
		if env := s.pending; env != nil && s.ended == "" {
			n.m.resends.Inc()
			n.resendLocked(ctx, s, env)
		}
		s.release()
	}
	cs := n.commitments.list(nil)
	sort.Slice(cs, func(i, j int) bool { return cs[i].id < cs[j].id })
	for _, c := range cs {
		if !c.mu.TryLock() {
			continue
		}
		// A receipt of ours still unrecorded after a while (the commitment
		// did not activate) is recorded on its own.
		if !c.oursRecorded && n.now().Sub(c.created) > receiptRecordDelay {
			if err := n.recordOurReceiptLocked(ctx, c); err != nil {
				n.log.Warn("record our receipt", "commitment", c.id, "err", err)
			}
		}
		if !c.activated {
			if c.ours == nil {
				if err := n.ensureOurReceiptLocked(ctx, c); err != nil {
					n.log.Warn("receipt", "commitment", c.id, "err", err)
				}
			}
			if c.acceptor && c.theirs != nil && c.ours != nil {
				n.m.resends.Inc()
				n.sendReceiptLocked(ctx, c)
			}
		}
		if raw := c.pendingAction; raw != nil && c.activated {
			n.m.resends.Inc()
			n.resendActionLocked(ctx, c, raw)
		}
		c.mu.Unlock()
	}
}

// replayCommitment derives a recovered commitment's protocol value from
// what the ledger holds: formed, with its receipts and its actions (our
// receipt's signature and the agents' are checked again; the
// counterparty's receipt was checked when it arrived, and is again).
func (n *Node) replayCommitment(formed *protocol.Commitment, c *commitment, expiredAt time.Time) (*protocol.Commitment, error) {
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
	return formed.Replay(receipts, actions, expiredAt, n.sigs)
}
