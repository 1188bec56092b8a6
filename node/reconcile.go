package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/protocol"
)

// Reconciliation: two nodes whose transcripts of one session differ (a
// crash, a lost acknowledgement, a refusal recorded for a move the
// counterparty holds) find out when a move is refused as a replay or a
// conflict, exchange heads (wireHead) and converge on the transcript both
// signed, or end the session on both sides. See docs/node.md.

// kindReconciled is the ledger kind of a reconciliation's outcome in a
// session (ledger.KindReconciled; body ledger.Reconciled).
const kindReconciled = ledger.KindReconciled

// maxTail bounds the envelopes of one wireHead answer (wireDec's array
// limit), maxTailBytes their size.
const (
	maxTail      = 16
	maxTailBytes = maxWire / 2
)

// divergent reports whether a refusal's code says the counterparty's
// transcript differs from ours.
func divergent(code string) bool {
	return code == protocol.CodeConflict || code == protocol.CodeReplay
}

// divergentErr is divergent for a refusal of ours.
func divergentErr(err error) bool {
	return errors.Is(err, protocol.ErrChainMismatch) || errors.Is(err, protocol.ErrSequenceGap) ||
		(errors.Is(err, protocol.ErrReplay) && !errors.Is(err, protocol.ErrDuplicate))
}

// onHead answers a counterparty's wireHead: our length and head, and the
// envelopes that follow its head if its transcript is a prefix of ours. It
// reads the session's view and never waits for the session lock. Only the
// node of the session's other party may ask.
func (n *Node) onHead(from string, r *wireReq) *wireResp {
	s := n.getSession(r.Session)
	if s == nil {
		return &wireResp{Code: codeNotFound, Message: "no session " + r.Session}
	}
	if s.remote.Org != from {
		return refuse(protocol.ErrNotParty, fmt.Errorf("node %s is not a party to session %s", from, r.Session))
	}
	v := s.snapshot()
	resp := &wireResp{Length: uint64(len(v.tr)), Ended: v.ended}
	if len(v.tr) > 0 {
		h := v.tr[len(v.tr)-1].Hash()
		resp.Head = h[:]
	}
	if r.Ended != "" && v.ended == "" {
		n.endSoon(s, "the counterparty ended the session: "+r.Ended)
		return resp
	}
	switch k := r.Length; {
	case k < uint64(len(v.tr)) && (k == 0 || hashAt(v.tr, k-1, r.Head)):
		size := 0
		for _, e := range v.tr[k:] {
			raw, err := protocol.EncodeEnvelope(e)
			if err != nil || len(resp.Tail) == maxTail || size+len(raw) > maxTailBytes {
				break
			}
			size += len(raw)
			resp.Tail = append(resp.Tail, raw)
		}
	case k > uint64(len(v.tr)):
		// The requester may hold what we lack: we ask it in turn.
		n.reconcileSoon(s)
	}
	return resp
}

// hashAt reports whether tr[i]'s hash is h.
func hashAt(tr []*protocol.Envelope, i uint64, h []byte) bool {
	x := tr[i].Hash()
	return bytes.Equal(x[:], h)
}

// reconcileSoon reconciles s in the background, once at a time.
func (n *Node) reconcileSoon(s *session) {
	if n.ctx.Err() != nil || !s.reconciling.CompareAndSwap(false, true) {
		return
	}
	n.spawn(func() {
		defer s.reconciling.Store(false)
		if err := s.acquire(n.ctx, false, false); err != nil {
			return
		}
		defer s.release()
		n.reconcileLocked(n.ctx, s)
	})
}

// endSoon ends s in the background, once at a time.
func (n *Node) endSoon(s *session, reason string) {
	if n.ctx.Err() != nil || !s.ending.CompareAndSwap(false, true) {
		return
	}
	n.spawn(func() {
		defer s.ending.Store(false)
		if err := s.acquire(n.ctx, false, false); err != nil {
			return
		}
		defer s.release()
		n.endLocked(n.ctx, s, reason, false)
	})
}

// reconcileLocked asks the counterparty for the envelopes that follow our
// head and applies them: its own through the state machine as received
// messages (signature, certificate, chain, sequence, freshness, legality),
// ours by resending them (the counterparty holds them and acknowledges
// them as resends, with its receipt if one formed a commitment). When the
// two transcripts cannot converge (they fork, or an envelope does not
// verify), the session ends on both sides. Every round adds envelopes or
// stops, so it ends.
// REQUIRES: s.lock.
func (n *Node) reconcileLocked(ctx context.Context, s *session) {
	if s.adopting || s.ended != "" {
		return
	}
	s.adopting = true
	defer func() { s.adopting = false }()
	// A reconciliation is running: the counterparty's head request it
	// causes schedules no second one behind this one's lock.
	if s.reconciling.CompareAndSwap(false, true) {
		defer s.reconciling.Store(false)
	}
	n.m.reconciliations.Inc()
	for round := 0; round <= s.ps.Config().MaxMessages/maxTail+1; round++ {
		length, head := uint64(s.ps.Len()), s.ps.Head()
		req := &wireReq{Type: wireHead, Session: s.id, Length: length}
		if length > 0 {
			req.Head = head[:]
		}
		resp, err := n.ask(ctx, "session head", s.remote.Org, req)
		if err != nil {
			n.log.Debug("reconcile", "session", s.id, "err", err)
			return
		}
		if resp.Code != "" {
			n.log.Debug("reconcile refused", "session", s.id, "code", resp.Code, "msg", resp.Message)
			return
		}
		if resp.Ended != "" {
			n.endLocked(ctx, s, "the counterparty ended the session: "+resp.Ended, false)
			return
		}
		if len(resp.Tail) == 0 {
			switch tr := s.ps.Transcript(); {
			case resp.Length == length && bytes.Equal(resp.Head, req.Head):
				return // converged
			case resp.Length < length && (resp.Length == 0 || hashAt(tr, resp.Length-1, resp.Head)):
				return // the counterparty is behind; it asks us in turn
			}
			n.endLocked(ctx, s, fmt.Sprintf("the transcripts diverged: %d messages here, %d at the counterparty", length, resp.Length), true)
			return
		}
		for _, raw := range resp.Tail {
			if err := n.adoptLocked(ctx, s, raw); err != nil {
				n.endLocked(ctx, s, "the counterparty's transcript does not verify here: "+err.Error(), true)
				return
			}
			if s.pending != nil {
				return // resent, not yet acknowledged: settled later
			}
		}
	}
}

// adoptLocked applies one envelope of the counterparty's transcript that
// follows our head.
// REQUIRES: s.lock.
func (n *Node) adoptLocked(ctx context.Context, s *session, raw []byte) error {
	env, err := protocol.DecodeEnvelope(raw)
	if err != nil {
		return err
	}
	switch env.Sender {
	case s.remote.String():
		_, err := n.receiveLocked(ctx, s, env, raw)
		return err
	case s.local.id.String():
		// Ours: signed by our agent and held by the counterparty. A
		// pending move is checked at its own time (we signed it then)
		// and resent. One recorded as refused is taken back only as a
		// move arriving now would be, judged against our clock: the
		// counterparty cannot keep a refused move to make it count
		// later.
		pending := s.pending != nil && s.pending.MessageID == env.MessageID
		at := env.Timestamp
		if !pending {
			at = n.now()
		}
		next := s.ps.Clone()
		eff, err := next.Step(env, at)
		if err != nil {
			return err
		}
		if !pending {
			rec := ledger.ReconciledRecord(n.now(), s.id, ledger.Reconciled{Adopted: env.MessageID})
			err := n.drive(ctx, &step{what: "reconciliation", records: []ledger.Record{rec}, settle: func(*outcome) (*step, error) {
				s.pending = nil
				return nil, nil
			}})
			if err != nil {
				return err
			}
		}
		if _, err := n.resendMoveLocked(ctx, s, env, raw, next, eff); err != nil && s.pending == nil {
			return err
		}
		return nil
	}
	return fmt.Errorf("%w: %s is not a party", protocol.ErrNotParty, env.Sender)
}
