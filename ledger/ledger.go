package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/mod/sumdb/note"
)

// Options configure Open. The zero value opens a ledger on the real file
// system that can append but not sign checkpoints.
type Options struct {
	// FS is the file system Pebble runs on. Default vfs.Default; tests use
	// vfs.NewMem or vfs.NewCrashableMem.
	FS vfs.FS

	// Logger receives Pebble's messages (info at debug level). Default:
	// discard. Pebble never writes to stderr.
	Logger *slog.Logger

	// Origin names this log in its checkpoints (the first line of a C2SP
	// checkpoint), for example OriginFor(peerID). Required with Signer.
	Origin string

	// Signer signs checkpoints. Its name must equal Origin. Without it,
	// Checkpoint and Export return ErrNoSigner. See NewCheckpointSigner.
	Signer note.Signer

	// KeyCertificate, if set, certifies Signer's key with the organization's
	// identity key. Open checks that it verifies and matches Signer, and
	// stores it; Export puts every stored certificate in the bundle.
	KeyCertificate *KeyCertificate

	// Now is the clock that stamps records whose Time is zero. Default time.Now.
	Now func() time.Time

	// ReadOnly opens the store for reading and Check only: Append and
	// Checkpoint return an error. A ReadOnly ledger opens even when its tree
	// is corrupt, so that Check can name the first bad entry.
	ReadOnly bool

	// MaxBatch bounds the records that one group commit writes. Default 8192.
	MaxBatch int

	// AllowRollback opens a store that holds fewer entries than the ledger
	// acknowledged (see ErrRolledBack), on purpose: Open logs it as an
	// error, appends a KindRollback entry saying what was acknowledged and
	// what was found, and records the new size as acknowledged. Without it
	// (the default) Open refuses such a store. Ignored when ReadOnly.
	AllowRollback bool

	// Pebble, if set, is called last on the Pebble options (for tuning).
	Pebble func(*pebble.Options)
}

// Ledger is an append-only, hash-chained, Merkle-tree log of records on
// Pebble. All methods are safe for concurrent use.
type Ledger struct {
	db   *pebble.DB
	opts Options
	now  func() time.Time
	log  *slog.Logger

	// broken is set when Open found the tree inconsistent (ReadOnly only).
	broken error

	// dmg records the damaged store files Pebble reports (damage.go).
	dmg *damage

	// ack is the acknowledged-size record (acked.go); fresh is set when
	// Open created the store.
	ack   *ackFile
	fresh bool

	queue   chan *request
	closing chan struct{}
	done    chan struct{}

	// closeMu guards db against use after Close: readers hold it shared.
	closeMu sync.RWMutex
	closed  bool

	mu struct {
		sync.RWMutex
		// INVARIANT: state describes exactly the entries that are durable
		// and acknowledged; it is replaced, never modified.
		state *treeState
		// failed is the sticky error of a failed commit.
		failed error
	}

	// cpMu serializes Checkpoint.
	cpMu sync.Mutex

	// tiles caches stored tiles of levels 1 and up (proof.go).
	tiles struct {
		sync.Mutex
		m map[[2]uint64][]byte
	}

	stats struct {
		batches     atomic.Uint64
		entries     atomic.Uint64
		bytes       atomic.Uint64
		commitNanos atomic.Uint64
	}

	// testHookBeforeCommit, if set, runs in the committer before each
	// batch is written, with the number of records in it.
	testHookBeforeCommit func(records int)
}

// Open opens (creating if needed) the ledger stored in dir.
func Open(dir string, opts Options) (*Ledger, error) {
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	if opts.Logger == nil {
		opts.Logger = discardLogger()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 8192
	}
	if opts.Signer != nil {
		if err := validOrigin(opts.Origin); err != nil {
			return nil, fmt.Errorf("open ledger: %w", err)
		}
		if opts.Signer.Name() != opts.Origin {
			return nil, fmt.Errorf("open ledger: signer name %q differs from origin %q", opts.Signer.Name(), opts.Origin)
		}
	}
	if opts.KeyCertificate != nil {
		if opts.Signer == nil {
			return nil, fmt.Errorf("open ledger: a key certificate needs a signer")
		}
		if err := opts.KeyCertificate.matches(opts.Signer, opts.Origin); err != nil {
			return nil, fmt.Errorf("open ledger: %w", err)
		}
	}

	cache := pebble.NewCache(32 << 20)
	defer cache.Unref()
	dmg := new(damage)
	po := &pebble.Options{
		FS:            opts.FS,
		Logger:        pebbleLogger{opts.Logger},
		EventListener: eventListener(opts.Logger, dmg),
		ReadOnly:      opts.ReadOnly,
		Cache:         cache,
		// Pebble preallocates each write-ahead log to 110% of
		// MemTableSize and keeps a log per queued memtable until the
		// queue holds MemTableSize (memtables start at 256 KiB and
		// double), plus up to MemTableStopWritesThreshold+1 recycled
		// logs. At 64 MiB a fresh ledger held eight logs of 70 MiB for
		// 40 MiB of entries; at 4 MiB (Pebble's default) its logs take
		// about 20 MiB at most, and every append is synced anyway.
		MemTableSize: 4 << 20,
	}
	// Entries are read in long runs (Check, Export, Entries): larger
	// blocks mean fewer block reads per entry.
	for i := range po.Levels {
		po.Levels[i].BlockSize = 32 << 10
	}
	if opts.Pebble != nil {
		opts.Pebble(po)
	}
	db, err := openPebble(dir, po)
	if err != nil {
		return nil, fmt.Errorf("open ledger: %w", dmg.storeErr(err))
	}
	l := &Ledger{
		dmg:     dmg,
		db:      db,
		opts:    opts,
		now:     opts.Now,
		log:     opts.Logger,
		queue:   make(chan *request),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	if err := func() (err error) { defer recoverFatal(&err); return dmg.storeErr(l.load()) }(); err != nil {
		if !opts.ReadOnly || !errors.Is(err, ErrCorruption) {
			db.Close()
			return nil, fmt.Errorf("open ledger: %w", err)
		}
		l.broken = err
		l.mu.state = newTreeState()
	}
	var rolledBack *RolledBackError
	if l.broken == nil {
		l.ack, err = l.checkAck(dir, l.fresh)
		if errors.As(err, &rolledBack) && opts.AllowRollback && !opts.ReadOnly {
			err = nil
		}
		if err != nil {
			l.ack.close()
			db.Close()
			return nil, fmt.Errorf("open ledger: %w", dmg.storeErr(err))
		}
	}
	if opts.KeyCertificate != nil && !opts.ReadOnly {
		if err := l.storeCertificate(opts.KeyCertificate); err != nil {
			l.ack.close()
			db.Close()
			return nil, fmt.Errorf("open ledger: %w", err)
		}
	}
	if opts.ReadOnly {
		close(l.done)
	} else {
		go l.run()
	}
	if rolledBack != nil {
		if err := l.recordRollback(dir, rolledBack); err != nil {
			l.Close()
			return nil, fmt.Errorf("open ledger: %w", err)
		}
	}
	return l, nil
}

// recordRollback appends a KindRollback entry for a rollback that
// Options.AllowRollback accepted, and makes the new size the acknowledged
// one.
func (l *Ledger) recordRollback(dir string, rb *RolledBackError) error {
	rb.Dir = dir
	l.log.Error("LEDGER ROLLED BACK: starting anyway because rollback is allowed; recording it in the ledger",
		"dir", dir, "acknowledged", rb.Acknowledged, "found", rb.Found, "record_missing", rb.Missing)
	if _, err := l.Append(context.Background(), Record{Kind: KindRollback, Body: rollbackBody(rb)}); err != nil {
		return fmt.Errorf("record rollback: %w", err)
	}
	st := l.state()
	if rb.Missing {
		l.ack.close()
		a, err := createAck(l.opts.FS, dir, st.size, st.root)
		if err != nil {
			return err
		}
		l.ack = a
		return nil
	}
	return l.ack.advance(st.size, st.root, true)
}

// openPebble opens the store, turning a Pebble fatal error into an error.
func openPebble(dir string, po *pebble.Options) (db *pebble.DB, err error) {
	defer recoverFatal(&err)
	return pebble.Open(dir, po)
}

// load checks the format version and rebuilds the tree state.
func (l *Ledger) load() error {
	v, err := l.get(keyFormat)
	switch {
	case errors.Is(err, ErrNotFound):
		it, err := l.db.NewIter(nil)
		if err != nil {
			return err
		}
		empty := !it.First()
		it.Close()
		if !empty {
			return corrupt("format", "store holds data but no format version")
		}
		l.fresh = true
		if !l.opts.ReadOnly {
			if err := l.db.Set(keyFormat, binary.BigEndian.AppendUint32(nil, FormatVersion), pebble.Sync); err != nil {
				return err
			}
		}
	case err != nil:
		return err
	case len(v) != 4:
		return corrupt("format", "format version of %d bytes", len(v))
	case binary.BigEndian.Uint32(v) > FormatVersion:
		return fmt.Errorf("%w: store format %d, this build reads up to %d", ErrFormatTooNew, binary.BigEndian.Uint32(v), FormatVersion)
	}

	st, err := loadTree(l.db)
	if err != nil {
		return err
	}
	l.mu.state = st
	return nil
}

// reader is what loadTree and Check read from: a DB or a snapshot.
type reader interface {
	Get(key []byte) ([]byte, io.Closer, error)
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

func getFrom(r reader, key []byte) ([]byte, error) {
	v, c, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(v)
	c.Close()
	return out, nil
}

// loadTree reads the tree head and rebuilds the edge tiles from the last
// (at most 255) entries and full tiles of each level, checking them against
// the stored compact range. It reads O(log n) tiles and at most 255 entries.
func loadTree(r reader) (*treeState, error) {
	v, err := getFrom(r, keyTree)
	if errors.Is(err, ErrNotFound) {
		// No entries yet; there must be none stored.
		it, err := r.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixEntry}, UpperBound: []byte{prefixEntry + 1}})
		if err != nil {
			return nil, err
		}
		defer it.Close()
		if it.First() {
			return nil, corrupt("tree", "entries stored but no tree head")
		}
		return newTreeState(), nil
	}
	if err != nil {
		return nil, err
	}
	st, err := unmarshalTreeHead(v)
	if err != nil {
		return nil, err
	}
	for lvl := 0; lvl < maxTileLevels && st.size>>(tileHeight*lvl) > 0; lvl++ {
		m := st.size >> (tileHeight * lvl)
		w := m & (tileWidth - 1)
		start := m - w
		e := &st.edge[lvl]
		for j := start; j < m; j++ {
			var h []byte
			if lvl == 0 {
				b, err := getFrom(r, entryKey(j))
				if errors.Is(err, ErrNotFound) {
					return nil, corruptEntry(j, "missing")
				}
				if err != nil {
					return nil, err
				}
				ent, err := DecodeEntry(b)
				if err != nil {
					return nil, corruptEntry(j, "%v", err)
				}
				if ent.Index != j {
					return nil, corruptEntry(j, "holds index %d", ent.Index)
				}
				lh := LeafHash(b)
				h = lh[:]
			} else {
				t, err := getFrom(r, tileKey(uint8(lvl-1), j))
				if errors.Is(err, ErrNotFound) || (err == nil && len(t) != tileBytes) {
					return nil, corrupt("tile", "tile %d/%d missing or short", lvl-1, j)
				}
				if err != nil {
					return nil, err
				}
				h = tileRoot(t)
			}
			e[0] = append(e[0], h)
		}
		for q := 1; q < tileHeight; q++ {
			for i := 0; i+1 < len(e[q-1]); i += 2 {
				e[q] = append(e[q], hashChildren(e[q-1][i], e[q-1][i+1]))
			}
		}
	}
	hs, err := st.compactFromEdges()
	if err != nil {
		return nil, corrupt("tree", "%v", err)
	}
	if st.rng, err = rangeFactory.NewRange(0, st.size, hs); err != nil {
		return nil, corrupt("tree", "%v", err)
	}
	root := emptyRoot[:]
	if st.size > 0 {
		root, _ = st.rng.GetRootHash(nil)
	}
	if !bytes.Equal(root, st.root[:]) {
		return nil, corrupt("tree", "the last entries and stored tiles do not give the root in the tree head")
	}
	if st.size > 0 {
		var tip []byte
		if e := st.edge[0][0]; len(e) > 0 {
			tip = e[len(e)-1]
		} else {
			t, err := getFrom(r, tileKey(0, (st.size-1)>>tileHeight))
			if err != nil || len(t) != tileBytes {
				return nil, corrupt("tile", "tile 0/%d missing or short", (st.size-1)>>tileHeight)
			}
			tip = t[(tileWidth-1)*32 : tileWidth*32]
		}
		if !bytes.Equal(tip, st.tip[:]) {
			return nil, corruptEntry(st.size-1, "hash does not match the tree head")
		}
	}
	return st, nil
}

// Close stops accepting appends, waits for the group commit in flight, and
// closes the store. Appends queued but not yet committed fail with ErrClosed.
func (l *Ledger) Close() error {
	l.closeMu.Lock()
	if l.closed {
		l.closeMu.Unlock()
		return ErrClosed
	}
	l.closed = true
	close(l.closing)
	l.closeMu.Unlock()
	<-l.done
	var err error
	if !l.opts.ReadOnly && l.failure() == nil {
		// Every committed entry is synced: acknowledge them all, so that
		// a damaged log is caught on the next Open even without a
		// checkpoint since.
		st := l.state()
		err = l.ack.advance(st.size, st.root, false)
	}
	if cerr := l.ack.close(); err == nil {
		err = cerr
	}
	func() {
		defer recoverFatal(&err)
		if cerr := l.db.Close(); err == nil {
			err = cerr
		}
	}()
	return err
}

// rlock takes closeMu shared, failing if the ledger is closed.
func (l *Ledger) rlock() error {
	l.closeMu.RLock()
	if l.closed {
		l.closeMu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (l *Ledger) runlock() { l.closeMu.RUnlock() }

func (l *Ledger) get(key []byte) ([]byte, error) { return getFrom(l.db, key) }

func (l *Ledger) state() *treeState {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.state
}

// Size returns the number of durable entries.
func (l *Ledger) Size() uint64 { return l.state().size }

// Root returns the number of durable entries and the RFC 6962 Merkle root
// over them.
func (l *Ledger) Root() (size uint64, root [32]byte) {
	st := l.state()
	return st.size, st.root
}

// Stats are counters of the group commit.
type Stats struct {
	Batches    uint64        // synced commits
	Entries    uint64        // entries written by them
	Bytes      uint64        // bytes of Pebble batches committed (entries, indexes, tiles, tree head)
	CommitTime time.Duration // time spent in synced commits, in all
}

// Stats returns counters of the group commit since Open.
func (l *Ledger) Stats() Stats {
	return Stats{
		Batches:    l.stats.batches.Load(),
		Entries:    l.stats.entries.Load(),
		Bytes:      l.stats.bytes.Load(),
		CommitTime: time.Duration(l.stats.commitNanos.Load()),
	}
}

// Entry returns entry i. Requires i < Size(); otherwise ErrNotFound.
func (l *Ledger) Entry(i uint64) (_ Entry, err error) {
	defer func() { err = l.dmg.storeErr(err) }()
	if err := l.rlock(); err != nil {
		return Entry{}, err
	}
	defer l.runlock()
	if i >= l.state().size {
		return Entry{}, fmt.Errorf("entry %d: %w", i, ErrNotFound)
	}
	return l.entryLocked(i)
}

// entryLocked reads and decodes entry i. REQUIRES: closeMu held.
func (l *Ledger) entryLocked(i uint64) (Entry, error) {
	b, err := l.get(entryKey(i))
	if errors.Is(err, ErrNotFound) {
		return Entry{}, corruptEntry(i, "missing")
	}
	if err != nil {
		return Entry{}, fmt.Errorf("entry %d: %w", i, err)
	}
	return decodeAt(i, b)
}

func decodeAt(i uint64, b []byte) (Entry, error) {
	e, err := DecodeEntry(b)
	if err != nil {
		return Entry{}, corruptEntry(i, "%v", err)
	}
	if e.Index != i {
		return Entry{}, corruptEntry(i, "holds index %d", e.Index)
	}
	return e, nil
}

// EntryHash returns the leaf hash of entry i (the value entry i+1 records
// as PrevHash). Requires i < Size().
func (l *Ledger) EntryHash(i uint64) (_ [32]byte, err error) {
	defer func() { err = l.dmg.storeErr(err) }()
	if err := l.rlock(); err != nil {
		return [32]byte{}, err
	}
	defer l.runlock()
	if i >= l.state().size {
		return [32]byte{}, fmt.Errorf("entry %d: %w", i, ErrNotFound)
	}
	b, err := l.get(entryKey(i))
	if err != nil {
		return [32]byte{}, fmt.Errorf("entry %d: %w", i, err)
	}
	return LeafHash(b), nil
}

// Entries returns up to limit entries starting at index from, in order.
// It returns fewer when the log ends first, and none when from ≥ Size().
func (l *Ledger) Entries(from, limit uint64) (_ []Entry, err error) {
	defer func() { err = l.dmg.storeErr(err) }()
	if err := l.rlock(); err != nil {
		return nil, err
	}
	defer l.runlock()
	size := l.state().size
	if from >= size || limit == 0 {
		return nil, nil
	}
	end := size
	if limit < size-from {
		end = from + limit
	}
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: entryKey(from), UpperBound: entryKey(end)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	out := make([]Entry, 0, end-from)
	next := from
	for ok := it.First(); ok; ok = it.Next() {
		i := binary.BigEndian.Uint64(it.Key()[1:])
		if i != next {
			return nil, corruptEntry(next, "missing")
		}
		e, err := decodeAt(i, bytes.Clone(it.Value()))
		if err != nil {
			return nil, err
		}
		out = append(out, e)
		next++
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	if next != end {
		return nil, corruptEntry(next, "missing")
	}
	return out, nil
}

// ByCommitment returns the entries recorded for a commitment id, in log order.
func (l *Ledger) ByCommitment(id string) ([]Entry, error) {
	return l.byIndex(idPrefix(idxCommitment, id), 0, ^uint64(0))
}

// BySession returns the entries recorded for a session id, in log order.
func (l *Ledger) BySession(id string) ([]Entry, error) {
	return l.byIndex(idPrefix(idxSession, id), 0, ^uint64(0))
}

// ByKind returns up to limit entries of kind k with index ≥ from, in log
// order.
func (l *Ledger) ByKind(k Kind, from, limit uint64) ([]Entry, error) {
	return l.byIndex(kindPrefix(k), from, limit)
}

// byIndex reads entries through an index whose keys are prefix + index(8).
func (l *Ledger) byIndex(prefix []byte, from, limit uint64) (_ []Entry, err error) {
	defer func() { err = l.dmg.storeErr(err) }()
	if err := l.rlock(); err != nil {
		return nil, err
	}
	defer l.runlock()
	size := l.state().size
	if limit == 0 || from >= size {
		return nil, nil
	}
	lower := binary.BigEndian.AppendUint64(bytes.Clone(prefix), from)
	upper := binary.BigEndian.AppendUint64(bytes.Clone(prefix), size)
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []Entry
	for ok := it.First(); ok && uint64(len(out)) < limit; ok = it.Next() {
		k := it.Key()
		if len(k) != len(prefix)+8 {
			return nil, corrupt("index", "index key of %d bytes under a prefix of %d", len(k), len(prefix))
		}
		e, err := l.entryLocked(binary.BigEndian.Uint64(k[len(prefix):]))
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, it.Error()
}

// pebbleLogger sends Pebble's messages to a slog.Logger. Fatalf panics with
// a pebbleFatal: Pebble must not continue past it, and the committer turns
// it into an error for the Append calls in flight.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(strings.TrimSpace(fmt.Sprintf(format, args...)), "component", "pebble")
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(strings.TrimSpace(fmt.Sprintf(format, args...)), "component", "pebble")
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(format, args...))
	p.l.Error(msg, "component", "pebble", "fatal", true)
	panic(pebbleFatal(msg))
}

type pebbleFatal string

// recoverFatal turns a pebbleFatal panic into *err; other panics continue.
func recoverFatal(err *error) {
	if r := recover(); r != nil {
		f, ok := r.(pebbleFatal)
		if !ok {
			panic(r)
		}
		*err = fmt.Errorf("storage: %s", string(f))
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
