package witness

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/protocol"
)

// MaxProofHashes bounds a consistency proof (C2SP: at most 63 lines).
const MaxProofHashes = 63

// Request is a C2SP tlog-witness add-checkpoint request: the size the
// log believes the witness last cosigned, the RFC 6962 consistency proof
// from it to the checkpoint's size, and the new signed checkpoint.
type Request struct {
	OldSize    uint64
	Proof      [][]byte // 32-byte hashes, at most MaxProofHashes
	Checkpoint []byte   // signed note, at most MaxCheckpointSize bytes
}

// Config configures a Witness.
type Config struct {
	// Key is the witnessing organization's Ed25519 identity key. Its
	// cosignatures verify with VerifierKeyFor(its peer id).
	Key ed25519.PrivateKey
	// Name is the cosigner name; default NameFor(the key's peer id).
	Name string
	// Store keeps the latest cosigned state per origin.
	Store Store
	// Now is the clock of the cosignatures' timestamps; default time.Now.
	Now func() time.Time
	// Verifier resolves a log origin to its certified checkpoint verifier
	// (CertifiedVerifier of the log organization's KeyCertificate), or an
	// error wrapping ErrUnknownOrigin for a log this witness does not serve.
	Verifier Resolver
}

// Witness cosigns the checkpoints of the logs it serves. It is safe for
// concurrent use: the store's check-and-set orders concurrent requests.
type Witness struct {
	key     ed25519.PrivateKey
	name    string
	vkey    string
	store   Store
	now     func() time.Time
	resolve Resolver
}

// New returns a witness for cfg.
func New(cfg Config) (*Witness, error) {
	if len(cfg.Key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("witness: key of %d bytes", len(cfg.Key))
	}
	if cfg.Store == nil || cfg.Verifier == nil {
		return nil, errors.New("witness: config needs a Store and a Verifier")
	}
	pub := cfg.Key.Public().(ed25519.PublicKey)
	if cfg.Name == "" {
		cfg.Name = NameFor(protocol.PeerIDFromPublicKey(pub))
	}
	vkey, err := VerifierKey(cfg.Name, pub)
	if err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Witness{key: cfg.Key, name: cfg.Name, vkey: vkey, store: cfg.Store, now: cfg.Now, resolve: cfg.Verifier}, nil
}

// Name returns the witness's cosigner name.
func (w *Witness) Name() string { return w.name }

// VerifierKey returns the witness's vkey (type 0x04, cosignature/v1), the
// key VerifyCosignature takes.
func (w *Witness) VerifierKey() string { return w.vkey }

// Latest returns the latest state this witness cosigned for origin.
func (w *Witness) Latest(origin string) (State, bool, error) { return w.store.Latest(origin) }

// AddCheckpoint is C2SP tlog-witness add-checkpoint. It verifies the
// checkpoint's signature with the origin's certified key, that the request
// continues the latest cosigned state (same old size, consistency proof,
// no smaller size, no second root for a size), records the new state with
// a durable check-and-set, and returns the cosignature: one note signature
// line "— <name> base64(key id || timestamp || Ed25519 signature)\n" in
// C2SP tlog-cosignature/v1 form. Refusals are the errors of this package
// (StatusOf gives their code); a refused request changes nothing.
func (w *Witness) AddCheckpoint(ctx context.Context, req Request) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkRequest(&req); err != nil {
		return nil, err
	}
	origin, err := peekOrigin(req.Checkpoint)
	if err != nil {
		return nil, err
	}
	v, err := w.resolve(origin)
	if err != nil {
		if errors.Is(err, ErrUnknownOrigin) || errors.Is(err, ErrBadSignature) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %q: %v", ErrUnknownOrigin, origin, err)
	}
	cp, err := openCheckpoint(req.Checkpoint, origin, v)
	if err != nil {
		return nil, err
	}
	if req.OldSize > cp.size {
		return nil, fmt.Errorf("%w: old size %d above the checkpoint's size %d", ErrMalformed, req.OldSize, cp.size)
	}
	if cp.size == 0 && cp.root != emptyRoot {
		return nil, fmt.Errorf("%w: checkpoint of size 0 with a root other than the empty tree's", ErrBadProof)
	}
	// The decision and the write are one check-and-set: if another request
	// changed the state in between, decide again on the new state (which
	// then refuses this request as a conflict, or as a rollback).
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		cur, ok, err := w.store.Latest(origin)
		if err != nil {
			return nil, err
		}
		if err := w.check(req, cp, cur, ok); err != nil {
			return nil, err
		}
		ts := w.now().Unix()
		if ts <= 0 {
			return nil, fmt.Errorf("witness: clock before 1970")
		}
		line := cosign(w.key, w.name, uint64(ts), cp.text)
		next := State{Size: cp.size, Root: cp.root, Checkpoint: WithCosignature(cp.signed, line)}
		if len(next.Checkpoint) > MaxCheckpointSize {
			return nil, fmt.Errorf("%w: checkpoint of %d bytes with its cosignature (max %d)", ErrMalformed, len(next.Checkpoint), MaxCheckpointSize)
		}
		var prev *State
		if ok {
			prev = &cur
		}
		err = w.store.CompareAndSwap(origin, prev, next)
		if errors.Is(err, ErrStale) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return line, nil
	}
}

// check decides a request against the current state cur (ok: there is one).
func (w *Witness) check(req Request, cp *checkpoint, cur State, ok bool) error {
	var size uint64
	root := emptyRoot
	if ok {
		size, root = cur.Size, cur.Root
		if cp.size == cur.Size && cp.root != cur.Root {
			return &EquivocationError{Origin: cp.origin, Size: cp.size, Cosigned: cur.Checkpoint, Presented: cp.signed}
		}
		if cp.size < cur.Size {
			return &ConflictError{Old: req.OldSize, New: cp.size, Size: cur.Size, Checkpoint: cur.Checkpoint, Rollback: true}
		}
	}
	if req.OldSize != size {
		var latest []byte
		if ok {
			latest = cur.Checkpoint
		}
		return &ConflictError{Old: req.OldSize, New: cp.size, Size: size, Checkpoint: latest}
	}
	if size == 0 {
		if len(req.Proof) != 0 {
			return fmt.Errorf("%w: old size 0 takes an empty proof, got %d hashes", ErrBadProof, len(req.Proof))
		}
		return nil
	}
	if err := ledger.VerifyConsistency(size, cp.size, req.Proof, root, cp.root); err != nil {
		return fmt.Errorf("%w: from size %d to %d: %v", ErrBadProof, size, cp.size, err)
	}
	return nil
}

// checkRequest checks a request's bounds.
func checkRequest(req *Request) error {
	if len(req.Checkpoint) == 0 || len(req.Checkpoint) > MaxCheckpointSize {
		return fmt.Errorf("%w: checkpoint of %d bytes (1 to %d)", ErrMalformed, len(req.Checkpoint), MaxCheckpointSize)
	}
	if len(req.Proof) > MaxProofHashes {
		return fmt.Errorf("%w: consistency proof of %d hashes (max %d)", ErrMalformed, len(req.Proof), MaxProofHashes)
	}
	for _, h := range req.Proof {
		if len(h) != 32 {
			return fmt.Errorf("%w: proof hash of %d bytes", ErrMalformed, len(h))
		}
	}
	return nil
}

// NewRequest builds the add-checkpoint request presenting checkpoint (a
// checkpoint l signed, as Ledger.Checkpoint returns it) to a witness that
// last cosigned size oldSize of l (0 if none): the consistency proof
// comes from l.
func NewRequest(l *ledger.Ledger, oldSize uint64, checkpoint []byte) (*Request, error) {
	if len(checkpoint) > MaxCheckpointSize {
		return nil, fmt.Errorf("%w: checkpoint of %d bytes", ErrMalformed, len(checkpoint))
	}
	_, size, err := parseUnverified(checkpoint)
	if err != nil {
		return nil, err
	}
	if oldSize > size {
		return nil, fmt.Errorf("%w: old size %d above the checkpoint's size %d", ErrMalformed, oldSize, size)
	}
	req := &Request{OldSize: oldSize, Checkpoint: checkpoint}
	if oldSize > 0 && oldSize < size {
		if req.Proof, err = l.ConsistencyProof(oldSize, size); err != nil {
			return nil, fmt.Errorf("witness: request: %w", err)
		}
	}
	return req, nil
}
