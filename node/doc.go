// Package node composes protocol, ledger, p2p and registry into a running
// organisation node: it hosts agents, drives their sessions, records every
// decision in the ledger before acting on it, exchanges receipts with
// counterparties, and serves the local HTTP API.
//
// # Parts
//
//   - the move driver (drive.go): every change to a session or a
//     commitment, decided by protocol, is carried out by one function in one
//     order: append durably, send, install on acknowledgement, publish;
//   - session steps (moves.go), the session table and the API on sessions
//     (sessions.go), the peer handler (handler.go, wire.go), reconciliation
//     of diverged transcripts (reconcile.go), bounds on inbound sessions
//     (inbound.go);
//   - the commitment book (tables.go), receipts and activation
//     (commitments.go), actions and expiry (actions.go);
//   - recovery from the ledger and the resend loop (recover.go);
//   - requests to other nodes (transport.go), the audit chain served to
//     agents (audit.go);
//   - the agent store: the agents, their keys and tokens (agents.go,
//     secrets.go, seal.go);
//   - the registry and trust wiring (registry.go, trust.go), events (events.go).
//   - witnessing (witness.go: the witness protocol served; witnessround.go:
//     the rounds that have our ledger witnessed; equivocation.go: proofs
//     gossiped and the hard rule; witnessapi.go: the API on them).
//
// # Concurrency and lock order
//
// Each session is driven under its own lock (one move at a time); the
// ledger's group commit lets many sessions share one fsync. The node owns
// every goroutine it starts and stops them in Close.
//
// Locks are taken in this order, outermost first; a goroutine holding one
// takes only locks below it:
//
//	session.lock       one move at a time in a session (a 1-slot semaphore, so waits time out)
//	commitment.mu      one change at a time to a commitment
//	sessionTable.mu    the session table and its count of inbound sessions
//	commitmentBook.mu  the commitment book
//	leaves             agentStore.change then agentStore.mu, trustState.mu, checkpointer.mu, witnessing.mu,
//	                   the memos, the event bus, the ledger's own locks
//
// A session step may take the lock of the commitment it forms (an ACCEPT),
// and a commitment step reads the session table (its session); nothing
// takes a session lock while holding a commitment's. Readers that must not
// wait for a session lock read its published view (session.view).
package node
