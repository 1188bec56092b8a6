package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// Version is the protocol version carried by every envelope.
const Version = "asp/1.0"

// TimeLayout is the only accepted textual form of a time on the wire:
// RFC 3339 in UTC with exactly three fractional digits, e.g.
// "2027-03-15T00:00:00.000Z".
const TimeLayout = "2006-01-02T15:04:05.000Z"

// Limits applied by the decoders.
const (
	// MaxEnvelopeSize is the largest encoded envelope accepted (1 MiB,
	// equal to the p2p frame limit).
	MaxEnvelopeSize = 1 << 20
	maxNesting      = 16
	maxElements     = 4096
)

// Signature domains. Every signature in the protocol is an Ed25519
// signature over domain || 0x00 || SHA-256(canonical CBOR payload), so a
// signature made for one purpose can never be replayed as another.
const (
	domainEnvelope    = "asp/1.0 envelope"
	domainCertificate = "asp/1.0 certificate"
	domainReceipt     = "asp/1.1 receipt" // receipt format asp/1.1: full offer and acceptance hashes
	domainAction      = "asp/1.0 commitment-action"
)

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	encMode, decMode = CanonicalCBOR(maxNesting, maxElements, maxElements)
}

// CanonicalCBOR returns the encoding and decoding modes of every signed
// structure of ASP (envelopes here; agent cards, attestations elsewhere):
// RFC 8949 core deterministic encoding, no indefinite lengths, no tags;
// decoding refuses duplicate and unknown keys and invalid UTF-8, and bounds
// nesting, array elements and map pairs by the given limits.
func CanonicalCBOR(maxNesting, maxArray, maxMapPairs int) (cbor.EncMode, cbor.DecMode) {
	eo := cbor.CoreDetEncOptions()
	eo.IndefLength = cbor.IndefLengthForbidden
	eo.TagsMd = cbor.TagsForbidden
	eo.Time = cbor.TimeRFC3339Nano // unused: times are strings on the wire
	em, err := eo.EncMode()
	if err != nil {
		panic(err)
	}
	dm, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   maxNesting,
		MaxArrayElements:  maxArray,
		MaxMapPairs:       maxMapPairs,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return em, dm
}

// canonical returns the core deterministic CBOR encoding of v.
func canonical(v any) ([]byte, error) {
	b, err := encMode.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: encode: %v", ErrMalformed, err)
	}
	return b, nil
}

// decodeCanonical decodes b into v and refuses any input that is not the
// canonical encoding of the decoded value.
func decodeCanonical(b []byte, v any) error {
	if len(b) > MaxEnvelopeSize {
		return fmt.Errorf("%w: %d bytes exceeds %d", ErrTooLarge, len(b), MaxEnvelopeSize)
	}
	if err := decMode.Unmarshal(b, v); err != nil {
		return classifyDecodeError(err)
	}
	again, err := encMode.Marshal(v)
	if err != nil {
		return fmt.Errorf("%w: re-encode: %v", ErrMalformed, err)
	}
	if !bytes.Equal(again, b) {
		return ErrNonCanonical
	}
	return nil
}

func classifyDecodeError(err error) error {
	var te *cbor.UnmarshalTypeError
	if errors.As(err, &te) && (te.CBORType == "primitives" || te.CBORType == "positive integer" ||
		te.CBORType == "negative integer") && te.GoType == "string" {
		return fmt.Errorf("%w: %v", ErrFloat, err)
	}
	return fmt.Errorf("%w: %v", ErrMalformed, err)
}

// digest returns SHA-256 of the canonical encoding of v.
func digest(v any) ([32]byte, []byte, error) {
	b, err := canonical(v)
	if err != nil {
		return [32]byte{}, nil, err
	}
	return sha256.Sum256(b), b, nil
}

// signedMessage is what an Ed25519 signature covers.
func signedMessage(domain string, d [32]byte) []byte {
	m := make([]byte, 0, len(domain)+1+len(d))
	m = append(m, domain...)
	m = append(m, 0)
	return append(m, d[:]...)
}

func signDigest(key ed25519.PrivateKey, domain string, d [32]byte) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: private key is %d bytes", ErrBadKey, len(key))
	}
	return ed25519.Sign(key, signedMessage(domain, d)), nil
}

func verifyDigest(pub ed25519.PublicKey, domain string, d [32]byte, sig []byte) bool {
	return verifyEd25519(pub, signedMessage(domain, d), sig)
}

// FormatTime renders t in the wire form (TimeLayout). The zero time is
// rendered as "".
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeLayout)
}

// ParseTime parses the wire form of a time strictly: exactly TimeLayout,
// UTC, millisecond precision. "" parses as the zero time.
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(TimeLayout, s)
	if err != nil || t.Format(TimeLayout) != s {
		return time.Time{}, fmt.Errorf("%w: time %q is not %s", ErrMalformed, s, TimeLayout)
	}
	if t.IsZero() {
		// The zero time is written "": its spelled-out form would not
		// re-encode to the same bytes.
		return time.Time{}, fmt.Errorf("%w: time %q is the zero time", ErrMalformed, s)
	}
	return t.UTC(), nil
}

// Millis truncates t to the protocol's precision (milliseconds, UTC).
func Millis(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Millisecond)
}
