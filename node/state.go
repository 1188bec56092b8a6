package node

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/fxamacker/cbor/v2"
)

// state is the node's private store (DIR/state): agent keys and token
// hashes. Everything a counterparty or auditor may need is in the ledger;
// this store holds only what must stay secret.
//
// Keys:
//
//	a/<name>        -> agentRecord (CBOR)
//	t/<sha256(tok)> -> agent name
type state struct {
	db *pebble.DB
}

// agentRecord is a hosted agent.
type agentRecord struct {
	Name         string    `cbor:"1,keyasint"`
	Capabilities []string  `cbor:"2,keyasint"`
	Description  string    `cbor:"3,keyasint,omitempty"`
	Seed         []byte    `cbor:"4,keyasint"` // Ed25519 seed
	Certificate  []byte    `cbor:"5,keyasint"` // protocol.Certificate, CBOR
	TokenHash    []byte    `cbor:"6,keyasint"`
	Created      time.Time `cbor:"7,keyasint"`
}

func (a *agentRecord) key() ed25519.PrivateKey { return ed25519.NewKeyFromSeed(a.Seed) }

type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any)  { p.l.Debug(fmt.Sprintf(format, args...)) }
func (p pebbleLogger) Errorf(format string, args ...any) { p.l.Error(fmt.Sprintf(format, args...)) }
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...))
	panic(fmt.Sprintf(format, args...))
}

func openState(dir string, fs vfs.FS, log *slog.Logger) (*state, error) {
	// The state store is small (agents and tokens): a small cache and
	// memtable keep an idle node's memory down.
	cache := pebble.NewCache(1 << 20)
	defer cache.Unref()
	opts := &pebble.Options{Logger: pebbleLogger{log}, Cache: cache, MemTableSize: 1 << 20}
	if fs != nil {
		opts.FS = fs
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", dir, err)
	}
	return &state{db: db}, nil
}

func (s *state) Close() error { return s.db.Close() }

func tokenHash(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// putAgent stores a new agent durably. It fails with errDuplicate if the name
// is taken.
func (s *state) putAgent(a *agentRecord) error {
	k := []byte("a/" + a.Name)
	if _, c, err := s.db.Get(k); err == nil {
		c.Close()
		return errDuplicate
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return err
	}
	v, err := cbor.Marshal(a)
	if err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(k, v, nil)
	_ = b.Set([]byte("t/"+hex.EncodeToString(a.TokenHash)), []byte(a.Name), nil)
	return b.Commit(pebble.Sync)
}

func (s *state) deleteAgent(a *agentRecord) error {
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Delete([]byte("a/"+a.Name), nil)
	_ = b.Delete([]byte("t/"+hex.EncodeToString(a.TokenHash)), nil)
	return b.Commit(pebble.Sync)
}

func (s *state) agents() ([]*agentRecord, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte("a/"), UpperBound: []byte("a0")})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []*agentRecord
	for it.First(); it.Valid(); it.Next() {
		var a agentRecord
		if err := cbor.Unmarshal(it.Value(), &a); err != nil {
			return nil, fmt.Errorf("state: agent %q: %w", it.Key(), err)
		}
		out = append(out, &a)
	}
	return out, it.Error()
}

// tokenMatches compares token hashes in constant time.
func tokenMatches(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

var _ io.Closer = (*state)(nil)
