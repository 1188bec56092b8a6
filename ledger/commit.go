package ledger

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
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

// maxBatchBytes bounds the size of one group commit (it may exceed it by
// one request).
const maxBatchBytes = 64 << 20

// pending is a batch being built by the preparer or committed by the
// syncer: the records of reqs, written into b on top of the tree state that
// the previous pending batch leaves (st is the state after this one).
type pending struct {
	b    *pebble.Batch
	st   *treeState
	reqs []*request
	n    int // records
	now  time.Time
	hsh  hash.Hash
}

// run is the group commit, in two stages so that the disk is never idle
// while work waits:
//
//   - the preparer (this goroutine) takes requests off the queue and writes
//     them at once into the open batch: entries, index keys, completed tiles,
//     on top of the state the previous batch leaves;
//   - the syncer commits one batch at a time with pebble.Sync, then
//     publishes its tree state and releases its waiters.
//
// The open batch is handed to the syncer as soon as the syncer is free, so
// each sync carries everything that arrived during the previous one. The
// two goroutines are the only writers of entries, tiles and the tree head.
func (l *Ledger) run() {
	toSync := make(chan *pending)
	free := make(chan *pebble.Batch, 2)
	synced := make(chan struct{})
	go l.syncer(toSync, free, synced)
	defer func() {
		close(toSync)
		<-synced
		close(l.done)
	}()

	work := l.state()
	var open *pending
	newPending := func() *pending {
		p := &pending{st: work.clone(), now: l.now(), hsh: sha256.New()}
		select {
		case p.b = <-free:
		default:
			p.b = l.db.NewBatch()
		}
		return p
	}
	add := func(r *request) {
		if err := l.failure(); err != nil {
			r.err = err
			close(r.done)
			return
		}
		if open == nil {
			open = newPending()
		}
		open.add(r)
		work = open.st
	}
	for {
		if open == nil {
			// Idle: wait for a request.
			select {
			case <-l.closing:
				return
			default:
			}
			select {
			case r := <-l.queue:
				add(r)
			case <-l.closing:
				return
			}
			continue
		}
		queue := l.queue
		if open.n >= l.opts.MaxBatch || open.b.Len() >= maxBatchBytes {
			queue = nil // full: only hand it over
		}
		select {
		case r := <-queue:
			add(r)
		case toSync <- open:
			open = nil
		case <-l.closing:
			// Commit what was accepted, then stop.
			toSync <- open
			return
		}
	}
}

// failure returns the sticky error that stops writes, if any.
func (l *Ledger) failure() error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.mu.failed != nil {
		return l.mu.failed
	}
	return l.broken
}

// add writes the records of r into the batch.
func (p *pending) add(r *request) {
	st, b := p.st, p.b
	var key [4 + 2*MaxIDLen + 16]byte
	zero := []byte{0}
	emit := func(t fullTile) { b.Set(tileKey(t.level, t.index), t.data, nil) }
	r.out = make([]Entry, len(r.recs))
	for i := range r.recs {
		rec := &r.recs[i]
		t := rec.Time
		if t.IsZero() {
			t = p.now
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
		k := appendEntryKey(key[:0], e.Index)
		op := b.SetDeferred(len(k), e.encodedLen())
		copy(op.Key, k)
		e.appendEncoding(op.Value[:0])
		p.hsh.Reset()
		p.hsh.Write(zero)
		p.hsh.Write(op.Value)
		h := p.hsh.Sum(make([]byte, 0, 32))
		op.Finish()

		b.Set(appendKindIndexKey(key[:0], e.Kind, e.Index), nil, nil)
		if e.Session != "" {
			b.Set(appendIDIndexKey(key[:0], idxSession, e.Session, e.Index), nil, nil)
		}
		if e.Commitment != "" {
			b.Set(appendIDIndexKey(key[:0], idxCommitment, e.Commitment, e.Index), nil, nil)
		}
		st.appendLeaf(h, emit)
		r.out[i] = e
	}
	p.reqs = append(p.reqs, r)
	p.n += len(r.recs)
}

// syncer commits pending batches in order, each with one sync.
func (l *Ledger) syncer(in <-chan *pending, free chan<- *pebble.Batch, done chan<- struct{}) {
	defer close(done)
	for p := range in {
		err := l.failure()
		if err == nil {
			p.st.finish()
			p.b.Set(keyTree, p.st.marshal(), nil)
			if l.testHookBeforeCommit != nil {
				l.testHookBeforeCommit(p.n)
			}
			t0 := time.Now()
			nb := p.b.Len()
			err = commitSync(p.b)
			l.stats.commitNanos.Add(uint64(time.Since(t0)))
			l.stats.bytes.Add(uint64(nb))
			if err != nil {
				l.log.Error("ledger commit failed; no more appends until reopened", "err", err)
				l.mu.Lock()
				if l.mu.failed == nil {
					l.mu.failed = fmt.Errorf("%w: %v", ErrFailed, err)
				}
				err = l.mu.failed
				l.mu.Unlock()
			}
		}
		if err != nil {
			// The batch may be in any state after a failed commit: drop it.
			for _, r := range p.reqs {
				r.err, r.out = err, nil
				close(r.done)
			}
			continue
		}
		if invariants.Enabled {
			if err := checkStateInvariants(p.st); err != nil {
				panic(err)
			}
		}
		l.mu.Lock()
		l.mu.state = p.st
		l.mu.Unlock()
		l.stats.batches.Add(1)
		l.stats.entries.Add(uint64(p.n))
		for _, r := range p.reqs {
			close(r.done)
		}
		p.b.Reset()
		select {
		case free <- p.b:
		default:
			p.b.Close()
		}
	}
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
