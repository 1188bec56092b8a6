package node

import (
	"context"
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

// secretStore is the node's private store (DIR/state): agent keys and
// token hashes. Everything a counterparty or auditor may need is in the ledger;
// this store holds only what must stay secret.
//
// Keys:
//
//	a/<name>        -> agentRecord (CBOR), its seed sealed (seal.go)
//	t/<sha256(tok)> -> agent name
//	m/seeds-sealed  -> present once no seed is stored in clear in any file
//	witness/state/<origin>      -> the witness's latest cosigned state of a counterparty's log (witness.go)
//	witness/cosigned/<peer id>  -> the latest of our checkpoints that witness cosigned (witnessround.go)
//
// Its files are mode 0600 (privateFS). A store written before seeds were
// sealed is migrated when opened: each seed is sealed in place, then the
// store is flushed and compacted so that no file keeps the clear seed.
type secretStore struct {
	db   *pebble.DB
	seal *sealer
}

// agentRecord is a hosted agent.
type agentRecord struct {
	Name         string   `cbor:"1,keyasint"`
	Capabilities []string `cbor:"2,keyasint"`
	Description  string   `cbor:"3,keyasint,omitempty"`
	// Seed is the Ed25519 seed, in memory. Stored only by a node from
	// before sealing; a record read from the store has it unsealed.
	Seed        []byte    `cbor:"4,keyasint,omitempty"`
	Certificate []byte    `cbor:"5,keyasint"` // protocol.Certificate, CBOR
	TokenHash   []byte    `cbor:"6,keyasint"`
	Created     time.Time `cbor:"7,keyasint"`
	// SealedSeed is Seed sealed with the node's identity (sealer.seal).
	SealedSeed []byte `cbor:"8,keyasint,omitempty"`
	// Mandate is the agent's mandate (api.Mandate, JSON), if any.
	Mandate []byte `cbor:"9,keyasint,omitempty"`

	clearOnDisk bool // read from the store with Seed in clear
}

var keySeedsSealed = []byte("m/seeds-sealed")

func (a *agentRecord) key() ed25519.PrivateKey { return ed25519.NewKeyFromSeed(a.Seed) }

type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any)  { p.l.Debug(fmt.Sprintf(format, args...)) }
func (p pebbleLogger) Errorf(format string, args ...any) { p.l.Error(fmt.Sprintf(format, args...)) }
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...))
	panic(fmt.Sprintf(format, args...))
}

// openSecrets opens the secret store in dir; identitySeed is the node's
// identity key seed, from which the key sealing agent seeds is derived.
func openSecrets(dir string, fs vfs.FS, log *slog.Logger, identitySeed []byte) (*secretStore, error) {
	seal, err := newSealer(identitySeed)
	if err != nil {
		return nil, err
	}
	// The secret store is small (agents and tokens): a small cache and
	// memtable keep an idle node's memory down.
	cache := pebble.NewCache(1 << 20)
	defer cache.Unref()
	opts := &pebble.Options{Logger: pebbleLogger{log}, Cache: cache, MemTableSize: 1 << 20}
	if fs != nil && fs != vfs.Default {
		opts.FS = fs
	} else {
		if err := makePrivate(dir); err != nil {
			return nil, fmt.Errorf("open state %s: %w", dir, err)
		}
		opts.FS = privateFS{vfs.Default}
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", dir, err)
	}
	s := &secretStore{db: db, seal: seal}
	if err := s.sealClearSeeds(log); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state %s: seal agent seeds: %w", dir, err)
	}
	return s, nil
}

// sealClearSeeds migrates a store written before seeds were sealed: every
// seed stored in clear is sealed, in one synced batch, then the store is
// flushed and compacted so that the clear seeds leave every file (the old
// values and the write-ahead log that held them), and only then marked.
// A crash in between repeats the work at the next open.
func (s *secretStore) sealClearSeeds(log *slog.Logger) error {
	if _, c, err := s.db.Get(keySeedsSealed); err == nil {
		c.Close()
		return nil
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return err
	}
	recs, err := s.agents()
	if err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	n := 0
	for _, r := range recs {
		if !r.clearOnDisk {
			continue
		}
		v, err := s.encode(r)
		if err != nil {
			return err
		}
		_ = b.Set([]byte("a/"+r.Name), v, nil)
		n++
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return err
	}
	if err := s.db.Flush(); err != nil {
		return err
	}
	if err := s.db.Compact(context.Background(), []byte{0}, []byte{0xff}, false); err != nil {
		return err
	}
	if n > 0 {
		log.Info("sealed agent seeds stored in clear", "agents", n)
	}
	return s.db.Set(keySeedsSealed, []byte{1}, pebble.Sync)
}

// encode returns the stored form of a: its seed sealed, never in clear.
func (s *secretStore) encode(a *agentRecord) ([]byte, error) {
	stored := *a
	stored.SealedSeed = s.seal.seal(a.Name, a.Seed)
	stored.Seed = nil
	return cbor.Marshal(&stored)
}

func (s *secretStore) Close() error { return s.db.Close() }

func tokenHash(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// putAgent stores a new agent durably. It fails with errDuplicate if the name
// is taken.
func (s *secretStore) putAgent(a *agentRecord) error {
	k := []byte("a/" + a.Name)
	if _, c, err := s.db.Get(k); err == nil {
		c.Close()
		return errDuplicate
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return err
	}
	v, err := s.encode(a)
	if err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(k, v, nil)
	_ = b.Set([]byte("t/"+hex.EncodeToString(a.TokenHash)), []byte(a.Name), nil)
	return b.Commit(pebble.Sync)
}

// setMandate stores the agent's mandate (nil: none) durably.
func (s *secretStore) setMandate(a *agentRecord, mandate []byte) error {
	next := *a
	next.Mandate = mandate
	v, err := s.encode(&next)
	if err != nil {
		return err
	}
	if err := s.db.Set([]byte("a/"+a.Name), v, pebble.Sync); err != nil {
		return err
	}
	a.Mandate = mandate
	return nil
}

func (s *secretStore) deleteAgent(a *agentRecord) error {
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Delete([]byte("a/"+a.Name), nil)
	_ = b.Delete([]byte("t/"+hex.EncodeToString(a.TokenHash)), nil)
	return b.Commit(pebble.Sync)
}

func (s *secretStore) agents() ([]*agentRecord, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte("a/"), UpperBound: []byte("a0")})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []*agentRecord
	for it.First(); it.Valid(); it.Next() {
		var a agentRecord
		if err := cbor.Unmarshal(it.Value(), &a); err != nil {
			return nil, fmt.Errorf("secrets: agent %q: %w", it.Key(), err)
		}
		switch {
		case a.SealedSeed != nil:
			seed, err := s.seal.open(a.Name, a.SealedSeed)
			if err != nil {
				return nil, fmt.Errorf("secrets: agent %q: %w", a.Name, err)
			}
			a.Seed, a.SealedSeed = seed, nil
		case a.Seed != nil:
			a.clearOnDisk = true
		}
		if len(a.Seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("secrets: agent %q: seed of %d bytes", a.Name, len(a.Seed))
		}
		out = append(out, &a)
	}
	return out, it.Error()
}

// tokenMatches compares token hashes in constant time.
func tokenMatches(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

var _ io.Closer = (*secretStore)(nil)
