package witness

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"

	"github.com/aspnode/asp/ledger"
	"github.com/fxamacker/cbor/v2"
)

// Kinds of equivocation proof.
const (
	// KindSameSize: two checkpoints of one size with different roots.
	KindSameSize = 1
	// KindInclusion: two checkpoints (sizes m ≤ n) with inclusion proofs of
	// different leaf hashes at one index below m.
	KindInclusion = 2
)

// MaxEquivocationSize bounds an encoded equivocation proof.
const MaxEquivocationSize = 64 << 10

// maxInclusionHashes bounds an inclusion proof (a tree of 2^64 leaves
// needs 64 hashes).
const maxInclusionHashes = 64

// Equivocation is a self-contained proof that the log of one origin signed
// two checkpoints that cannot both be true. Its encoding
// (EncodeEquivocation) is canonical CBOR, a map with integer keys:
//
//	1: kind (1 same size, 2 inclusion)
//	2: checkpoint A (signed note)     3: checkpoint B (signed note)
//	4: index                          (kind 2 only, and so on below)
//	5: leaf hash in A (32 bytes)      6: inclusion proof in A (array of 32-byte hashes)
//	7: leaf hash in B                 8: inclusion proof in B
//	9: the log's key certificate (ledger.KeyCertificate, JSON), optional
//
// Anyone checks it with VerifyEquivocation: both checkpoints verify with
// the log's certified checkpoint key, and they contradict each other.
type Equivocation struct {
	Kind        uint8    `cbor:"1,keyasint"`
	A           []byte   `cbor:"2,keyasint"`
	B           []byte   `cbor:"3,keyasint"`
	Index       uint64   `cbor:"4,keyasint,omitempty"`
	LeafA       []byte   `cbor:"5,keyasint,omitempty"`
	ProofA      [][]byte `cbor:"6,keyasint,omitempty"`
	LeafB       []byte   `cbor:"7,keyasint,omitempty"`
	ProofB      [][]byte `cbor:"8,keyasint,omitempty"`
	Certificate []byte   `cbor:"9,keyasint,omitempty"`
}

// SameSizeEquivocation returns the proof that a log signed checkpoints a
// and b for one size with different roots.
func SameSizeEquivocation(a, b []byte) *Equivocation {
	return &Equivocation{Kind: KindSameSize, A: bytes.Clone(a), B: bytes.Clone(b)}
}

// InclusionEquivocation returns the proof that a log signed checkpoints a
// and b in which entry index has different leaf hashes (leafA with
// inclusion proof proofA in a, leafB with proofB in b).
func InclusionEquivocation(a, b []byte, index uint64, leafA [32]byte, proofA [][]byte, leafB [32]byte, proofB [][]byte) *Equivocation {
	return &Equivocation{Kind: KindInclusion, A: bytes.Clone(a), B: bytes.Clone(b), Index: index,
		LeafA: bytes.Clone(leafA[:]), ProofA: proofA, LeafB: bytes.Clone(leafB[:]), ProofB: proofB}
}

// WithCertificate attaches the log's key certificate, so that a verifier
// who knows nothing but the origin (which names the organization's peer
// id) can check the proof: VerifyEquivocation(p, nil).
func (p *Equivocation) WithCertificate(c *ledger.KeyCertificate) (*Equivocation, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	q := *p
	q.Certificate = b
	return &q, nil
}

var (
	equivEncMode = func() cbor.EncMode {
		em, err := cbor.CoreDetEncOptions().EncMode()
		if err != nil {
			panic(err)
		}
		return em
	}()
	equivDecMode = func() cbor.DecMode {
		dm, err := cbor.DecOptions{
			DupMapKey:         cbor.DupMapKeyEnforcedAPF,
			IndefLength:       cbor.IndefLengthForbidden,
			TagsMd:            cbor.TagsForbidden,
			MaxNestedLevels:   4,
			MaxArrayElements:  maxInclusionHashes,
			MaxMapPairs:       16,
			ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		}.DecMode()
		if err != nil {
			panic(err)
		}
		return dm
	}()
)

// EncodeEquivocation returns the canonical encoding of p, after checking
// its shape and bounds.
func EncodeEquivocation(p *Equivocation) ([]byte, error) {
	if err := p.checkShape(); err != nil {
		return nil, err
	}
	b, err := equivEncMode.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidProof, err)
	}
	if len(b) > MaxEquivocationSize {
		return nil, fmt.Errorf("%w: %d bytes (max %d)", ErrInvalidProof, len(b), MaxEquivocationSize)
	}
	return b, nil
}

// DecodeEquivocation reads an encoded proof strictly: bounded, canonical
// (the one encoding EncodeEquivocation gives), no unknown or duplicate
// keys, and of a valid shape. It checks no signature: VerifyEquivocation
// does.
func DecodeEquivocation(b []byte) (*Equivocation, error) {
	if len(b) > MaxEquivocationSize {
		return nil, fmt.Errorf("%w: %d bytes (max %d)", ErrInvalidProof, len(b), MaxEquivocationSize)
	}
	p := new(Equivocation)
	if err := equivDecMode.Unmarshal(b, p); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidProof, err)
	}
	if err := p.checkShape(); err != nil {
		return nil, err
	}
	if again, err := equivEncMode.Marshal(p); err != nil || !bytes.Equal(again, b) {
		return nil, fmt.Errorf("%w: not the canonical encoding", ErrInvalidProof)
	}
	return p, nil
}

// ID returns SHA-256 of the proof's canonical encoding: one id per proof,
// for deduplication.
func (p *Equivocation) ID() ([32]byte, error) {
	b, err := EncodeEquivocation(p)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}

func (p *Equivocation) checkShape() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidProof, fmt.Sprintf(format, args...))
	}
	for _, cp := range [][]byte{p.A, p.B} {
		if len(cp) == 0 || len(cp) > MaxCheckpointSize {
			return bad("checkpoint of %d bytes (1 to %d)", len(cp), MaxCheckpointSize)
		}
	}
	switch p.Kind {
	case KindSameSize:
		if p.Index != 0 || p.LeafA != nil || p.LeafB != nil || p.ProofA != nil || p.ProofB != nil {
			return bad("a same-size proof carries no inclusion proofs")
		}
	case KindInclusion:
		if len(p.LeafA) != 32 || len(p.LeafB) != 32 {
			return bad("leaf hashes must be 32 bytes")
		}
		for _, pr := range [][][]byte{p.ProofA, p.ProofB} {
			if len(pr) > maxInclusionHashes {
				return bad("inclusion proof of %d hashes", len(pr))
			}
			for _, h := range pr {
				if len(h) != 32 {
					return bad("proof hash of %d bytes", len(h))
				}
			}
		}
	default:
		return bad("unknown kind %d", p.Kind)
	}
	return nil
}

// VerifyEquivocation checks p and returns the origin of the log it
// convicts. Both checkpoints must verify with that origin's certified
// checkpoint key: resolve gives it (as Config.Verifier does), or, if
// resolve is nil, the certificate in p, which must verify with the
// organization key named by the origin (CertifiedVerifier). Then:
//
//   - KindSameSize: the sizes are equal and the roots differ;
//   - KindInclusion: index is below both sizes, LeafA is at index in A and
//     LeafB in B (RFC 6962 inclusion proofs), and the leaves differ.
//
// A proof that fails to parse or verify is refused with ErrInvalidProof
// (or ErrBadSignature, ErrUnknownOrigin); one whose checkpoints can both
// be true with ErrNotContradictory. Nothing is then to be held against the
// origin.
func VerifyEquivocation(p *Equivocation, resolve Resolver) (string, error) {
	if err := p.checkShape(); err != nil {
		return "", err
	}
	origin, err := peekOrigin(p.A)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidProof, err)
	}
	if resolve == nil {
		if p.Certificate == nil {
			return "", fmt.Errorf("%w: no resolver and no certificate", ErrInvalidProof)
		}
		c := new(ledger.KeyCertificate)
		if err := json.Unmarshal(p.Certificate, c); err != nil {
			return "", fmt.Errorf("%w: %v", ErrInvalidProof, err)
		}
		resolve = Certificates(c)
	}
	v, err := resolve(origin)
	if err != nil {
		return "", err
	}
	a, err := openCheckpoint(p.A, origin, v)
	if err != nil {
		return "", fmt.Errorf("%w: checkpoint A: %w", ErrInvalidProof, err)
	}
	b, err := openCheckpoint(p.B, origin, v)
	if err != nil {
		return "", fmt.Errorf("%w: checkpoint B: %w", ErrInvalidProof, err)
	}
	switch p.Kind {
	case KindSameSize:
		if a.size != b.size {
			return "", fmt.Errorf("%w: sizes %d and %d differ", ErrNotContradictory, a.size, b.size)
		}
		if a.root == b.root {
			return "", fmt.Errorf("%w: same size %d and root", ErrNotContradictory, a.size)
		}
	case KindInclusion:
		if p.Index >= a.size || p.Index >= b.size {
			return "", fmt.Errorf("%w: index %d not below sizes %d and %d", ErrInvalidProof, p.Index, a.size, b.size)
		}
		leafA, leafB := [32]byte(p.LeafA), [32]byte(p.LeafB)
		if leafA == leafB {
			return "", fmt.Errorf("%w: the same leaf at index %d", ErrNotContradictory, p.Index)
		}
		// (The proof library's message lists whole hashes: not repeated.)
		if ledger.VerifyInclusion(p.Index, a.size, leafA, p.ProofA, a.root) != nil {
			return "", fmt.Errorf("%w: leaf A is not at index %d of checkpoint A (size %d)", ErrInvalidProof, p.Index, a.size)
		}
		if ledger.VerifyInclusion(p.Index, b.size, leafB, p.ProofB, b.root) != nil {
			return "", fmt.Errorf("%w: leaf B is not at index %d of checkpoint B (size %d)", ErrInvalidProof, p.Index, b.size)
		}
	}
	return origin, nil
}

// SameSize checks two signed checkpoints with the origin's certified key
// (resolve, as in VerifyEquivocation) and returns the proof that they
// equivocate if they have one size and two roots, nil if they do not (a
// node receiving a checkpoint by gossip compares it with the one it holds
// this way). Checkpoints of two sizes contradict each other only through
// their entries: InclusionEquivocation.
func SameSize(a, b []byte, resolve Resolver) (*Equivocation, error) {
	origin, err := peekOrigin(a)
	if err != nil {
		return nil, err
	}
	v, err := resolve(origin)
	if err != nil {
		return nil, err
	}
	ca, err := openCheckpoint(a, origin, v)
	if err != nil {
		return nil, err
	}
	cb, err := openCheckpoint(b, origin, v)
	if err != nil {
		return nil, err
	}
	if ca.size != cb.size || ca.root == cb.root {
		return nil, nil
	}
	return SameSizeEquivocation(a, b), nil
}
