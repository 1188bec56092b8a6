package protocol

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// MaxSequence bounds sequence numbers so that they stay exact in JSON
// (2^53 - 1).
const MaxSequence = 1<<53 - 1

// Integrity links an envelope into its session's hash chain and signs it.
type Integrity struct {
	// Hash is SHA-256 of the envelope's signing payload (see Envelope.Hash).
	Hash [32]byte
	// PreviousHash is the Hash of the previous envelope of the session; 32
	// zero bytes for the first.
	PreviousHash [32]byte
	// Signature is the sender's Ed25519 signature over
	// "asp/1.0 envelope" || 0x00 || Hash.
	Signature []byte
}

// Envelope is one signed message of a session.
type Envelope struct {
	Version        string       // Version ("asp/1.0")
	MessageID      string       // UUIDv7 whose time is Timestamp
	SessionID      string       // the session's id
	SequenceNumber uint64       // per sender, 1, 2, 3, …
	Timestamp      time.Time    // UTC, millisecond precision
	Sender         string       // agent id of the sender
	Recipient      string       // agent id of the recipient
	Performative   Performative // one of the 13
	Body           Body         // the performative's body type
	Certificate    *Certificate // the sender's certificate, issued by its organisation
	Integrity      Integrity
}

type wireIntegrity struct {
	Hash         b64 `cbor:"hash,omitempty" json:"hash,omitempty"`
	PreviousHash b64 `cbor:"previousHash" json:"previousHash"`
	Signature    b64 `cbor:"signature,omitempty" json:"signature,omitempty"`
}

type wireEnvelope struct {
	Version        string           `cbor:"version"`
	MessageID      string           `cbor:"messageId"`
	SessionID      string           `cbor:"sessionId"`
	SequenceNumber uint64           `cbor:"sequenceNumber"`
	Timestamp      string           `cbor:"timestamp"`
	Sender         string           `cbor:"sender"`
	Recipient      string           `cbor:"recipient"`
	Performative   string           `cbor:"performative"`
	Body           cbor.RawMessage  `cbor:"body"`
	Certificate    *wireCertificate `cbor:"certificate,omitempty"`
	Integrity      wireIntegrity    `cbor:"integrity"`
}

type jsonEnvelope struct {
	Version        string           `json:"version"`
	MessageID      string           `json:"messageId"`
	SessionID      string           `json:"sessionId"`
	SequenceNumber uint64           `json:"sequenceNumber"`
	Timestamp      string           `json:"timestamp"`
	Sender         string           `json:"sender"`
	Recipient      string           `json:"recipient"`
	Performative   string           `json:"performative"`
	Body           json.RawMessage  `json:"body"`
	Certificate    *wireCertificate `json:"certificate,omitempty"`
	Integrity      wireIntegrity    `json:"integrity"`
}

var cborNull = cbor.RawMessage{0xf6}

func hashBytes(h [32]byte) b64 {
	if h == ([32]byte{}) {
		return nil
	}
	return b64(h[:])
}

// wire returns the wire form; with signing true, integrity holds only
// previousHash (the signing payload).
func (e *Envelope) wire(signing bool) (*wireEnvelope, error) {
	body := cborNull
	if e.Body != nil {
		b, err := EncodeBody(e.Body)
		if err != nil {
			return nil, err
		}
		body = b
	}
	w := &wireEnvelope{
		Version:        e.Version,
		MessageID:      e.MessageID,
		SessionID:      e.SessionID,
		SequenceNumber: e.SequenceNumber,
		Timestamp:      FormatTime(e.Timestamp),
		Sender:         e.Sender,
		Recipient:      e.Recipient,
		Performative:   string(e.Performative),
		Body:           body,
		Integrity:      wireIntegrity{PreviousHash: e.Integrity.PreviousHash[:]},
	}
	if e.Certificate != nil {
		c := e.Certificate.wire()
		w.Certificate = &c
	}
	if !signing {
		w.Integrity.Hash = hashBytes(e.Integrity.Hash)
		w.Integrity.Signature = e.Integrity.Signature
	}
	return w, nil
}

// SigningPayload returns the canonical CBOR bytes that Hash covers: the
// envelope with integrity reduced to {previousHash}.
func (e *Envelope) SigningPayload() ([]byte, error) {
	w, err := e.wire(true)
	if err != nil {
		return nil, err
	}
	return canonical(w)
}

// Hash returns SHA-256 of the signing payload. It is computed, not read
// from Integrity.Hash. It panics if the body cannot be encoded (a body
// type from this package always can).
func (e *Envelope) Hash() [32]byte {
	p, err := e.SigningPayload()
	if err != nil {
		panic(fmt.Sprintf("protocol: envelope payload: %v", err))
	}
	return sha256.Sum256(p)
}

// Sign fills Integrity.Hash and Integrity.Signature with key, the sender
// agent's private key. Set every other field first (Session.Prepare does,
// except Certificate). If a certificate is present, key must match it.
func (e *Envelope) Sign(key ed25519.PrivateKey) error {
	if len(key) != ed25519.PrivateKeySize {
		return fmt.Errorf("%w: private key is %d bytes", ErrBadKey, len(key))
	}
	if e.Certificate != nil && !key.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(e.Certificate.PublicKey)) {
		return fmt.Errorf("%w: key does not match the certificate of %s", ErrBadKey, e.Certificate.AgentID)
	}
	p, err := e.SigningPayload()
	if err != nil {
		return err
	}
	h := sha256.Sum256(p)
	sig, err := signDigest(key, domainEnvelope, h)
	if err != nil {
		return err
	}
	e.Integrity.Hash = h
	e.Integrity.Signature = sig
	return nil
}

// Seal sets the certificate and signs: e.Certificate = cert; e.Sign(key).
func (e *Envelope) Seal(key ed25519.PrivateKey, cert *Certificate) error {
	e.Certificate = cert
	return e.Sign(key)
}

// Verify checks an envelope on its own, as an auditor holding only it
// would: well-formedness, the certificate (signed by the organisation in
// the sender's id, valid at the envelope's Timestamp, naming the sender),
// Integrity.Hash, and the sender's signature. It does not check the
// envelope's place in a session (sequence, chain, legality): Session.Step
// and Replay do.
func (e *Envelope) Verify() error {
	if err := e.check(); err != nil {
		return err
	}
	if err := e.Certificate.Verify(e.Timestamp); err != nil {
		return err
	}
	return e.verifySignature(e.Hash())
}

// verifySignature checks cert/sender agreement, the hash and the signature
// (not the certificate's own signature).
func (e *Envelope) verifySignature(h [32]byte) error { return e.verifySignatureCached(h, nil) }

// verifySignatureCached is verifySignature, skipping the Ed25519 check of a
// signature vc knows.
func (e *Envelope) verifySignatureCached(h [32]byte, vc VerifiedSignatures) error {
	c := e.Certificate
	if c == nil {
		return fmt.Errorf("%w: envelope carries no certificate", ErrBadCertificate)
	}
	if c.AgentID != e.Sender {
		return fmt.Errorf("%w: certificate of %s on a message from %s", ErrBadCertificate, c.AgentID, e.Sender)
	}
	if h != e.Integrity.Hash {
		return fmt.Errorf("%w: message %s", ErrBadHash, e.MessageID)
	}
	if vc != nil && vc.Known(c.PublicKey, cacheKey(domainEnvelope, h), e.Integrity.Signature) {
		return nil
	}
	if !verifyDigest(ed25519.PublicKey(c.PublicKey), domainEnvelope, h, e.Integrity.Signature) {
		return fmt.Errorf("%w: message %s from %s", ErrBadSignature, e.MessageID, e.Sender)
	}
	if vc != nil {
		vc.Add(c.PublicKey, cacheKey(domainEnvelope, h), e.Integrity.Signature)
	}
	return nil
}

// cacheKey binds a signed digest to its signing domain for
// VerifiedSignatures.
func cacheKey(domain string, d [32]byte) [32]byte {
	return sha256.Sum256(signedMessage(domain, d))
}

// SealedBy records in vc that e's signature, just made by the caller with
// Seal, is valid, so that stepping e costs no second Ed25519 check. It
// verifies nothing itself: call it only for an envelope you sealed.
func (e *Envelope) SealedBy(vc VerifiedSignatures) {
	if vc != nil && e.Certificate != nil && e.Integrity.Hash == e.Hash() {
		vc.Add(e.Certificate.PublicKey, cacheKey(domainEnvelope, e.Integrity.Hash), e.Integrity.Signature)
	}
}

var sessionIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// ValidSessionID checks a session id: 1–128 characters of [A-Za-z0-9._:-],
// starting with a letter or digit (a UUID, typically UUIDv7).
func ValidSessionID(id string) error {
	if !sessionIDRE.MatchString(id) {
		return fmt.Errorf("%w: session id %q", ErrMalformed, id)
	}
	return nil
}

// check verifies the envelope's well-formedness, not its signature.
func (e *Envelope) check() error { return e.checkWith(nil) }

// checkWith is check; agent ids for which known returns true are taken as
// valid without parsing them again.
func (e *Envelope) checkWith(known func(string) bool) error {
	if e.Version != Version {
		return fmt.Errorf("%w: %q", ErrVersion, e.Version)
	}
	if e.Timestamp.IsZero() || !e.Timestamp.Equal(Millis(e.Timestamp)) || e.Timestamp.Location() != time.UTC {
		return fmt.Errorf("%w: timestamp must be UTC with millisecond precision", ErrMalformed)
	}
	if y := e.Timestamp.Year(); y < 1970 || y > 9999 {
		return fmt.Errorf("%w: timestamp year %d", ErrMalformed, y)
	}
	if err := checkMessageID(e.MessageID, e.Timestamp); err != nil {
		return err
	}
	if err := ValidSessionID(e.SessionID); err != nil {
		return err
	}
	if e.SequenceNumber == 0 || e.SequenceNumber > MaxSequence {
		return fmt.Errorf("%w: sequenceNumber %d", ErrMalformed, e.SequenceNumber)
	}
	for _, a := range [2]struct{ field, id string }{{"sender", e.Sender}, {"recipient", e.Recipient}} {
		if known != nil && known(a.id) {
			continue
		}
		if _, err := ParseAgentID(a.id); err != nil {
			return fmt.Errorf("%s: %w", a.field, err)
		}
	}
	if e.Sender == e.Recipient {
		return fmt.Errorf("%w: sender is the recipient", ErrMalformed)
	}
	if !e.Performative.Valid() {
		return fmt.Errorf("%w: performative %q", ErrMalformed, e.Performative)
	}
	return checkBody(e.Performative, e.Body)
}

// EncodeEnvelope returns the canonical CBOR encoding of e (RFC 8949 core
// deterministic encoding).
func EncodeEnvelope(e *Envelope) ([]byte, error) {
	w, err := e.wire(false)
	if err != nil {
		return nil, err
	}
	return canonical(w)
}

// DecodeEnvelope decodes canonical CBOR and checks well-formedness. It
// refuses non-canonical input (ErrNonCanonical), unknown fields, floats
// where decimals belong (ErrFloat) and inputs over MaxEnvelopeSize. It
// does not verify signatures: Envelope.Verify and Session.Step do.
func DecodeEnvelope(b []byte) (*Envelope, error) {
	var w wireEnvelope
	if err := decodeCanonical(b, &w); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	return w.envelope(func(p Performative) (Body, error) { return DecodeBody(p, w.Body) })
}

func (w *wireEnvelope) envelope(body func(Performative) (Body, error)) (*Envelope, error) {
	ts, err := ParseTime(w.Timestamp)
	if err != nil {
		return nil, fmt.Errorf("envelope timestamp: %w", err)
	}
	p, err := ParsePerformative(w.Performative)
	if err != nil {
		return nil, err
	}
	e := &Envelope{
		Version:        w.Version,
		MessageID:      w.MessageID,
		SessionID:      w.SessionID,
		SequenceNumber: w.SequenceNumber,
		Timestamp:      ts,
		Sender:         w.Sender,
		Recipient:      w.Recipient,
		Performative:   p,
	}
	if w.Certificate != nil {
		if e.Certificate, err = w.Certificate.cert(); err != nil {
			return nil, err
		}
	}
	if err := copyHash(&e.Integrity.PreviousHash, w.Integrity.PreviousHash, true); err != nil {
		return nil, fmt.Errorf("previousHash: %w", err)
	}
	if err := copyHash(&e.Integrity.Hash, w.Integrity.Hash, false); err != nil {
		return nil, fmt.Errorf("hash: %w", err)
	}
	if len(w.Integrity.Signature) > 0 {
		e.Integrity.Signature = []byte(w.Integrity.Signature)
	}
	if e.Body, err = body(p); err != nil {
		return nil, err
	}
	if err := e.check(); err != nil {
		return nil, err
	}
	return e, nil
}

func copyHash(dst *[32]byte, src []byte, required bool) error {
	if len(src) == 0 && !required {
		return nil
	}
	if len(src) != 32 {
		return fmt.Errorf("%w: %d bytes, want 32", ErrMalformed, len(src))
	}
	copy(dst[:], src)
	return nil
}

// MarshalJSON returns the application/asp+json form of the envelope:
// camelCase fields, times in TimeLayout, byte strings in unpadded
// base64url. Decoding it yields the same signed bytes.
func (e *Envelope) MarshalJSON() ([]byte, error) {
	w, err := e.wire(false)
	if err != nil {
		return nil, err
	}
	var body json.RawMessage = []byte("null")
	if e.Body != nil {
		if body, err = MarshalBodyJSON(e.Body); err != nil {
			return nil, err
		}
	}
	return json.Marshal(&jsonEnvelope{w.Version, w.MessageID, w.SessionID, w.SequenceNumber, w.Timestamp,
		w.Sender, w.Recipient, w.Performative, body, w.Certificate, w.Integrity})
}

// UnmarshalJSON decodes the application/asp+json form strictly and checks
// well-formedness, like DecodeEnvelope.
func (e *Envelope) UnmarshalJSON(b []byte) error {
	var j jsonEnvelope
	if err := strictJSON(b, &j); err != nil {
		return fmt.Errorf("envelope: %w", err)
	}
	w := wireEnvelope{j.Version, j.MessageID, j.SessionID, j.SequenceNumber, j.Timestamp, j.Sender,
		j.Recipient, j.Performative, nil, j.Certificate, j.Integrity}
	x, err := w.envelope(func(p Performative) (Body, error) { return DecodeBodyJSON(p, j.Body) })
	if err != nil {
		return err
	}
	*e = *x
	return nil
}

// NewMessageID returns a UUIDv7 (RFC 9562) for time t, with 74 random bits
// read from rnd.
func NewMessageID(t time.Time, rnd io.Reader) (string, error) {
	var u [16]byte
	if _, err := io.ReadFull(rnd, u[6:]); err != nil {
		return "", fmt.Errorf("message id randomness: %w", err)
	}
	ms := uint64(t.UnixMilli())
	for i := 0; i < 6; i++ {
		u[i] = byte(ms >> (40 - 8*i))
	}
	u[6] = 0x70 | u[6]&0x0f
	u[8] = 0x80 | u[8]&0x3f
	return formatUUID(u), nil
}

// NewSessionID returns a fresh session id (a UUIDv7).
func NewSessionID(t time.Time, rnd io.Reader) (string, error) { return NewMessageID(t, rnd) }

func formatUUID(u [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// checkMessageID requires a lower-case UUIDv7 whose 48-bit time is ts.
func checkMessageID(id string, ts time.Time) error {
	if !uuidRE.MatchString(id) {
		return fmt.Errorf("%w: messageId %q is not a lower-case UUIDv7", ErrMalformed, id)
	}
	raw, _ := hex.DecodeString(id[0:8] + id[9:13])
	var ms int64
	for _, c := range raw {
		ms = ms<<8 | int64(c)
	}
	if ms != ts.UnixMilli() {
		return fmt.Errorf("%w: messageId %s does not carry the envelope's timestamp", ErrMalformed, id)
	}
	return nil
}
