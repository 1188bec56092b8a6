package node

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
)

// session is the node's side of one session: the protocol state machine of
// the session plus what the node needs to drive it.
//
// A move is applied to ps only once the counterparty has acknowledged it
// (outgoing) or once it is durable in our ledger (incoming), so both sides
// always hold the same transcript.
type session struct {
	id        string
	lock      chan struct{} // one move at a time; a 1-slot semaphore so waits can time out
	sending   atomic.Bool   // an outgoing move is in flight (lock held)
	local     *localAgent   // our party
	remote    protocol.AgentID
	initiator bool // local opened the session

	// view is what the session holds, published under lock after every
	// change, for readers that must not wait for the lock: a resent
	// envelope is answered from it while a move of ours is in flight.
	view        atomic.Pointer[sessionView]
	reconciling atomic.Bool // a reconciliation is scheduled or running
	ending      atomic.Bool // an end asked by the counterparty is scheduled

	// Guarded by lock.
	ps       *protocol.Session
	pending  *protocol.Envelope // recorded and sent, not yet acknowledged
	ended    string             // why reconciliation ended the session ("" if it did not)
	adopting bool               // reconcileLocked is running (it does not nest)
	created  time.Time
	updated  time.Time
}

// sessionView is an immutable copy of what a session holds.
type sessionView struct {
	tr    []*protocol.Envelope
	cs    []*protocol.Commitment
	ended string
	state protocol.State
}

// snapshot returns the session's last published view.
func (s *session) snapshot() *sessionView {
	if v := s.view.Load(); v != nil {
		return v
	}
	return &sessionView{}
}

// REQUIRES: s.lock.
func (s *session) publishView() {
	s.view.Store(&sessionView{tr: s.ps.Transcript(), cs: s.ps.Commitments(), ended: s.ended, state: s.ps.State()})
}

// find returns the index of messageID in the view's transcript, or -1.
func (v *sessionView) find(messageID string) int {
	for i, e := range v.tr {
		if e.MessageID == messageID {
			return i
		}
	}
	return -1
}

// priorityWait is how long an incoming move with priority waits for our own
// in-flight move to resolve.
const priorityWait = 5 * time.Second

// acquire takes the session lock. An incoming move from the initiator has
// priority: it waits for an in-flight move of ours, which the initiator's node
// refuses as busy. Any other move arriving while we are sending is refused
// as busy at once, so two nodes moving at the same time never wait on each
// other.
func (s *session) acquire(ctx context.Context, incoming, priority bool) error {
	select {
	case s.lock <- struct{}{}:
		return nil
	default:
	}
	if incoming && !priority && s.sending.Load() {
		return errBusy
	}
	t := time.NewTimer(priorityWait)
	defer t.Stop()
	select {
	case s.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		if incoming {
			return errBusy
		}
		return errorf(protocol.CodeTimeout, "session %s is busy", s.id)
	}
}

func (s *session) release() { <-s.lock }

func (n *Node) getSession(id string) *session { return n.sessions.get(id) }

// OpenSession implements api.Backend: it invites the counterparty and, under
// its consent policy, usually returns an introduced session.
func (n *Node) OpenSession(ctx context.Context, from string, req api.OpenSessionRequest) (api.SessionInfo, error) {
	la := n.localAgent(from)
	if la == nil {
		return api.SessionInfo{}, errorf(protocol.CodeUnauthorized, "agent %s is not hosted here", from)
	}
	to, err := protocol.ParseAgentID(req.To)
	if err != nil {
		return api.SessionInfo{}, badRequest("to: %v", err)
	}
	if to.Org == n.peerID {
		return api.SessionInfo{}, badRequest("%s is hosted by this node: sessions join agents of different organisations", req.To)
	}
	if n.equivocated(to.Org) {
		return api.SessionInfo{}, errorf(protocol.CodeEquivocation, "this node holds a verified proof that %s's ledger signed two histories", to.Org)
	}
	if n.denied(to.Org) {
		return api.SessionInfo{}, errorf(protocol.CodePolicyViolation, "the organisation %s is revoked by this node's consent policy", to.Org)
	}
	if m := la.mandateOf(); m != nil {
		if err := n.checkParty(m, to); err != nil {
			return api.SessionInfo{}, err
		}
	}
	now := n.now()
	sid, err := protocol.NewSessionID(now, n.opts.rand)
	if err != nil {
		return api.SessionInfo{}, err
	}
	s := &session{
		id:        sid,
		lock:      make(chan struct{}, 1),
		local:     la,
		remote:    to,
		initiator: true,
		created:   now,
		updated:   now,
	}
	installSession(s, protocol.NewSession(n.pcfg, s.id, la.id, to, now))
	n.sessions.put(s)
	if err := s.acquire(ctx, false, false); err != nil {
		return api.SessionInfo{}, err
	}
	defer s.release()
	env, err := n.prepare(s, protocol.Propose, &protocol.ProposeBody{Type: protocol.InvitationType, Subject: "session invitation from " + la.id.String()}, now)
	if err != nil {
		return api.SessionInfo{}, err
	}
	if _, err := n.moveLocked(ctx, s, env); err != nil {
		return n.sessionInfoLocked(s), &sessionErr{err: err, id: s.id}
	}
	// A declined invitation is an error for the inviting agent, with the
	// counterparty's code and reason (policy_violation,
	// insufficient_trust_score, ...).
	if tr := s.ps.Transcript(); s.ps.State() == protocol.StateFailed && len(tr) > 1 {
		if rb, ok := tr[len(tr)-1].Body.(*protocol.RejectBody); ok && tr[len(tr)-1].Sender == to.String() {
			code := rb.Code
			if code == "" {
				code = "rejected"
			}
			return n.sessionInfoLocked(s), &sessionErr{err: &Declined{Code: code, Message: fmt.Sprintf("%s declined the invitation: %s", to, rb.Reason)}, id: s.id}
		}
	}
	return n.sessionInfoLocked(s), nil
}

// prepare builds and signs the local agent's next envelope.
// REQUIRES: s.lock.
func (n *Node) prepare(s *session, p protocol.Performative, body protocol.Body, now time.Time) (*protocol.Envelope, error) {
	env, err := s.ps.Prepare(s.local.id, p, body, now, n.opts.rand)
	if err != nil {
		return nil, err
	}
	// Nothing beyond the agent's mandate is signed.
	if err := n.checkMandate(s, env); err != nil {
		return nil, err
	}
	if err := env.Seal(s.local.key, s.local.cert); err != nil {
		return nil, err
	}
	env.SealedBy(n.sigs)
	return env, nil
}

// SendMessage implements api.Backend.
func (n *Node) SendMessage(ctx context.Context, from, sessionID string, req api.SendMessageRequest) (api.SendMessageResult, error) {
	s := n.getSession(sessionID)
	if s == nil || s.local.id.String() != from {
		return api.SendMessageResult{}, notFound("session", sessionID)
	}
	p := protocol.Performative(req.Performative)
	body, err := bodyFromRequest(p, req.Terms, req.ReferenceID, req.Body)
	if err != nil {
		return api.SendMessageResult{}, err
	}
	if err := s.acquire(ctx, false, false); err != nil {
		return api.SendMessageResult{}, err
	}
	defer s.release()
	if s.ended != "" {
		return api.SendMessageResult{}, invalidTransition("session %s has ended: %s", s.id, s.ended)
	}
	if pend := s.pending; pend != nil {
		if (p != protocol.Close && p != protocol.Withdraw) || pend.Performative == protocol.Accept {
			// An ACCEPT the counterparty may hold may have formed a
			// commitment there: it is never taken back.
			return api.SendMessageResult{}, errorf(codePending, "the previous move in this session is not yet acknowledged by the counterparty; it is being resent")
		}
		// The agent ends the session, or withdraws, while a move is
		// pending: the pending move is superseded (recorded as refused
		// and never resent). Should the counterparty hold it after all,
		// it refuses what follows as a conflict and the transcripts are
		// reconciled (adopting the move back).
		if err := n.supersedeLocked(ctx, s, fmt.Sprintf("superseded by %s from the agent", p)); err != nil {
			return api.SendMessageResult{}, err
		}
		if s.ps.Len() == 0 {
			// The invitation itself was pending: the session never began.
			n.endLocked(ctx, s, "closed before the counterparty acknowledged the invitation", false)
			return api.SendMessageResult{State: string(protocol.StateFailed)}, nil
		}
		if wb, ok := body.(*protocol.WithdrawBody); ok && wb.ReferenceID == pend.MessageID {
			// The offer withdrawn is the one superseded: it never was.
			return api.SendMessageResult{State: string(s.ps.State())}, nil
		}
	}
	env, err := n.prepare(s, p, body, n.now())
	if err != nil {
		return api.SendMessageResult{}, err
	}
	c, err := n.moveLocked(ctx, s, env)
	if err != nil {
		return api.SendMessageResult{}, err
	}
	h := env.Hash()
	res := api.SendMessageResult{
		MessageID:      env.MessageID,
		SequenceNumber: env.SequenceNumber,
		Hash:           hex.EncodeToString(h[:]),
		State:          string(s.ps.State()),
	}
	if c != nil {
		res.CommitmentID = c.id
	}
	return res, nil
}

// tick advances every session's clock: unanswered invitations fail, offers
// expire.
func (n *Node) tick() {
	now := n.now()
	for _, s := range n.sessions.list(nil) {
		select {
		case s.lock <- struct{}{}:
		default:
			continue
		}
		if s.ps.Due(now) {
			// Nothing is recorded: the lapse follows from the signed
			// messages and the clock, and recovery replays it.
			next := s.ps.Clone()
			before := s.ps.State()
			next.Tick(now)
			_ = n.drive(n.ctx, &step{what: "lapse", settle: func(o *outcome) (*step, error) {
				installSession(s, next)
				if after := next.State(); after != before {
					s.updated = now
					o.publish(api.Event{Type: "session", Data: map[string]any{"sessionId": s.id, "state": after}}, s.local.id.String())
				}
				return nil, nil
			}})
		}
		if p := s.pending; p != nil && s.ps.Len() == 0 && s.ended == "" && now.Sub(p.Timestamp) > s.ps.Config().InviteTimeout {
			// Our invitation never reached the counterparty: it fails as
			// an unanswered one would.
			n.endLocked(n.ctx, s, "invitation timed out: the counterparty never acknowledged it", false)
		}
		s.release()
	}
}

// Session implements api.Backend.
func (n *Node) Session(ctx context.Context, p api.Principal, sessionID string) (api.SessionInfo, error) {
	s := n.getSession(sessionID)
	if s == nil || (!p.Admin && s.local.id.String() != p.Agent) {
		return api.SessionInfo{}, notFound("session", sessionID)
	}
	if err := s.acquire(ctx, false, false); err != nil {
		return api.SessionInfo{}, err
	}
	defer s.release()
	return n.sessionInfoLocked(s), nil
}

// Sessions implements api.SessionLister.
func (n *Node) Sessions(ctx context.Context, p api.Principal) ([]api.SessionInfo, error) {
	list := n.sessions.list(func(s *session) bool { return p.Admin || s.local.id.String() == p.Agent })
	out := make([]api.SessionInfo, 0, len(list))
	for _, s := range list {
		if err := s.acquire(ctx, false, false); err != nil {
			return nil, err
		}
		out = append(out, n.sessionInfoLocked(s))
		s.release()
	}
	return out, nil
}

// REQUIRES: s.lock.
func (n *Node) sessionInfoLocked(s *session) api.SessionInfo {
	info := api.SessionInfo{
		SessionID: s.id,
		State:     string(s.ps.State()),
		Reason:    s.ps.Reason(),
		CreatedAt: s.created,
		UpdatedAt: s.updated,
		Messages:  []json.RawMessage{},
	}
	if s.ended != "" && !s.ps.State().Terminal() {
		info.State, info.Reason = string(protocol.StateFailed), s.ended
	}
	if s.initiator {
		info.Participants = []string{s.local.id.String(), s.remote.String()}
	} else {
		info.Participants = []string{s.remote.String(), s.local.id.String()}
	}
	for _, e := range s.ps.Transcript() {
		b, err := json.Marshal(e)
		if err == nil {
			info.Messages = append(info.Messages, b)
		}
	}
	if cs := s.ps.Commitments(); len(cs) > 0 {
		info.CommitmentID = cs[len(cs)-1].ID
	}
	return info
}

func isInvitation(env *protocol.Envelope) bool {
	b, ok := env.Body.(*protocol.ProposeBody)
	return ok && env.Performative == protocol.Propose && b.IsInvitation()
}

func hasMessage(s *protocol.Session, id string) bool {
	_, ok := s.Envelope(id)
	return ok
}

// bodyFromRequest builds a typed body from the API's request: terms and
// referenceId may be given beside the body or inside it.
func bodyFromRequest(p protocol.Performative, terms json.RawMessage, ref string, body json.RawMessage) (protocol.Body, error) {
	if !p.Valid() {
		return nil, badRequest("unknown performative %q", p)
	}
	obj := map[string]json.RawMessage{}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &obj); err != nil {
			return nil, badRequest("body: %v", err)
		}
	}
	if len(terms) > 0 {
		obj["terms"] = terms
	}
	// Times may come in any RFC 3339 form (2027-03-15T00:00:00Z, with an
	// offset, ...); the signed form is UTC with milliseconds.
	if err := normaliseTime(obj, "validUntil"); err != nil {
		return nil, err
	}
	if raw, ok := obj["terms"]; ok {
		t := map[string]json.RawMessage{}
		if json.Unmarshal(raw, &t) == nil {
			if err := normaliseTime(t, "deliverBy"); err != nil {
				return nil, err
			}
			obj["terms"], _ = json.Marshal(t)
		}
	}
	if ref != "" {
		b, _ := json.Marshal(ref)
		obj["referenceId"] = b
	}
	raw, _ := json.Marshal(obj)
	b, err := protocol.DecodeBodyJSON(p, raw)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// RespondInvitation implements api.InvitationResponder: under the "ask"
// consent policy the invited agent accepts or declines.
func (n *Node) RespondInvitation(ctx context.Context, agent, sessionID string, accept bool) (api.SessionInfo, error) {
	s := n.getSession(sessionID)
	if s == nil || s.local.id.String() != agent {
		return api.SessionInfo{}, notFound("session", sessionID)
	}
	p := protocol.Reject
	if accept {
		p = protocol.Accept
	}
	if _, err := n.SendMessage(ctx, agent, sessionID, api.SendMessageRequest{Performative: string(p)}); err != nil {
		return api.SessionInfo{}, err
	}
	return n.Session(ctx, api.Principal{Agent: agent}, sessionID)
}

// normaliseTime rewrites obj[field], an RFC 3339 time, in the protocol's
// form (UTC, milliseconds). A time with a finer fraction is refused rather
// than rounded: the signed terms must say what the agent said.
func normaliseTime(obj map[string]json.RawMessage, field string) error {
	raw, ok := obj[field]
	if !ok {
		return nil
	}
	var str string
	if err := json.Unmarshal(raw, &str); err != nil || str == "" {
		return nil // not a string: the protocol's decoder says what is wrong
	}
	t, err := time.Parse(time.RFC3339Nano, str)
	if err != nil {
		return badRequest("%s: %q is not an RFC 3339 time", field, str)
	}
	if !t.Equal(t.Truncate(time.Millisecond)) {
		return badRequest("%s: %q is finer than a millisecond", field, str)
	}
	obj[field], _ = json.Marshal(protocol.FormatTime(t))
	return nil
}
