package node

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
	"golang.org/x/mod/sumdb/note"
)

// commitment is the node's side of one commitment it is a party to: the
// commitment as protocol derives it (pc: the signed offer and acceptance,
// the receipts held, the actions applied, an expiry), which only the driver
// installs (installCommitment), and the node's delivery bookkeeping.
//
// It is ACTIVE on this node when both receipts are exchanged: we hold the
// counterparty's receipt (proof it recorded the commitment) and we know it
// holds ours. The acceptor's node sends its receipt last, so it knows when
// the counterparty acknowledges that receipt; the proposer's node knows
// when that receipt arrives, because the acceptor only sends it after
// recording the proposer's receipt. Until then the node reports PENDING,
// even when pc holds both receipts.
type commitment struct {
	mu      slot        // one change at a time; a 1-slot semaphore so waits can time out
	sending atomic.Bool // an action of ours is in flight (mu held)
	id      string
	session string
	local   *localAgent
	remote  protocol.AgentID
	// acceptor is true when our agent's ACCEPT formed the commitment.
	acceptor bool
	index    uint64 // ledger index of our commitment entry
	// deadline is the signed terms' deliverBy (immutable; zero if none).
	deadline time.Time

	// Guarded by mu.
	pc     *protocol.Commitment
	ours   []byte // our receipt (CBOR), once made
	theirs []byte // the counterparty's receipt (CBOR), once held
	// oursRecorded is true once ours is in our ledger.
	oursRecorded bool
	// activated is true once both receipts are exchanged (recorded as
	// the commitment's ACTIVE update).
	activated bool
	// actions are the signed actions applied (CBOR), in order: a resent
	// one is recognised by its bytes.
	actions [][]byte
	// pendingAction is an action of ours recorded and sent but not yet
	// acknowledged; pendingApplied says it is applied already (recovered
	// from the ledger, which does not say whether it was acknowledged).
	pendingAction  []byte
	pendingApplied bool
	created        time.Time
	updated        time.Time
	// settled mirrors settledState(state), readable without mu (hasBusiness).
	settled atomic.Bool
}

// slot is a lock that can be tried and waited for with a deadline.
type slot chan struct{}

func newSlot() slot { return make(slot, 1) }

func (l slot) Lock()   { l <- struct{}{} }
func (l slot) Unlock() { <-l }

func (l slot) TryLock() bool {
	select {
	case l <- struct{}{}:
		return true
	default:
		return false
	}
}

// acquireForAction takes c.mu for the counterparty's action. As in a
// session (session.acquire), the commitment's proposer has priority: its
// action waits for an action of ours in flight, which the proposer's node
// refuses as busy; the acceptor's action is refused as busy at once while
// ours is in flight, so two nodes acting at once never wait on each other.
func (c *commitment) acquireForAction(ctx context.Context, priority bool) error {
	if c.mu.TryLock() {
		return nil
	}
	if !priority && c.sending.Load() {
		return errBusy
	}
	t := time.NewTimer(priorityWait)
	defer t.Stop()
	select {
	case c.mu <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errBusy
	}
}

// stateLocked is the commitment's state on this node: protocol's, except
// PENDING until both receipts are exchanged.
// REQUIRES: c.mu.
func (c *commitment) stateLocked() protocol.CommitmentState {
	if !c.activated {
		return protocol.CommitmentPending
	}
	return c.pc.State
}

func (n *Node) getCommitment(id string) *commitment { return n.commitments.get(id) }

// formed is a commitment a session step just formed, before its records
// are durable.
type formed struct {
	c *commitment
	// at is the position of the commitment record among the step's
	// records.
	at int
}

// formCommitment prepares the records of a commitment the session just
// formed (the commitment, and the counterparty's receipt when it came with
// the acknowledgement), to be appended after pre in one step, and the
// commitment to install once they are durable (installFormed).
// REQUIRES: s.lock.
func (n *Node) formCommitment(s *session, pc *protocol.Commitment, theirs, theirCert []byte, acceptor bool, pre []ledger.Record) (*formed, []ledger.Record, error) {
	// Entry bodies follow docs/ledger.md: a commitment entry holds the
	// commitment as formed (its signed offer and acceptance), a receipt
	// entry the receipt, so an offline verifier checks their signatures.
	body, err := protocol.EncodeCommitment(pc)
	if err != nil {
		return nil, nil, err
	}
	now := n.now()
	c := &commitment{
		mu: newSlot(), id: pc.ID, pc: pc, session: s.id, local: s.local, remote: s.remote,
		acceptor: acceptor, created: now, updated: now, deadline: pc.Deadline(),
	}
	recs := append(pre, ledger.CommitmentRecord(now, s.id, pc.ID, body))
	if theirs != nil {
		r, err := n.checkReceipt(c, theirs, theirCert)
		var next *protocol.Commitment
		if err == nil {
			next, err = c.pc.AddReceiptCached(r, n.sigs)
		}
		if err != nil {
			n.log.Warn("counterparty receipt refused", "commitment", c.id, "err", err)
		} else {
			recs = append(recs, ledger.ReceiptRecord(now, s.id, pc.ID, theirs))
			c.pc, c.theirs = next, theirs
		}
	}
	return &formed{c: c, at: len(pre)}, recs, nil
}

// installFormed puts a commitment whose records are durable in the book,
// makes our receipt and queues its event.
func (n *Node) installFormed(f *formed, o *outcome) *commitment {
	c := f.c
	c.index = o.ents[f.at].Index
	c.mu.Lock()
	defer c.mu.Unlock()
	installCommitment(c, c.pc)
	n.commitments.put(c)
	n.m.commitments.WithLabelValues(string(protocol.CommitmentPending)).Inc()
	if err := n.ensureOurReceiptLocked(o.ctx, c); err != nil {
		n.log.Warn("receipt", "commitment", c.id, "err", err)
	}
	o.publish(commitmentEvent(c), c.local.id.String())
	return c
}

// checkReceipt verifies a counterparty receipt for c: its signature by the
// counterparty's organisation, and its checkpoint, signed by the checkpoint
// key that organisation certified, covering the entry the receipt names. It
// returns the receipt, whose signature the node then knows (n.sigs).
// REQUIRES: c.mu, or c not yet shared.
func (n *Node) checkReceipt(c *commitment, raw, keyCert []byte) (*protocol.Receipt, error) {
	r, err := protocol.DecodeReceipt(raw)
	if err != nil {
		return nil, err
	}
	if r.CommitmentID != c.id {
		return nil, fmt.Errorf("%w: receipt for %s, want %s", protocol.ErrMalformed, r.CommitmentID, c.id)
	}
	if r.Org != c.remote.Org {
		return nil, fmt.Errorf("%w: receipt signed by %s, want %s", protocol.ErrNotParty, r.Org, c.remote.Org)
	}
	if err := n.checkReceiptCheckpoint(r, keyCert); err != nil {
		return nil, err
	}
	// The full offer and acceptance hashes, and the signature.
	if err := c.pc.CheckReceiptCached(r, n.sigs); err != nil {
		return nil, err
	}
	return r, nil
}

// checkReceiptCheckpoint checks that r's checkpoint is signed by the
// checkpoint key that r's organisation certified and covers r's entry.
// Verified key certificates are remembered (they are the same for every
// receipt of an organisation).
func (n *Node) checkReceiptCheckpoint(r *protocol.Receipt, keyCert []byte) error {
	origin := ledger.OriginFor(r.Org)
	var v note.Verifier
	if known, ok := n.keyCerts.get(string(keyCert)); ok && known.org == r.Org {
		v = known.v
	} else {
		var kc ledger.KeyCertificate
		if err := json.Unmarshal(keyCert, &kc); err != nil {
			return fmt.Errorf("%w: receipt without a valid checkpoint-key certificate", protocol.ErrBadSignature)
		}
		if kc.Org != r.Org || kc.Origin != origin {
			return fmt.Errorf("%w: checkpoint key certified for %s, receipt from %s", protocol.ErrBadSignature, kc.Org, r.Org)
		}
		if err := kc.Verify(); err != nil {
			return fmt.Errorf("%w: %v", protocol.ErrBadSignature, err)
		}
		var err error
		if v, err = kc.Verifier(); err != nil {
			return fmt.Errorf("%w: %v", protocol.ErrBadSignature, err)
		}
		n.keyCerts.add(string(keyCert), keyCertEntry{org: r.Org, v: v})
	}
	// Under load one checkpoint covers many receipts: a checkpoint already
	// verified for this organisation is not verified again.
	ck := r.Org + "\n" + string(r.Checkpoint)
	size, ok := n.checkpoints.get(ck)
	if !ok {
		cp, _, err := ledger.ParseCheckpoint(r.Checkpoint, origin, v)
		if err != nil {
			return fmt.Errorf("%w: receipt checkpoint: %v", protocol.ErrBadSignature, err)
		}
		size = cp.Size
		n.checkpoints.add(ck, size)
	}
	if size <= r.LedgerIndex {
		return fmt.Errorf("%w: checkpoint of size %d does not cover entry %d", protocol.ErrMalformed, size, r.LedgerIndex)
	}
	return nil
}

func (n *Node) ensureOurReceipt(ctx context.Context, c *commitment) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return n.ensureOurReceiptLocked(ctx, c)
}

// ensureOurReceiptLocked makes our receipt: our signature over the
// commitment (the full hashes of its offer and acceptance) with a signed
// checkpoint covering its entry. We sign it only for a commitment our own
// session state machine formed, so a receipt of ours is the evidence that
// the commitment exists for us (docs/trust.md).
//
// The receipt is recorded in our ledger with the commitment's activation, or
// by the resend loop (recordOurReceiptLocked), not before it is sent: it
// only attests to what is already durable (the commitment entry, and the
// checkpoint, whose intent is synced before it is signed), so a receipt lost
// in a crash is made again and the one the counterparty holds still verifies
// against our ledger. This keeps a synced write off each deal's path.
// REQUIRES: c.mu.
func (n *Node) ensureOurReceiptLocked(ctx context.Context, c *commitment) error {
	if c.ours != nil {
		return nil
	}
	cp, err := n.ckpt.covering(ctx, n.led, c.index)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	r, err := protocol.SignCommitmentReceipt(n.orgKey, c.pc, c.index, cp)
	if err != nil {
		return err
	}
	raw, err := protocol.EncodeReceipt(r)
	if err != nil {
		return err
	}
	r.SealedBy(n.sigs)
	next, err := c.pc.AddReceiptCached(r, n.sigs)
	if err != nil {
		return err
	}
	installCommitment(c, next)
	c.ours, c.oursRecorded = raw, false
	return nil
}

// ourReceiptRecord returns the record of our receipt if it is made but not
// yet recorded.
// REQUIRES: c.mu.
func (n *Node) ourReceiptRecord(c *commitment) []ledger.Record {
	if c.ours == nil || c.oursRecorded {
		return nil
	}
	return []ledger.Record{ledger.ReceiptRecord(n.now(), c.session, c.id, c.ours)}
}

// receiptRecordDelay is how long the resend loop leaves our receipt to be
// recorded with the commitment's activation before recording it alone.
const receiptRecordDelay = 5 * time.Second

// recordOurReceiptLocked records our receipt if it is not yet recorded.
// REQUIRES: c.mu.
func (n *Node) recordOurReceiptLocked(ctx context.Context, c *commitment) error {
	recs := n.ourReceiptRecord(c)
	if recs == nil {
		return nil
	}
	return n.drive(ctx, &step{what: "receipt", records: recs, settle: func(o *outcome) (*step, error) {
		c.oursRecorded = true
		return nil, nil
	}})
}

// sendReceipt sends our receipt to the counterparty (acceptor side); when
// it is acknowledged the commitment is ACTIVE. On failure the resend loop
// tries again.
func (n *Node) sendReceipt(ctx context.Context, c *commitment) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n.sendReceiptLocked(ctx, c)
}

// REQUIRES: c.mu.
func (n *Node) sendReceiptLocked(ctx context.Context, c *commitment) {
	st := &step{what: "receipt", to: c.remote.Org, send: &wireReq{Type: wireReceipt, Receipt: c.ours, KeyCert: n.keyCert},
		settle: func(o *outcome) (*step, error) {
			switch {
			case o.err != nil:
				n.log.Warn("receipt delivery failed; will resend", "commitment", c.id, "err", o.err)
				return nil, nil
			case o.refused():
				n.log.Warn("receipt refused", "commitment", c.id, "code", o.ack.Code, "msg", o.ack.Message)
				return nil, nil
			}
			return n.activateStep(c, nil, nil), nil
		}}
	if err := n.drive(ctx, st); err != nil {
		n.log.Error("activate", "commitment", c.id, "err", err)
	}
}

// activateStep records that both receipts are exchanged (with extra
// records before it) and installs it: the commitment is ACTIVE here. next
// is installed with it, when not nil (the counterparty's receipt).
// REQUIRES: c.mu.
func (n *Node) activateStep(c *commitment, extra []ledger.Record, install func()) *step {
	if c.activated {
		return nil
	}
	recs := append(n.ourReceiptRecord(c), extra...)
	recs = append(recs, ledger.CommitmentUpdateRecord(n.now(), c.session, c.id, ledger.CommitmentUpdate{State: protocol.CommitmentActive}))
	return &step{what: "activation", records: recs, settle: func(o *outcome) (*step, error) {
		if install != nil {
			install()
		}
		c.oursRecorded = c.ours != nil
		c.activated = true
		installCommitment(c, c.pc)
		c.updated = n.now()
		n.m.commitments.WithLabelValues(string(protocol.CommitmentActive)).Inc()
		o.publish(commitmentEvent(c), c.local.id.String())
		n.witnessSoon(c.remote.Org) // the receipts are exchanged: have the counterparty witness our head
		return nil, nil
	}}
}

// onReceipt receives the acceptor's receipt on the proposer's node.
func (n *Node) onReceipt(ctx context.Context, from string, raw, keyCert []byte) *wireResp {
	r, err := protocol.DecodeReceipt(raw)
	if err != nil {
		return refuseErr(err)
	}
	c := n.getCommitment(r.CommitmentID)
	if c == nil {
		return &wireResp{Code: codeNotFound, Message: "no commitment " + r.CommitmentID}
	}
	if c.remote.Org != from {
		return refuse(protocol.ErrNotParty, fmt.Errorf("node %s is not a party to %s", from, c.id))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r, err = n.checkReceipt(c, raw, keyCert)
	if err != nil {
		return refuseErr(err)
	}
	if c.theirs != nil {
		return &wireResp{} // already held: a resend
	}
	next, err := c.pc.AddReceiptCached(r, n.sigs)
	if err != nil {
		return refuseErr(err)
	}
	rec := ledger.ReceiptRecord(n.now(), c.session, c.id, raw)
	st := n.activateStep(c, []ledger.Record{rec}, func() { installCommitment(c, next); c.theirs = raw })
	if st == nil {
		// Activated without it (cannot happen: the proposer activates
		// on this receipt); hold it all the same.
		return &wireResp{}
	}
	if err := n.drive(ctx, st); err != nil {
		return refuseErr(err)
	}
	return &wireResp{}
}

// keyCertEntry is a verified checkpoint-key certificate.
type keyCertEntry struct {
	org string
	v   note.Verifier
}

// checkpointer coalesces checkpoint requests: a receipt needs a signed
// checkpoint covering its entry, and one checkpoint covers every entry
// before it.
type checkpointer struct {
	mu     sync.Mutex
	size   uint64
	latest []byte
}

func (cp *checkpointer) covering(ctx context.Context, l *ledger.Ledger, index uint64) ([]byte, error) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.latest != nil && cp.size > index {
		return cp.latest, nil
	}
	// A checkpoint signs at least the entries appended before it is asked for.
	size := l.Size()
	if size <= index {
		return nil, fmt.Errorf("ledger of size %d does not hold entry %d", size, index)
	}
	b, err := l.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	cp.latest, cp.size = b, size
	return b, nil
}

// Commitments implements api.Backend.
func (n *Node) Commitments(ctx context.Context, p api.Principal) ([]api.CommitmentInfo, error) {
	list := n.commitments.list(func(c *commitment) bool { return p.Admin || c.local.id.String() == p.Agent })
	out := make([]api.CommitmentInfo, 0, len(list))
	for _, c := range list {
		c.mu.Lock()
		out = append(out, commitmentInfoLocked(c))
		c.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// Commitment implements api.Backend.
func (n *Node) Commitment(ctx context.Context, p api.Principal, id string) (api.CommitmentInfo, error) {
	c := n.getCommitment(id)
	if c == nil || (!p.Admin && c.local.id.String() != p.Agent) {
		return api.CommitmentInfo{}, notFound("commitment", id)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return n.commitmentInfo(c), nil
}

// commitmentInfo is commitmentInfoLocked with c's obligations and disputes.
// REQUIRES: c.mu.
func (n *Node) commitmentInfo(c *commitment) api.CommitmentInfo {
	info := commitmentInfoLocked(c)
	n.obligationsLocked(c, &info)
	return info
}

// REQUIRES: c.mu.
func commitmentInfoLocked(c *commitment) api.CommitmentInfo {
	terms, _ := json.Marshal(c.pc.Terms)
	info := api.CommitmentInfo{
		CommitmentID: c.id,
		State:        string(c.stateLocked()),
		SessionID:    c.session,
		Terms:        terms,
		Parties:      []string{c.pc.Offer.Sender, c.pc.Acceptance.Sender},
		CreatedAt:    c.created,
		UpdatedAt:    c.updated,
		Signatures: []api.SignatureInfo{
			{Agent: c.pc.Offer.Sender, MessageID: c.pc.Offer.MessageID, Signature: base64.StdEncoding.EncodeToString(c.pc.Offer.Integrity.Signature)},
			{Agent: c.pc.Acceptance.Sender, MessageID: c.pc.Acceptance.MessageID, Signature: base64.StdEncoding.EncodeToString(c.pc.Acceptance.Integrity.Signature)},
		},
		Receipts: []api.ReceiptInfo{},
	}
	for _, raw := range [][]byte{c.ours, c.theirs} {
		if raw == nil {
			continue
		}
		r, err := protocol.DecodeReceipt(raw)
		if err != nil {
			continue
		}
		info.Receipts = append(info.Receipts, api.ReceiptInfo{
			Org: r.Org, LedgerIndex: r.LedgerIndex, Checkpoint: string(r.Checkpoint),
			Signature: base64.StdEncoding.EncodeToString(r.Signature),
		})
	}
	return info
}

// commitmentEvent is the event of c's state.
// REQUIRES: c.mu.
func commitmentEvent(c *commitment) api.Event {
	return api.Event{Type: "commitment", Data: map[string]any{
		"commitmentId": c.id, "state": c.stateLocked(), "sessionId": c.session,
	}}
}

func sessionEvent(s *session) api.Event {
	return api.Event{Type: "session", Data: map[string]any{
		"sessionId": s.id, "state": s.ps.State(), "from": s.remote.String(),
	}}
}
