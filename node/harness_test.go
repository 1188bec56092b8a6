package node

import (
	"context"
	"fmt"

	"github.com/aspnode/asp/protocol"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The node harness (harness_env_test.go) drives real nodes through
// datadriven transcripts in testdata/harness. It uses the engine's
// internals only through the functions in this file.

// harnessOptions puts the harness's network and scheduler in place of
// libp2p and the node's own goroutines.
func harnessOptions(t transport, spawn func(func())) Option {
	return func(o *options) error { o.transport, o.spawn = t, spawn; return nil }
}

// harnessHandle serves one session-protocol request from another node.
func harnessHandle(n *Node, from peer.ID, req []byte) ([]byte, error) {
	return n.handleWire(context.Background(), from, req)
}

// harnessTick runs the node's timer work, as its two loops do each second:
// invitation timeouts and offer expiry, commitment expiry, then resends of
// pending moves, receipts and actions.
func harnessTick(n *Node) {
	n.tick()
	n.expireDue(n.ctx)
	n.watchDisputes(n.ctx)
	n.resendPending()
	n.resendDisputes()
}

// harnessSession is what the harness prints of a session.
type harnessSession struct {
	id, state string
	messages  int
	pending   *protocol.Envelope // recorded and sent, not acknowledged
	ended     string
}

// harnessSessions lists the node's sessions. It reads fields guarded by
// the session lock without it: the harness calls it only when every node
// goroutine is finished or parked in the network queue, whose mutex orders
// their writes before this read.
func harnessSessions(n *Node) []harnessSession {
	var out []harnessSession
	for _, s := range n.sessions.list(nil) {
		v := s.snapshot()
		out = append(out, harnessSession{id: s.id, state: string(v.state), messages: len(v.tr), pending: s.pending, ended: s.ended})
	}
	return out
}

// harnessCommitment is what the harness prints of a commitment.
type harnessCommitment struct {
	id, state     string
	ours, theirs  bool // receipts held
	oursRecorded  bool
	actions       int
	pendingAction bool
}

// harnessCommitments lists the node's commitments (read as
// harnessSessions reads sessions).
func harnessCommitments(n *Node) []harnessCommitment {
	var out []harnessCommitment
	for _, c := range n.commitments.list(nil) {
		out = append(out, harnessCommitment{
			id: c.id, state: string(c.stateLocked()), ours: c.ours != nil, theirs: c.theirs != nil,
			oursRecorded: c.oursRecorded, actions: len(c.actions), pendingAction: c.pendingAction != nil,
		})
	}
	return out
}

// harnessDescribeReq names a session-protocol request for the transcript.
func harnessDescribeReq(req []byte, al *aliases) string {
	r, err := decodeWireReq(req)
	if err != nil {
		return "malformed request"
	}
	switch r.Type {
	case wireEnvelope:
		return "envelope " + describeEnvelope(r.Envelope, al)
	case wireReceipt:
		if rc, err := protocol.DecodeReceipt(r.Receipt); err == nil {
			return "receipt " + al.name("c", rc.CommitmentID)
		}
		return "receipt (undecodable)"
	case wireAction:
		if a, err := protocol.DecodeAction(r.Action); err == nil {
			return fmt.Sprintf("action %s %s", a.Kind, al.name("c", a.CommitmentID))
		}
		return "action (undecodable)"
	case wireHead:
		return fmt.Sprintf("head %s at %d", al.name("s", r.Session), r.Length)
	case wireDispute:
		return harnessDescribeDispute(r, al)
	}
	return fmt.Sprintf("request of type %d", r.Type)
}

// harnessDescribeResp names the answer to a request.
func harnessDescribeResp(resp []byte, al *aliases) string {
	r, err := decodeWireResp(resp)
	if err != nil {
		return "malformed answer"
	}
	if r.Code != "" {
		s := "refused " + r.Code
		if r.Ended != "" {
			s += " (ended)"
		}
		return s
	}
	s := "ok"
	if len(r.Reply) > 0 {
		s += ", reply " + describeEnvelope(r.Reply, al)
	}
	if len(r.Receipt) > 0 {
		s += ", receipt"
	}
	if len(r.Tail) > 0 {
		s += fmt.Sprintf(", %d envelopes after our head", len(r.Tail))
	}
	if len(r.Cosigned) > 0 {
		s += ", cosigned"
	}
	return s
}

func describeEnvelope(raw []byte, al *aliases) string {
	env, err := protocol.DecodeEnvelope(raw)
	if err != nil {
		return "(undecodable)"
	}
	return fmt.Sprintf("%s #%d %s", env.Performative, env.SequenceNumber, al.name("s", env.SessionID))
}

// harnessDescribeDispute names a dispute filing or step.
func harnessDescribeDispute(r *wireReq, al *aliases) string {
	var s string
	if r.Filing != nil {
		d, err := protocol.DecodeDispute(r.Filing)
		if err != nil {
			return "dispute filing (undecodable)"
		}
		s = fmt.Sprintf("dispute filing %s %s %s", al.name("d", d.ID()), d.Grounds, al.name("c", d.CommitmentID))
	} else {
		st, err := protocol.DecodeDisputeStep(r.Step)
		if err != nil {
			return "dispute step (undecodable)"
		}
		s = fmt.Sprintf("dispute %s %s", st.Kind, al.name("d", st.DisputeID))
	}
	if r.Action != nil {
		if a, err := protocol.DecodeAction(r.Action); err == nil {
			s += " with " + string(a.Kind)
		}
	}
	return s
}

// harnessDisputes lists the node's disputes (read as harnessSessions
// reads sessions).
func harnessDisputes(n *Node) []harnessDispute {
	var out []harnessDispute
	for _, dc := range n.disputes.list() {
		out = append(out, harnessDispute{id: dc.id, commitment: dc.c.id, state: string(dc.k.State), steps: len(dc.steps), pending: dc.pending != nil})
	}
	return out
}

type harnessDispute struct {
	id, commitment, state string
	steps                 int
	pending               bool
}
