package ledger

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/aspnode/asp/ledger/internal/invariants"
	"github.com/cockroachdb/pebble/v2"
)

// request is one Append call waiting for the group commit.
type request struct {
	recs []Record
	out  []Entry
	err  error
	done chan struct{}
}

// Append adds records to the log, in order and contiguously, and returns
// them as entries once they are durable: synced to disk together with the
// Merkle tree that covers them. Anything that depends on an entry (a message
// sent, a receipt signed) must wait for Append to return.
//
// Concurrent Append calls share one synced Pebble commit (group commit): a
// single committer drains the queue, writes every waiting record in one
// batch, syncs once, and releases all the waiters. Throughput therefore
// grows with the number of concurrent callers.
//
// ctx bounds the wait to enter the queue only: once queued, the records are
// committed or failed, and Append waits for that outcome (a few
// milliseconds), so that a nil error always means durable. On error the
// records may or may not have been written; after a storage failure the
// ledger accepts no more writes (ErrFailed). Record bodies are not retained.
func (l *Ledger) Append(ctx context.Context, recs ...Record) ([]Entry, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	if l.opts.ReadOnly {
		return nil, fmt.Errorf("append: ledger is read-only")
	}
	for i := range recs {
		if err := recs[i].validate(); err != nil {
			return nil, fmt.Errorf("append: record %d: %w", i, err)
		}
	}
	r := &request{recs: recs, done: make(chan struct{})}
	select {
	case l.queue <- r:
	case <-l.closing:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	<-r.done
	if r.err != nil {
		return nil, fmt.Errorf("append: %w", r.err)
	}
	return r.out, nil
}

// run is the committer: it gathers waiting requests into one batch, commits
// it with a single sync, publishes the new tree state and releases the
// waiters. It is the only writer of entries, tiles and the tree head.
func (l *Ledger) run() {
	defer close(l.done)
	b := l.db.NewBatch()
	defer func() { b.Close() }()
	var reqs []*request
	for {
		reqs = reqs[:0]
		select {
		case <-l.closing:
			return
		default:
		}
		select {
		case r := <-l.queue:
			reqs = append(reqs, r)
		case <-l.closing:
			return
		}
		n := len(reqs[0].recs)
	gather:
		for n < l.opts.MaxBatch {
			select {
			case r := <-l.queue:
				reqs = append(reqs, r)
				n += len(r.recs)
			default:
				break gather
			}
		}
		b = l.commitBatch(b, reqs, n)
		for _, r := range reqs {
			close(r.done)
		}
		clear(reqs)
	}
}

// commitBatch writes the records of reqs (n in all) in one synced batch and
// sets each request's outcome. It returns the batch to use next time.
func (l *Ledger) commitBatch(b *pebble.Batch, reqs []*request, n int) *pebble.Batch {
	l.mu.RLock()
	cur, failed := l.mu.state, l.mu.failed
	l.mu.RUnlock()
	if failed == nil && l.broken != nil {
		failed = l.broken
	}
	if failed != nil {
		for _, r := range reqs {
			r.err = failed
		}
		return b
	}

	st := cur.clone()
	now := l.now()
	var (
		key   = make([]byte, 0, 4+2*MaxIDLen+16)
		hsh   = sha256.New()
		zero  = []byte{0}
		emitT = func(t fullTile) { b.Set(tileKey(t.level, t.index), t.data, nil) }
	)
	for _, r := range reqs {
		r.out = make([]Entry, len(r.recs))
		for i := range r.recs {
			rec := &r.recs[i]
			t := rec.Time
			if t.IsZero() {
				t = now
			}
			e := Entry{
				Index:      st.size,
				PrevHash:   st.tip,
				Time:       time.Unix(0, t.UnixNano()).UTC(),
				Kind:       rec.Kind,
				Session:    rec.Session,
				Commitment: rec.Commitment,
				Body:       rec.Body,
			}
			key = appendEntryKey(key[:0], e.Index)
			op := b.SetDeferred(len(key), e.encodedLen())
			copy(op.Key, key)
			e.appendEncoding(op.Value[:0])
			hsh.Reset()
			hsh.Write(zero)
			hsh.Write(op.Value)
			h := hsh.Sum(make([]byte, 0, 32))
			op.Finish()

			b.Set(appendKindIndexKey(key[:0], e.Kind, e.Index), nil, nil)
			if e.Session != "" {
				b.Set(appendIDIndexKey(key[:0], idxSession, e.Session, e.Index), nil, nil)
			}
			if e.Commitment != "" {
				b.Set(appendIDIndexKey(key[:0], idxCommitment, e.Commitment, e.Index), nil, nil)
			}
			st.appendLeaf(h, emitT)
			r.out[i] = e
		}
	}
	st.finish()
	b.Set(keyTree, st.marshal(), nil)

	if l.testHookBeforeCommit != nil {
		l.testHookBeforeCommit(n)
	}
	err := commitSync(b)
	if err != nil {
		l.log.Error("ledger commit failed; no more appends until reopened", "err", err)
		l.mu.Lock()
		l.mu.failed = fmt.Errorf("%w: %v", ErrFailed, err)
		l.mu.Unlock()
		for _, r := range reqs {
			r.err, r.out = l.mu.failed, nil
		}
		// The batch may be in any state after a failed commit: drop it.
		return l.db.NewBatch()
	}
	if invariants.Enabled {
		if err := checkStateInvariants(st); err != nil {
			panic(err)
		}
	}
	l.mu.Lock()
	l.mu.state = st
	l.mu.Unlock()
	l.stats.batches.Add(1)
	l.stats.entries.Add(uint64(n))
	b.Reset()
	return b
}

// commitSync commits b with pebble.Sync, turning a Pebble fatal error (which
// Pebble raises for a failed WAL write or sync) into an error.
func commitSync(b *pebble.Batch) (err error) {
	defer recoverFatal(&err)
	return b.Commit(pebble.Sync)
}

// checkStateInvariants re-derives what it can of a tree state.
func checkStateInvariants(st *treeState) error {
	hs, err := st.compactFromEdges()
	if err != nil {
		return err
	}
	stored := st.rng.Hashes()
	if len(hs) != len(stored) {
		return errors.New("ledger invariant: edge tiles and compact range differ in length")
	}
	for i := range hs {
		if string(hs[i]) != string(stored[i]) {
			return errors.New("ledger invariant: edge tiles and compact range differ")
		}
	}
	if st.size > 0 {
		e := st.edge[0][0]
		if len(e) > 0 && string(e[len(e)-1]) != string(st.tip[:]) {
			return errors.New("ledger invariant: tip is not the last leaf")
		}
	}
	return nil
}
