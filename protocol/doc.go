// Package protocol is the deterministic core of ASP: wire types, canonical
// encoding, signatures, and the session and commitment state machines.
//
// It is pure in the manner of etcd's raft: no I/O, no clock reads, no
// goroutines, no randomness of its own. Time comes in as an argument
// (Step, Tick, Prepare take "now"), randomness as an io.Reader. A test
// enforces that no non-test file reads the clock and that the package
// imports nothing of libp2p, net, os, p2p/, ledger/ or node/.
//
// # Identity
//
// An organisation is a libp2p Ed25519 peer id (PeerIDFromPublicKey gives
// the same string as go-libp2p). An agent is "agent://<peerId>/<name>"
// (AgentID). The organisation certifies each agent's key with a
// Certificate; every envelope carries its sender's certificate, so it can
// be verified alone (Envelope.Verify).
//
// # Envelopes
//
// An Envelope is signed by its sender over the SHA-256 of its canonical
// CBOR payload (RFC 8949 core deterministic encoding, the integrity hash
// and signature left out) under the domain "asp/1.0 envelope".
// previousHash chains it to the previous envelope of the session (32 zero
// bytes for the first), so both parties hold one identical transcript.
// The JSON form (application/asp+json) maps one to one onto the CBOR form
// and so yields the same hash. Decimals are strings with a strict grammar
// (ValidDecimal); a number where a decimal belongs is refused (ErrFloat).
//
// # Sessions
//
// A Session is driven by the caller:
//
//	env, err := s.Prepare(sender, protocol.Propose, body, now, rnd) // legal? fills header and defaults
//	err = env.Seal(agentKey, agentCert)                              // certificate + signature
//	eff, err := s.Step(env, now)                                     // verify and apply
//	// record eff.Envelope (and eff.Commitment) durably, then send env
//
// The receiving node steps the decoded envelope the same way. Step either
// applies an envelope completely or returns a typed error and changes
// nothing; ErrorCode maps errors to ASP codes. Time effects (invitation
// timeout, offer expiry) are evaluated at each envelope's timestamp, so
// every node that steps the same transcript reaches the same state; Tick
// applies them at "now" between messages. Replay recomputes a session
// from a transcript alone.
//
// The state machine (states after ASP):
//
//	IDLE       --PROPOSE(session-invitation)-->            INVITED
//	INVITED    --ACCEPT(by responder)-->                   INTRODUCED
//	INVITED    --REJECT(responder) | WITHDRAW(initiator)--> FAILED
//	INVITED    --(InviteTimeout passes)-->                 FAILED
//	INTRODUCED, CONVERSING, EXECUTING
//	           --PROPOSE | COMMIT-->                       AGREEING (the offer is open)
//	           --QUERY | CLARIFY | INFORM | OBSERVE | DELEGATE--> CONVERSING (EXECUTING stays)
//	AGREEING   --COUNTER(by the other party)-->            AGREEING (the counter is open)
//	AGREEING   --PROPOSE | COMMIT-->                       AGREEING (supersedes the open offer)
//	AGREEING   --ACCEPT(by the other party)-->             EXECUTING + a Commitment
//	AGREEING   --REJECT(other) | WITHDRAW(offerer) | validUntil passes--> CONVERSING or EXECUTING
//	any live   --ESCALATE-->                               ESCALATED (INFORM "resume" returns)
//	any live   --CLOSE-->                                  CLOSED
//
// # Commitments
//
// An accepted offer is a Commitment (id "cmt_…" from the hashes of offer
// and acceptance), PENDING until every party organisation's Receipt is
// held, then ACTIVE. It changes only by signed Actions (claim, confirm,
// dispute, resolve, cancel) applied by Commitment.Apply, and by Expire.
// RebuildCommitment and VerifyCommitment re-derive it from its signed
// facts. A Receipt (format asp/1.1) signs the full offer and acceptance
// hashes; a commitment is evidence to a third party only with every party
// organisation's receipt (VerifyEvidence), since the acceptor alone can
// sign an ACCEPT the offerer never received.
//
// A commitment's obligations (Obligations: delivery, payment, the COMMIT
// body's) derive from its signed terms; Watch and Breaches say at a given
// time which are breached, late or due for automatic confirmation, and
// ApplyAt judges an action against the receiver's clock. A dispute is a
// signed filing (Dispute, "dsp_…") opened with OpenDispute and walked up
// the escalation ladder by DisputeCase (Step, Rule, Tick): direct remedy,
// then the arbiter named in the terms, then the organisations' humans.
// docs/disputes.md describes them.
//
// Deadlines are judged at the envelope's timestamp and, for an ACCEPT, also
// against the receiver's clock (the now passed to Step): an offer past its
// validUntil, or an invitation past InviteTimeout, cannot be accepted late
// with a timestamp chosen inside the freshness window.
package protocol
