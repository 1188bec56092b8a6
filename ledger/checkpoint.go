package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aspnode/asp/protocol"
	"github.com/cockroachdb/pebble/v2"
	tlog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// Checkpoint records stored under "c" + size: a state byte, then text.
const (
	cpIntent = 1 // the checkpoint body, persisted (synced) before signing
	cpSigned = 2 // the signed note
)

// Checkpoint returns a signed checkpoint (a C2SP tlog-checkpoint signed
// note) covering every durable entry:
//
//	<origin>
//	<size>
//	<base64 root>
//
//	— <origin> <base64 key hash + signature>
//
// The ledger never signs two different roots for one size, across crashes
// too: before signing it records {size, root} with a synced write, and it
// refuses to sign a size whose recorded root differs (ErrCorruption). For a
// size already signed it returns the stored note.
func (l *Ledger) Checkpoint(ctx context.Context) ([]byte, error) {
	if l.opts.Signer == nil {
		return nil, ErrNoSigner
	}
	if l.opts.ReadOnly {
		return nil, fmt.Errorf("checkpoint: ledger is read-only")
	}
	if l.broken != nil {
		return nil, l.broken
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := l.rlock(); err != nil {
		return nil, err
	}
	defer l.runlock()
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	st := l.state()
	return l.checkpointLocked(st.size, st.root)
}

// checkpointLocked signs (or returns the stored signature of) the
// checkpoint {size, root}. REQUIRES: l.cpMu, closeMu shared.
func (l *Ledger) checkpointLocked(size uint64, root [32]byte) (signed []byte, err error) {
	defer recoverFatal(&err)
	l.mu.RLock()
	failed := l.mu.failed
	l.mu.RUnlock()
	if failed != nil {
		return nil, failed
	}
	// After a failed write, whether it reached the disk is unknown: accept
	// no more writes, as for a failed commit.
	fail := func(err error) error {
		l.mu.Lock()
		if l.mu.failed == nil {
			l.mu.failed = fmt.Errorf("%w: %v", ErrFailed, err)
		}
		l.mu.Unlock()
		return err
	}
	body := tlog.Checkpoint{Origin: l.opts.Origin, Size: size, Hash: root[:]}.Marshal()
	key := checkpointKey(size)
	v, err := l.get(key)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("checkpoint: %w", err)
	default:
		stored, err := parseCheckpointRecord(size, v)
		if err != nil {
			return nil, err
		}
		if stored.root != root {
			return nil, &CorruptionError{What: "checkpoint", Index: size,
				Reason: "a different root is recorded for this size; refusing to sign a second one"}
		}
		if stored.state == cpSigned && bytes.Equal(stored.body, body) {
			return bytes.Clone(stored.text), nil
		}
	}
	// Persist the intent before any signature exists.
	if err := setRecovering(l.db, key, append([]byte{cpIntent}, body...), pebble.Sync); err != nil {
		return nil, fail(fmt.Errorf("checkpoint: record: %w", err))
	}
	// A signed checkpoint for this size may now reach counterparties: the
	// store must never open below it (acked.go).
	if err := l.ack.advance(size, root, false); err != nil {
		return nil, fail(fmt.Errorf("checkpoint: %w", err))
	}
	signed, err = note.Sign(&note.Note{Text: string(body)}, l.opts.Signer)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: sign: %w", err)
	}
	// The signed note need not be synced: if it is lost, the intent remains
	// and the same body is signed again.
	if err := setRecovering(l.db, key, append([]byte{cpSigned}, signed...), pebble.NoSync); err != nil {
		return nil, fail(fmt.Errorf("checkpoint: store: %w", err))
	}
	return signed, nil
}

// setRecovering is db.Set, turning a Pebble fatal error into an error.
func setRecovering(db *pebble.DB, k, v []byte, o *pebble.WriteOptions) (err error) {
	defer recoverFatal(&err)
	return db.Set(k, v, o)
}

// cpRecord is a parsed checkpoint record.
type cpRecord struct {
	state byte
	text  []byte // body (intent) or signed note
	body  []byte // the checkpoint body
	cp    tlog.Checkpoint
	root  [32]byte
}

func parseCheckpointRecord(size uint64, v []byte) (cpRecord, error) {
	bad := func(format string, args ...any) error {
		return &CorruptionError{What: "checkpoint", Index: size, Reason: fmt.Sprintf(format, args...)}
	}
	if len(v) < 1 || (v[0] != cpIntent && v[0] != cpSigned) {
		return cpRecord{}, bad("malformed record")
	}
	r := cpRecord{state: v[0], text: v[1:], body: v[1:]}
	if r.state == cpSigned {
		i := bytes.Index(r.text, []byte("\n\n"))
		if i < 0 {
			return cpRecord{}, bad("signed note has no signature block")
		}
		r.body = r.text[:i+1]
	}
	rest, err := r.cp.Unmarshal(r.body)
	if err != nil {
		return cpRecord{}, bad("%v", err)
	}
	if len(rest) != 0 || r.cp.Size != size || len(r.cp.Hash) != 32 {
		return cpRecord{}, bad("body does not describe size %d", size)
	}
	copy(r.root[:], r.cp.Hash)
	return r, nil
}

// LatestCheckpoint returns the signed checkpoint of the largest size signed
// so far, without signing anything. ErrNotFound if none was signed.
func (l *Ledger) LatestCheckpoint() (_ []byte, err error) {
	defer func() { err = l.dmg.storeErr(err) }()
	if err := l.rlock(); err != nil {
		return nil, err
	}
	defer l.runlock()
	var out []byte
	err = eachCheckpoint(l.db, true, func(size uint64, r cpRecord) (bool, error) {
		if r.state == cpSigned {
			out = bytes.Clone(r.text)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, fmt.Errorf("checkpoint: %w", ErrNotFound)
	}
	return out, nil
}

// CheckpointAt returns the stored signed checkpoint for a size.
// ErrNotFound if that size was never signed.
func (l *Ledger) CheckpointAt(size uint64) (_ []byte, err error) {
	defer func() { err = l.dmg.storeErr(err) }()
	if err := l.rlock(); err != nil {
		return nil, err
	}
	defer l.runlock()
	v, err := l.get(checkpointKey(size))
	if err != nil {
		return nil, fmt.Errorf("checkpoint %d: %w", size, err)
	}
	r, err := parseCheckpointRecord(size, v)
	if err != nil {
		return nil, err
	}
	if r.state != cpSigned {
		return nil, fmt.Errorf("checkpoint %d: %w", size, ErrNotFound)
	}
	return bytes.Clone(r.text), nil
}

// eachCheckpoint calls fn for each checkpoint record in size order (reverse
// order if reverse), until fn returns false or an error.
func eachCheckpoint(r reader, reverse bool, fn func(size uint64, r cpRecord) (bool, error)) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixCheckpoint}, UpperBound: []byte{prefixCheckpoint + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	first, next := it.First, it.Next
	if reverse {
		first, next = it.Last, it.Prev
	}
	for ok := first(); ok; ok = next() {
		k := it.Key()
		if len(k) != 9 {
			return corrupt("checkpoint", "checkpoint key of %d bytes", len(k))
		}
		size := beUint64(k[1:])
		rec, err := parseCheckpointRecord(size, bytes.Clone(it.Value()))
		if err != nil {
			return err
		}
		more, err := fn(size, rec)
		if err != nil || !more {
			return err
		}
	}
	return it.Error()
}

func beUint64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

// CheckpointBody is a parsed, verified checkpoint.
type CheckpointBody struct {
	Origin string
	Size   uint64
	Root   [32]byte
}

// ParseCheckpoint verifies a signed checkpoint with the log's verifier and
// parses it. It requires the origin to equal origin and the root to be a
// SHA-256 hash. Signatures by other verifiers (witness cosignatures) are
// checked when given and reported in the returned note's Sigs.
func ParseCheckpoint(signed []byte, origin string, log note.Verifier, others ...note.Verifier) (CheckpointBody, *note.Note, error) {
	cp, _, n, err := tlog.ParseCheckpoint(signed, origin, log, others...)
	if err != nil {
		return CheckpointBody{}, n, fmt.Errorf("checkpoint: %w", err)
	}
	if len(cp.Hash) != 32 {
		return CheckpointBody{}, n, fmt.Errorf("checkpoint: root of %d bytes", len(cp.Hash))
	}
	out := CheckpointBody{Origin: cp.Origin, Size: cp.Size}
	copy(out.Root[:], cp.Hash)
	return out, n, nil
}

// OriginFor returns the checkpoint origin of the ledger of the node whose
// libp2p peer id is peerID: "asp-ledger/<peerID>".
func OriginFor(peerID string) string { return "asp-ledger/" + peerID }

// validOrigin checks that s can be both a checkpoint origin and a note key
// name: non-empty UTF-8 without spaces, newlines or '+'.
func validOrigin(s string) error {
	if s == "" || !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsSpace) >= 0 || strings.Contains(s, "+") {
		return fmt.Errorf("invalid checkpoint origin %q", s)
	}
	return nil
}

// KeyCertificate binds a checkpoint key to an organization: the
// organization's identity key (whose libp2p peer id is Org) signs
//
//	"asp-ledger-checkpoint-key/v1\n" + Origin + "\n" + Key + "\n" + Org + "\n"
//
// so that a verifier who knows only the organization's peer id can check
// the ledger's checkpoints.
type KeyCertificate struct {
	Origin    string `json:"origin"`    // the log's checkpoint origin
	Key       string `json:"key"`       // the checkpoint verifier key, note format "<origin>+<hash>+<base64>"
	Org       string `json:"org"`       // the organization's libp2p peer id
	Signature []byte `json:"signature"` // Ed25519 by the organization's key over the message above
}

const certDomain = "asp-ledger-checkpoint-key/v1\n"

func (c *KeyCertificate) message() []byte {
	return []byte(certDomain + c.Origin + "\n" + c.Key + "\n" + c.Org + "\n")
}

// CertifyCheckpointKey returns org's certificate for the checkpoint
// verifier key vkey of the log named origin.
func CertifyCheckpointKey(org ed25519.PrivateKey, origin, vkey string) (*KeyCertificate, error) {
	if err := validOrigin(origin); err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("certify checkpoint key: %w", err)
	}
	if v.Name() != origin {
		return nil, fmt.Errorf("certify checkpoint key: key name %q differs from origin %q", v.Name(), origin)
	}
	c := &KeyCertificate{Origin: origin, Key: vkey, Org: protocol.PeerIDFromPublicKey(org.Public().(ed25519.PublicKey))}
	c.Signature = ed25519.Sign(org, c.message())
	return c, nil
}

// Verify checks the certificate's signature against the public key inside
// its Org peer id, and that Key is a well-formed verifier key named Origin.
func (c *KeyCertificate) Verify() error {
	if err := validOrigin(c.Origin); err != nil {
		return fmt.Errorf("key certificate: %w", err)
	}
	if strings.ContainsAny(c.Key, "\n") || strings.ContainsAny(c.Org, "\n") {
		return errors.New("key certificate: newline in a field")
	}
	v, err := note.NewVerifier(c.Key)
	if err != nil {
		return fmt.Errorf("key certificate: %w", err)
	}
	if v.Name() != c.Origin {
		return fmt.Errorf("key certificate: key name %q differs from origin %q", v.Name(), c.Origin)
	}
	pub, err := protocol.PublicKeyFromPeerID(c.Org)
	if err != nil {
		return fmt.Errorf("key certificate: %w", err)
	}
	if !ed25519.Verify(pub, c.message(), c.Signature) {
		return errors.New("key certificate: bad signature by the organization key")
	}
	return nil
}

// Verifier returns the note verifier for the certified key.
func (c *KeyCertificate) Verifier() (note.Verifier, error) { return note.NewVerifier(c.Key) }

// matches checks that the certificate verifies and certifies s's key.
func (c *KeyCertificate) matches(s note.Signer, origin string) error {
	if err := c.Verify(); err != nil {
		return err
	}
	if c.Origin != origin {
		return fmt.Errorf("key certificate for origin %q, ledger origin %q", c.Origin, origin)
	}
	v, err := c.Verifier()
	if err != nil {
		return err
	}
	probe := []byte("asp-ledger key probe\n")
	sig, err := s.Sign(probe)
	if err != nil {
		return fmt.Errorf("key certificate: signer: %w", err)
	}
	if v.KeyHash() != s.KeyHash() || !v.Verify(probe, sig) {
		return errors.New("key certificate does not certify the checkpoint signer's key")
	}
	return nil
}

// storeCertificate records a key certificate (synced) if it is new.
func (l *Ledger) storeCertificate(c *KeyCertificate) (err error) {
	defer recoverFatal(&err)
	k := certKey(c.Key)
	if _, err := l.get(k); err == nil {
		return nil
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return l.db.Set(k, b, pebble.Sync)
}

// certificates returns the stored key certificates, in key order.
func certificates(r reader) ([]*KeyCertificate, error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixCert}, UpperBound: []byte{prefixCert + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []*KeyCertificate
	for ok := it.First(); ok; ok = it.Next() {
		c := new(KeyCertificate)
		if err := json.Unmarshal(it.Value(), c); err != nil || c.Key != string(it.Key()[1:]) {
			return nil, corrupt("certificate", "stored certificate %q is malformed", it.Key()[1:])
		}
		out = append(out, c)
	}
	return out, it.Error()
}

// NewCheckpointSigner derives the checkpoint key of the log named origin
// from the organization's identity key, and returns a signer for it with
// the organization's certificate. The derivation is deterministic
// (SHA-256 of a label, the identity key's seed and the origin), so a node
// needs no second key file, and the identity key never signs checkpoints
// itself.
func NewCheckpointSigner(org ed25519.PrivateKey, origin string) (note.Signer, *KeyCertificate, error) {
	if err := validOrigin(origin); err != nil {
		return nil, nil, err
	}
	h := sha256.New()
	h.Write([]byte("asp-ledger-checkpoint-key-derivation/v1\x00"))
	h.Write(org.Seed())
	h.Write([]byte{0})
	h.Write([]byte(origin))
	seed := h.Sum(nil)
	priv := ed25519.NewKeyFromSeed(seed)
	vkey, err := note.NewEd25519VerifierKey(origin, priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, nil, err
	}
	// vkey is "<name>+<hash>+<base64(0x01 || pub)>"; the signer key has the
	// same name and hash and the base64 of 0x01 || seed.
	parts := strings.SplitN(vkey, "+", 3)
	skey := "PRIVATE+KEY+" + origin + "+" + parts[1] + "+" +
		base64.StdEncoding.EncodeToString(append([]byte{1}, seed...))
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, nil, err
	}
	c, err := CertifyCheckpointKey(org, origin, vkey)
	if err != nil {
		return nil, nil, err
	}
	return s, c, nil
}
