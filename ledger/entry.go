package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// Kind says what an entry records. The ledger does not interpret bodies; the
// kind tells a reader (and VerifyOptions.VerifyEntry) how to.
type Kind uint16

// Entry kinds. Zero is not a kind. Kinds not listed here are accepted (a newer
// node may record more), and shown by number.
const (
	KindSessionOpened    Kind = 1  // a session was opened
	KindMessageSent      Kind = 2  // a signed envelope this node sent
	KindMessageReceived  Kind = 3  // a signed envelope this node received
	KindCommitment       Kind = 4  // a commitment (offer + acceptance) was formed
	KindReceipt          Kind = 5  // a counterparty's receipt for a commitment
	KindCommitmentUpdate Kind = 6  // a commitment changed state
	KindAttestation      Kind = 7  // a trust attestation issued or received
	KindAnchor           Kind = 8  // a counterparty's checkpoint (cross-anchoring)
	KindDispute          Kind = 9  // a dispute was raised or answered
	KindRuling           Kind = 10 // an arbiter's ruling
	KindKeyEvent         Kind = 11 // a key was created, certified or retired
	KindAgent            Kind = 12 // an agent was created or removed
	KindRollback         Kind = 13 // the ledger was opened below its acknowledged size, on purpose (Options.AllowRollback)
)

var kindNames = [...]string{
	KindSessionOpened:    "session-opened",
	KindMessageSent:      "message-sent",
	KindMessageReceived:  "message-received",
	KindCommitment:       "commitment",
	KindReceipt:          "receipt",
	KindCommitmentUpdate: "commitment-update",
	KindAttestation:      "attestation",
	KindAnchor:           "anchor",
	KindDispute:          "dispute",
	KindRuling:           "ruling",
	KindKeyEvent:         "key-event",
	KindAgent:            "agent",
	KindRollback:         "rollback",
}

// String returns the kind's name, for example "commitment", or "kind-N" for
// a kind this build does not know.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "kind-" + strconv.Itoa(int(k))
}

// ParseKind is the inverse of Kind.String.
func ParseKind(s string) (Kind, error) {
	for k, n := range kindNames {
		if n != "" && n == s {
			return Kind(k), nil
		}
	}
	if rest, ok := cutPrefix(s, "kind-"); ok {
		if n, err := strconv.ParseUint(rest, 10, 16); err == nil && n != 0 && strconv.FormatUint(n, 10) == rest {
			return Kind(n), nil
		}
	}
	return 0, fmt.Errorf("ledger: unknown kind %q", s)
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return s, false
}

// Limits on what one entry may hold. Append refuses records beyond them and
// DecodeEntry refuses encodings beyond them.
const (
	// MaxIDLen bounds Record.Session and Record.Commitment, in bytes.
	MaxIDLen = 1024
	// MaxBodyLen bounds Record.Body, in bytes.
	MaxBodyLen = 4 << 20
)

// Record is what a caller appends: the ledger adds the index, the hash of the
// previous entry and, if Time is zero, the time.
type Record struct {
	Kind       Kind      // required, non-zero
	Time       time.Time // zero: the ledger's clock at commit
	Session    string    // session id, indexed (may be empty)
	Commitment string    // commitment id, indexed (may be empty)
	Body       []byte    // opaque to the ledger; by convention canonical CBOR of a protocol value
}

// Entry is one record of the log as stored: Record plus its position in the
// hash chain.
type Entry struct {
	Index      uint64    // position in the log, from 0
	PrevHash   [32]byte  // LeafHash of entry Index-1; zero for entry 0
	Time       time.Time // UTC, nanosecond precision
	Kind       Kind
	Session    string
	Commitment string
	Body       []byte
}

// entryVersion is the first byte of every encoded entry.
const entryVersion = 1

// The fixed-size part of an encoded entry: version, index, prev hash, time, kind.
const entryHeaderLen = 1 + 8 + 32 + 8 + 2

// Times that an entry can hold: those whose Unix nanoseconds fit an int64.
var (
	minTime = time.Unix(0, math.MinInt64).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC()
)

// validate checks the record-level limits shared by Append and the decoder.
func (r *Record) validate() error {
	if r.Kind == 0 {
		return fmt.Errorf("%w: kind 0", ErrInvalidRecord)
	}
	if len(r.Session) > MaxIDLen || len(r.Commitment) > MaxIDLen {
		return fmt.Errorf("%w: id longer than %d bytes", ErrInvalidRecord, MaxIDLen)
	}
	if !utf8.ValidString(r.Session) || !utf8.ValidString(r.Commitment) {
		return fmt.Errorf("%w: id is not UTF-8", ErrInvalidRecord)
	}
	if len(r.Body) > MaxBodyLen {
		return fmt.Errorf("%w: body of %d bytes exceeds %d", ErrInvalidRecord, len(r.Body), MaxBodyLen)
	}
	if !r.Time.IsZero() && (r.Time.Before(minTime) || r.Time.After(maxTime)) {
		return fmt.Errorf("%w: time %s out of range", ErrInvalidRecord, r.Time)
	}
	return nil
}

// encodedLen returns the length of the entry's encoding.
func (e *Entry) encodedLen() int {
	return entryHeaderLen + 2 + len(e.Session) + 2 + len(e.Commitment) + 4 + len(e.Body)
}

// Encode returns the entry's canonical encoding: these bytes are stored, are
// the RFC 6962 Merkle leaf, and are what LeafHash hashes. Layout (integers
// big-endian):
//
//	version    1 byte, 1
//	index      8 bytes
//	prevHash   32 bytes
//	time       8 bytes, Unix nanoseconds, signed
//	kind       2 bytes
//	session    2-byte length, then UTF-8 bytes
//	commitment 2-byte length, then UTF-8 bytes
//	body       4-byte length, then bytes
func (e *Entry) Encode() []byte {
	return e.appendEncoding(make([]byte, 0, e.encodedLen()))
}

func (e *Entry) appendEncoding(b []byte) []byte {
	b = append(b, entryVersion)
	b = binary.BigEndian.AppendUint64(b, e.Index)
	b = append(b, e.PrevHash[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixNano()))
	b = binary.BigEndian.AppendUint16(b, uint16(e.Kind))
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.Session)))
	b = append(b, e.Session...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.Commitment)))
	b = append(b, e.Commitment...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.Body)))
	b = append(b, e.Body...)
	return b
}

// DecodeEntry parses an entry encoding. It accepts exactly the encodings
// that Encode produces: DecodeEntry(b) succeeds only if Encode of the result
// equals b. The returned Body aliases b.
func DecodeEntry(b []byte) (Entry, error) {
	var e Entry
	if len(b) < entryHeaderLen+2+2+4 {
		return e, fmt.Errorf("entry of %d bytes is too short", len(b))
	}
	if b[0] != entryVersion {
		return e, fmt.Errorf("entry version %d, want %d", b[0], entryVersion)
	}
	e.Index = binary.BigEndian.Uint64(b[1:])
	copy(e.PrevHash[:], b[9:41])
	e.Time = time.Unix(0, int64(binary.BigEndian.Uint64(b[41:]))).UTC()
	e.Kind = Kind(binary.BigEndian.Uint16(b[49:]))
	if e.Kind == 0 {
		return e, fmt.Errorf("entry kind 0")
	}
	rest := b[entryHeaderLen:]
	var s []byte
	var err error
	if s, rest, err = cutField(rest, 2, MaxIDLen); err != nil {
		return e, fmt.Errorf("entry session: %w", err)
	}
	if !utf8.Valid(s) {
		return e, fmt.Errorf("entry session is not UTF-8")
	}
	e.Session = string(s)
	if s, rest, err = cutField(rest, 2, MaxIDLen); err != nil {
		return e, fmt.Errorf("entry commitment: %w", err)
	}
	if !utf8.Valid(s) {
		return e, fmt.Errorf("entry commitment is not UTF-8")
	}
	e.Commitment = string(s)
	if s, rest, err = cutField(rest, 4, MaxBodyLen); err != nil {
		return e, fmt.Errorf("entry body: %w", err)
	}
	if len(rest) != 0 {
		return e, fmt.Errorf("entry has %d trailing bytes", len(rest))
	}
	if len(s) > 0 {
		e.Body = s
	}
	return e, nil
}

// cutField splits a length-prefixed field (prefix of n = 2 or 4 bytes) off b.
func cutField(b []byte, n, max int) (field, rest []byte, err error) {
	if len(b) < n {
		return nil, nil, fmt.Errorf("truncated length")
	}
	var l uint64
	if n == 2 {
		l = uint64(binary.BigEndian.Uint16(b))
	} else {
		l = uint64(binary.BigEndian.Uint32(b))
	}
	b = b[n:]
	if l > uint64(max) {
		return nil, nil, fmt.Errorf("length %d exceeds %d", l, max)
	}
	if uint64(len(b)) < l {
		return nil, nil, fmt.Errorf("length %d exceeds the %d bytes left", l, len(b))
	}
	return b[:l], b[l:], nil
}

// LeafHash returns the RFC 6962 leaf hash of an encoded entry:
// SHA-256(0x00 || encoded). It is both the entry's Merkle leaf and the
// PrevHash that the next entry records.
func LeafHash(encoded []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(encoded)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// Hash returns LeafHash(e.Encode()).
func (e *Entry) Hash() [32]byte {
	b := make([]byte, 1, 1+e.encodedLen())
	b = e.appendEncoding(b)
	return sha256.Sum256(b)
}

// hashChildren is the RFC 6962 interior node hash: SHA-256(0x01 || l || r).
func hashChildren(l, r []byte) []byte {
	var b [65]byte
	b[0] = 1
	copy(b[1:], l)
	copy(b[33:], r)
	h := sha256.Sum256(b[:])
	return h[:]
}

// emptyRoot is the RFC 6962 root of the empty tree: SHA-256 of nothing.
var emptyRoot = sha256.Sum256(nil)
