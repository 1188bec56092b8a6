package node

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
)

// The move driver. Every change to a session or a commitment — our move,
// the counterparty's move, a resend, a reconciliation, a receipt, a
// commitment action, an expiry — is decided first by the pure layer
// (protocol.Session.Step, protocol.Commitment.Apply, AddReceipt, Expire, on
// copies) and described as a step: the records to append, the request to
// send, and how to settle the outcome. drive carries every step out in one
// order:
//
//	append the records durably (one synced write)
//	  → send the request, if any, and wait for the answer
//	  → settle: install the new state once it is durable and, when sent,
//	    acknowledged; or record and report the refusal or the failure
//	  → publish the events settle queued
//	  → the step settle returned, if any (a refusal record, the commitment
//	    an acknowledged ACCEPT formed, the activation a receipt brings)
//
// Nothing else in the package appends a ledger record or sends a request
// to another node (TestOnlyTheDriverWritesAndSends holds it to that), and
// session and commitment state change only in the install functions at the
// end of this file. The caller holds the lock of the session or commitment
// the step changes, for the whole of drive.
//
//	records ──append──▶ ledger (synced)
//	                      │
//	send ──request──▶ counterparty ──answer──▶ settle ──▶ install ──▶ publish
//	                                              │
//	                                              └──▶ next step
type step struct {
	// what names the step in errors and logs ("move", "receipt", ...).
	what string
	// records are appended, in one write, before anything is sent.
	records []ledger.Record
	// send, if set, goes to the node of the organisation to once the
	// records are durable.
	to   string
	send *wireReq
	// witness, if set, goes to the witness of the organisation to
	// (WitnessProtocol) once the records are durable; its answer is
	// outcome.wack.
	witness *witnessReq
	// sending, if set, is true while the request is out (a session's
	// "an outgoing move is in flight").
	sending *atomic.Bool
	// quiet: the step's errors are logged, not returned (work that
	// follows an operation that already succeeded).
	quiet bool
	// settle handles the outcome: it installs the new state and returns
	// the step that follows, if any, and the error for the caller. nil:
	// nothing to install.
	settle func(o *outcome) (*step, error)
}

// outcome is what happened to a step.
type outcome struct {
	ctx  context.Context
	ents []ledger.Entry // the entries the step appended
	ack  *wireResp      // the counterparty's answer (a refusal has Code set)
	wack *witnessResp   // the witness's answer to step.witness
	err  error          // the request failed in transport: no answer
	rtt  time.Duration  // from sending the request to its answer
	pub  []published
}

type published struct {
	ev    api.Event
	agent string
}

// publish queues an event for agent; drive publishes it after settle.
func (o *outcome) publish(ev api.Event, agent string) {
	o.pub = append(o.pub, published{ev, agent})
}

// delivered reports whether the counterparty acknowledged the request.
func (o *outcome) delivered() bool { return o.err == nil && o.ack != nil && o.ack.Code == "" }

// refused reports whether the counterparty answered with a refusal.
func (o *outcome) refused() bool { return o.err == nil && o.ack != nil && o.ack.Code != "" }

// drive carries out st and the steps that follow from it. It returns the
// first error a step reported; a step whose records cannot be appended
// stops the chain (nothing of it was sent or installed).
// REQUIRES: the lock of what the steps change.
func (n *Node) drive(ctx context.Context, st *step) error {
	var first error
	for st != nil {
		o := &outcome{ctx: ctx}
		if len(st.records) > 0 {
			ents, err := n.led.Append(ctx, st.records...)
			if err != nil {
				err = fmt.Errorf("record %s: %w", st.what, err)
				if st.quiet {
					n.log.Warn(st.what, "err", err)
				} else if first == nil {
					first = err
				}
				return first
			}
			o.ents = ents
		}
		if st.send != nil {
			if st.sending != nil {
				st.sending.Store(true)
			}
			start := time.Now()
			o.ack, o.err = n.request(ctx, st.to, st.send)
			o.rtt = time.Since(start)
			if st.sending != nil {
				st.sending.Store(false)
			}
		}
		if st.witness != nil {
			start := time.Now()
			o.wack, o.err = n.requestWitness(ctx, st.to, st.witness)
			o.rtt = time.Since(start)
		}
		var next *step
		var err error
		if st.settle != nil {
			next, err = st.settle(o)
		}
		for _, p := range o.pub {
			n.bus.publish(p.ev, p.agent)
		}
		if err != nil && st.quiet {
			n.log.Warn(st.what, "err", err)
			err = nil
		}
		if err != nil && first == nil {
			first = err
		}
		st = next
	}
	return first
}

// record appends records that change no session or commitment (key events,
// attestations) through the driver.
func (n *Node) record(ctx context.Context, what string, recs ...ledger.Record) ([]ledger.Entry, error) {
	var ents []ledger.Entry
	err := n.drive(ctx, &step{what: what, records: recs, settle: func(o *outcome) (*step, error) {
		ents = o.ents
		return nil, nil
	}})
	return ents, err
}

// ask sends a request that records nothing and changes nothing by itself
// (a session head, a resent action) through the driver, and returns the
// answer.
func (n *Node) ask(ctx context.Context, what, org string, req *wireReq) (*wireResp, error) {
	var resp *wireResp
	err := n.drive(ctx, &step{what: what, to: org, send: req, settle: func(o *outcome) (*step, error) {
		resp = o.ack
		return nil, o.err
	}})
	return resp, err
}

// Install functions: the only writers of a session's state machine and a
// commitment's protocol value.

// installSession puts the session's new state machine in place and
// publishes its view.
// REQUIRES: s.lock.
func installSession(s *session, ps *protocol.Session) {
	s.ps = ps
	s.publishView()
}

// installCommitment puts the commitment's new protocol value in place.
// REQUIRES: c.mu, or c not yet shared.
func installCommitment(c *commitment, pc *protocol.Commitment) {
	c.pc = pc
	c.settled.Store(settledState(c.stateLocked()))
}
