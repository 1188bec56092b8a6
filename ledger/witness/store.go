package witness

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// State is what a witness remembers of one log: the latest checkpoint it
// cosigned.
type State struct {
	Size       uint64
	Root       [32]byte
	Checkpoint []byte // the log's signed checkpoint with this witness's cosignature
}

// Store keeps one State per origin. Implementations must make
// CompareAndSwap atomic and durable before it returns.
type Store interface {
	// Latest returns the state of origin; ok is false if there is none.
	Latest(origin string) (s State, ok bool, err error)
	// CompareAndSwap replaces the state of origin with next if the current
	// state has prev's size and root (prev nil: there is none), and
	// returns once the new state is durable. Otherwise it changes nothing
	// and returns an error wrapping ErrStale.
	CompareAndSwap(origin string, prev *State, next State) error
}

// PebbleStore is a Store in a Pebble database the caller owns, under a key
// prefix: key prefix || origin, value
//
//	1 || size(8) || root(32) || checkpoint
//
// Each check-and-set holds a lock for its origin across the read, the
// comparison and a batch committed with pebble.Sync, so two requests for
// one origin are serialized and a crash leaves either the old or the new
// value, never a mix.
type PebbleStore struct {
	db     *pebble.DB
	prefix []byte
	seed   maphash.Seed
	locks  [64]sync.Mutex
}

// NewPebbleStore returns a store keeping its states in db under prefix
// (non-empty; no other key of db should start with it).
func NewPebbleStore(db *pebble.DB, prefix []byte) (*PebbleStore, error) {
	if db == nil || len(prefix) == 0 {
		return nil, errors.New("witness: pebble store needs a database and a key prefix")
	}
	return &PebbleStore{db: db, prefix: bytes.Clone(prefix), seed: maphash.MakeSeed()}, nil
}

const stateVersion = 1

func (s *PebbleStore) key(origin string) []byte {
	return append(bytes.Clone(s.prefix), origin...)
}

func encodeState(st State) []byte {
	v := make([]byte, 0, 41+len(st.Checkpoint))
	v = append(v, stateVersion)
	v = binary.BigEndian.AppendUint64(v, st.Size)
	v = append(v, st.Root[:]...)
	return append(v, st.Checkpoint...)
}

func decodeState(origin string, v []byte) (State, error) {
	if len(v) < 41 || v[0] != stateVersion || len(v) > 41+MaxCheckpointSize {
		return State{}, fmt.Errorf("witness: stored state of %q is malformed", origin)
	}
	st := State{Size: binary.BigEndian.Uint64(v[1:9]), Checkpoint: bytes.Clone(v[41:])}
	copy(st.Root[:], v[9:41])
	return st, nil
}

// Latest implements Store.
func (s *PebbleStore) Latest(origin string) (State, bool, error) {
	v, c, err := s.db.Get(s.key(origin))
	if errors.Is(err, pebble.ErrNotFound) {
		return State{}, false, nil
	}
	if err != nil {
		return State{}, false, fmt.Errorf("witness: store: %w", err)
	}
	defer c.Close()
	st, err := decodeState(origin, v)
	return st, err == nil, err
}

// CompareAndSwap implements Store.
func (s *PebbleStore) CompareAndSwap(origin string, prev *State, next State) error {
	if len(next.Checkpoint) > MaxCheckpointSize {
		return fmt.Errorf("witness: store: checkpoint of %d bytes", len(next.Checkpoint))
	}
	mu := &s.locks[maphash.String(s.seed, origin)%uint64(len(s.locks))]
	mu.Lock()
	defer mu.Unlock()
	cur, ok, err := s.Latest(origin)
	if err != nil {
		return err
	}
	switch {
	case prev == nil && ok:
		return fmt.Errorf("%w: %q has size %d", ErrStale, origin, cur.Size)
	case prev != nil && (!ok || cur.Size != prev.Size || cur.Root != prev.Root):
		return fmt.Errorf("%w: %q no longer at size %d", ErrStale, origin, prev.Size)
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Set(s.key(origin), encodeState(next), nil); err != nil {
		return fmt.Errorf("witness: store: %w", err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("witness: store: %w", err)
	}
	return nil
}

// Each calls fn with every stored origin and state, in key order, until fn
// returns false.
func (s *PebbleStore) Each(fn func(origin string, st State) bool) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: s.prefix, UpperBound: prefixEnd(s.prefix)})
	if err != nil {
		return fmt.Errorf("witness: store: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok && bytes.HasPrefix(it.Key(), s.prefix); ok = it.Next() {
		origin := string(it.Key()[len(s.prefix):])
		st, err := decodeState(origin, it.Value())
		if err != nil {
			return err
		}
		if !fn(origin, st) {
			break
		}
	}
	return it.Error()
}

// prefixEnd returns the smallest key above every key starting with p, or
// nil if there is none (p is all 0xff).
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}
