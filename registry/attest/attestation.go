package attest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"slices"
	"time"

	"github.com/aspnode/asp/protocol"
	"github.com/fxamacker/cbor/v2"
)

// MaxSize bounds an encoded attestation (512 KiB): two envelopes with
// generous terms and a certificate fit, and it stays below GossipSub's
// 1 MiB message limit.
const MaxSize = 512 << 10

// MaxClockSkew is how far in the future of the verifier's clock an
// attestation's time may lie, and how far before the acceptance's
// timestamp (the two come from different organisations' clocks).
const MaxClockSkew = 5 * time.Minute

// signatureDomain separates attestation signatures from every other
// signature of the protocol: the attester signs
// "asp/1.0 attestation" || 0x00 || SHA-256(signing payload).
const signatureDomain = "asp/1.0 attestation"

// maxID bounds CommitmentID.
const maxID = 256

// Version is the attestation format: asp/1.1 attestations carry both
// organisations' receipts (protocol receipt format asp/1.1) besides the
// offer and the acceptance. asp/1.0 attestations, which carried no
// receipts, are refused.
const Version = "asp/1.1"

// maxReceipts bounds Receipts: one per party organisation.
const maxReceipts = 2

// Outcome is what an attester says the subject did with the commitment.
// Its values are the wire names the trust model parses
// (registry/trust.ParseOutcome).
type Outcome string

// The outcomes.
const (
	Fulfilled   Outcome = "fulfilled"    // the subject delivered
	Breached    Outcome = "breached"     // the subject broke the commitment
	DisputeLost Outcome = "dispute_lost" // a dispute was ruled against the subject
	DisputeWon  Outcome = "dispute_won"  // a dispute was ruled for the subject
	Cancelled   Outcome = "cancelled"    // both parties agreed to cancel
	Expired     Outcome = "expired"      // the deadline passed with nothing delivered
)

// Outcomes lists every outcome.
var Outcomes = []Outcome{Fulfilled, Breached, DisputeLost, DisputeWon, Cancelled, Expired}

// Valid reports whether o is one of Outcomes.
func (o Outcome) Valid() bool {
	switch o {
	case Fulfilled, Breached, DisputeLost, DisputeWon, Cancelled, Expired:
		return true
	}
	return false
}

// Attestation is one party's signed statement about how the other party
// of a commitment behaved. It carries its evidence, so that any node can
// verify it on its own: the offer and acceptance envelopes that form the
// commitment (both signed, each with its sender's certificate), every
// party organisation's receipt for that commitment (each organisation's
// signature that it recorded it) and the attester's certificate.
type Attestation struct {
	Attester     string    // agent id of the signer, a party of the commitment
	Subject      string    // agent id of the other party
	CommitmentID string    // id of the commitment, as protocol derives it ("cmt_…")
	Outcome      Outcome   // what the subject did
	Time         time.Time // when the attester states it (UTC, millisecond precision)

	// Offer and Acceptance are the canonical CBOR encodings
	// (protocol.EncodeEnvelope) of the signed offer and of the signed
	// ACCEPT that, together, form the commitment.
	Offer      []byte
	Acceptance []byte

	// Receipts are the canonical CBOR encodings (protocol.EncodeReceipt)
	// of the receipts of the commitment's organisations: two when the
	// parties belong to different organisations. Each is signed by its
	// organisation's identity key (the key of the peer id it names), over
	// the full hashes of Offer and Acceptance, so it verifies offline;
	// the checkpoint inside it is not examined here.
	Receipts [][]byte

	// Certificate is the attester's certificate, issued by the attester's
	// organisation; its key made Signature.
	Certificate *protocol.Certificate

	// Signature is the attester's Ed25519 signature over
	// "asp/1.0 attestation" || 0x00 || SHA-256(SigningPayload()).
	Signature []byte
}

// wireAttestation is the canonical CBOR form. Times are strings in
// protocol.TimeLayout, as everywhere on the wire.
type wireAttestation struct {
	Version      string                `cbor:"version"`
	Attester     string                `cbor:"attester"`
	Subject      string                `cbor:"subject"`
	CommitmentID string                `cbor:"commitmentId"`
	Outcome      string                `cbor:"outcome"`
	Time         string                `cbor:"time"`
	Offer        []byte                `cbor:"offer"`
	Acceptance   []byte                `cbor:"acceptance"`
	Receipts     [][]byte              `cbor:"receipts"`
	Certificate  *protocol.Certificate `cbor:"certificate"`
	Signature    []byte                `cbor:"signature,omitempty"`
}

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	encMode, decMode = protocol.CanonicalCBOR(16, 4096, 4096)
}

func (a *Attestation) wire(signing bool) *wireAttestation {
	w := &wireAttestation{
		Version:      Version,
		Attester:     a.Attester,
		Subject:      a.Subject,
		CommitmentID: a.CommitmentID,
		Outcome:      string(a.Outcome),
		Time:         protocol.FormatTime(a.Time),
		Offer:        a.Offer,
		Acceptance:   a.Acceptance,
		Receipts:     a.Receipts,
		Certificate:  a.Certificate,
	}
	if w.Receipts == nil {
		w.Receipts = [][]byte{}
	}
	if w.Offer == nil {
		w.Offer = []byte{}
	}
	if w.Acceptance == nil {
		w.Acceptance = []byte{}
	}
	if !signing {
		w.Signature = a.Signature
	}
	return w
}

// SigningPayload returns the canonical CBOR bytes whose SHA-256 the
// attester signs: every field but the signature.
func (a *Attestation) SigningPayload() ([]byte, error) {
	b, err := encMode.Marshal(a.wire(true))
	if err != nil {
		return nil, fmt.Errorf("%w: encode: %v", ErrMalformed, err)
	}
	return b, nil
}

// Encode returns the canonical CBOR encoding of a (RFC 8949 core
// deterministic encoding), what is gossiped and recorded in ledgers.
func (a *Attestation) Encode() ([]byte, error) {
	b, err := encMode.Marshal(a.wire(false))
	if err != nil {
		return nil, fmt.Errorf("%w: encode: %v", ErrMalformed, err)
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrMalformed, len(b), MaxSize)
	}
	return b, nil
}

// Hash returns SHA-256 of the encoding: the attestation's identity, under
// which Services deduplicate it.
func (a *Attestation) Hash() ([32]byte, error) {
	b, err := a.Encode()
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}

// Decode parses the canonical CBOR encoding of an attestation. It refuses
// inputs over MaxSize, unknown or duplicate fields, non-canonical
// encodings, another version and times not in protocol.TimeLayout, all
// with errors wrapping ErrMalformed. It verifies nothing: call Verify.
func Decode(b []byte) (*Attestation, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrMalformed, len(b), MaxSize)
	}
	var w wireAttestation
	if err := decMode.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if w.Version != Version {
		return nil, fmt.Errorf("%w: version %q", ErrMalformed, w.Version)
	}
	t, err := protocol.ParseTime(w.Time)
	if err != nil {
		return nil, fmt.Errorf("%w: time: %w", ErrMalformed, err)
	}
	a := &Attestation{
		Attester:     w.Attester,
		Subject:      w.Subject,
		CommitmentID: w.CommitmentID,
		Outcome:      Outcome(w.Outcome),
		Time:         t,
		Offer:        w.Offer,
		Acceptance:   w.Acceptance,
		Receipts:     w.Receipts,
		Certificate:  w.Certificate,
		Signature:    w.Signature,
	}
	if len(a.Receipts) == 0 {
		a.Receipts = nil
	}
	again, err := a.Encode()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, b) {
		return nil, fmt.Errorf("%w: not the canonical encoding", ErrMalformed)
	}
	return a, nil
}

// Sign sets Time's precision to milliseconds and fills Signature with
// key, the attester agent's private key, which must match Certificate
// (issued for Attester). Set every other field first.
func (a *Attestation) Sign(key ed25519.PrivateKey) error {
	if len(key) != ed25519.PrivateKeySize {
		return fmt.Errorf("%w: private key is %d bytes", ErrMalformed, len(key))
	}
	if a.Certificate == nil {
		return fmt.Errorf("%w: no certificate", ErrMalformed)
	}
	if a.Certificate.AgentID != a.Attester {
		return fmt.Errorf("%w: certificate of %s for attester %s", ErrMalformed, a.Certificate.AgentID, a.Attester)
	}
	if !key.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(a.Certificate.PublicKey)) {
		return fmt.Errorf("%w: key does not match the certificate of %s", ErrMalformed, a.Attester)
	}
	a.Time = protocol.Millis(a.Time)
	p, err := a.SigningPayload()
	if err != nil {
		return err
	}
	a.Signature = ed25519.Sign(key, signedMessage(p))
	return nil
}

func signedMessage(payload []byte) []byte {
	d := sha256.Sum256(payload)
	m := make([]byte, 0, len(signatureDomain)+1+len(d))
	m = append(m, signatureDomain...)
	m = append(m, 0)
	return append(m, d[:]...)
}

// check verifies the grammar of the fields, not the signatures.
func (a *Attestation) check() (attester, subject protocol.AgentID, err error) {
	if attester, err = protocol.ParseAgentID(a.Attester); err != nil {
		return attester, subject, fmt.Errorf("%w: attester: %w", ErrMalformed, err)
	}
	if subject, err = protocol.ParseAgentID(a.Subject); err != nil {
		return attester, subject, fmt.Errorf("%w: subject: %w", ErrMalformed, err)
	}
	if a.CommitmentID == "" || len(a.CommitmentID) > maxID {
		return attester, subject, fmt.Errorf("%w: commitment id of %d bytes", ErrMalformed, len(a.CommitmentID))
	}
	if !a.Outcome.Valid() {
		return attester, subject, fmt.Errorf("%w: outcome %q", ErrMalformed, a.Outcome)
	}
	if a.Time.IsZero() || !a.Time.Equal(protocol.Millis(a.Time)) {
		return attester, subject, fmt.Errorf("%w: time must be set, with millisecond precision", ErrMalformed)
	}
	if y := a.Time.Year(); y < 1970 || y > 9999 {
		return attester, subject, fmt.Errorf("%w: time year %d", ErrMalformed, y)
	}
	if len(a.Offer) == 0 || len(a.Acceptance) == 0 {
		return attester, subject, fmt.Errorf("%w: evidence missing", ErrMalformed)
	}
	if len(a.Receipts) > maxReceipts {
		return attester, subject, fmt.Errorf("%w: %d receipts", ErrMalformed, len(a.Receipts))
	}
	if a.Certificate == nil {
		return attester, subject, fmt.Errorf("%w: no certificate", ErrMalformed)
	}
	if len(a.Signature) != ed25519.SignatureSize {
		return attester, subject, fmt.Errorf("%w: signature of %d bytes", ErrMalformed, len(a.Signature))
	}
	return attester, subject, nil
}

// Verify checks the attestation on its own, as any node holding only it
// would, at time now:
//
//   - the fields are well formed (ErrMalformed);
//   - Time is no later than now + MaxClockSkew (ErrStale);
//   - the attester is not the subject (ErrNotParty);
//   - Certificate names Attester, is signed by the attester's
//     organisation (the peer id in the agent id) and is valid at Time, and
//     Signature verifies under its key (ErrForged);
//   - Offer and Acceptance decode (ErrMalformed) and verify: signatures,
//     integrity hashes, certificates valid at their timestamps (ErrForged);
//   - the acceptance accepts the offer, was signed no later than the
//     offer's validUntil, and the commitment they form has the id
//     CommitmentID, and Time is not before the acceptance (minus
//     MaxClockSkew) (ErrMismatch);
//   - Receipts decode (ErrMalformed) and hold the receipt of every party
//     organisation of that commitment, each naming it by the full hashes
//     of its offer and acceptance (ErrUnreceipted) and signed by that
//     organisation (ErrForged): without both, the commitment is only
//     what one side signed, and proves nothing about the other;
//   - Attester is one party of that commitment and Subject the other
//     (ErrNotParty).
//
// Verify does not judge whether the outcome is true: only the parties
// know; the trust model weighs attesters.
func (a *Attestation) Verify(now time.Time) error {
	_, err := a.verify(now, nil)
	return err
}

// evidenceCache remembers commitments formed from evidence already
// verified, keyed by evidenceKey. The evidence bytes are canonical and
// their verification does not depend on the verifier's clock, so the
// same bytes always give the same commitment.
type evidenceCache interface {
	get(key [32]byte) (*protocol.Commitment, bool)
	put(key [32]byte, c *protocol.Commitment)
}

// evidenceKey identifies the evidence of a.
func (a *Attestation) evidenceKey() [32]byte {
	h := sha256.New()
	o, c := sha256.Sum256(a.Offer), sha256.Sum256(a.Acceptance)
	h.Write(o[:])
	h.Write(c[:])
	// The receipts in either order (each party's node lists its own
	// first): the same evidence.
	rs := make([][32]byte, len(a.Receipts))
	for i, r := range a.Receipts {
		rs[i] = sha256.Sum256(r)
	}
	slices.SortFunc(rs, func(x, y [32]byte) int { return bytes.Compare(x[:], y[:]) })
	for _, x := range rs {
		h.Write(x[:])
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// verify is Verify, returning the commitment it checked; cache, if not
// nil, saves verifying evidence seen before.
func (a *Attestation) verify(now time.Time, cache evidenceCache) (*protocol.Commitment, error) {
	if _, _, err := a.check(); err != nil {
		return nil, err
	}
	if a.Time.After(now.Add(MaxClockSkew)) {
		return nil, fmt.Errorf("%w: time %s is ahead of %s", ErrStale, protocol.FormatTime(a.Time), protocol.FormatTime(now))
	}
	if a.Attester == a.Subject {
		return nil, fmt.Errorf("%w: %s attests about itself", ErrNotParty, a.Attester)
	}
	c := a.Certificate
	if c.AgentID != a.Attester {
		return nil, fmt.Errorf("%w: certificate of %s on an attestation by %s", ErrForged, c.AgentID, a.Attester)
	}
	p, err := a.SigningPayload()
	if err != nil {
		return nil, err
	}
	if !ed25519.Verify(ed25519.PublicKey(c.PublicKey), signedMessage(p), a.Signature) {
		return nil, fmt.Errorf("%w: signature of %s", ErrForged, a.Attester)
	}
	// The evidence: verified before (cache), or decoded now and verified
	// below.
	var (
		key        [32]byte
		cm         *protocol.Commitment
		cached     bool
		offer, acc *protocol.Envelope
		receipts   []*protocol.Receipt
	)
	if cache != nil {
		key = a.evidenceKey()
		cm, cached = cache.get(key)
	}
	if cached {
		offer, acc = cm.Offer, cm.Acceptance
	} else if offer, acc, receipts, err = decodeEvidence(a.Offer, a.Acceptance, a.Receipts); err != nil {
		return nil, err
	}
	// The attester's certificate. When it is the one the attester's
	// envelope carries, the evidence's verification covers its signature.
	if sameCertificate(c, certificateOf(a.Attester, offer, acc)) {
		if a.Time.After(c.NotAfter) {
			return nil, fmt.Errorf("%w: attester certificate: %w: %s expired at %s", ErrForged,
				protocol.ErrCertificateExpired, c.AgentID, protocol.FormatTime(c.NotAfter))
		}
	} else if err := c.Verify(a.Time); err != nil {
		return nil, fmt.Errorf("%w: attester certificate: %w", ErrForged, err)
	}
	if !cached {
		if cm, err = rebuild(offer, acc, receipts); err != nil {
			return nil, err
		}
		if cache != nil {
			cache.put(key, cm)
		}
	}
	if cm.ID != a.CommitmentID {
		return nil, fmt.Errorf("%w: evidence forms %s, not %s", ErrMismatch, cm.ID, a.CommitmentID)
	}
	if a.Time.Before(cm.Created.Add(-MaxClockSkew)) {
		return nil, fmt.Errorf("%w: attested at %s, before the commitment was formed at %s", ErrMismatch,
			protocol.FormatTime(a.Time), protocol.FormatTime(cm.Created))
	}
	if !cm.IsParty(a.Attester) {
		return nil, fmt.Errorf("%w: %s is not a party of %s", ErrNotParty, a.Attester, cm.ID)
	}
	if other := counterparty(cm, a.Attester); a.Subject != other {
		return nil, fmt.Errorf("%w: subject %s is not the counterparty %s", ErrNotParty, a.Subject, other)
	}
	return cm, nil
}

// FromCommitment makes the attestation by cert's agent, a party of c,
// about the other party, signed with key (which must match cert): outcome
// at t (truncated to milliseconds), with c's offer, acceptance and
// receipts as evidence. c must hold every party organisation's receipt
// (ErrUnreceipted).
func FromCommitment(c *protocol.Commitment, outcome Outcome, t time.Time, key ed25519.PrivateKey, cert *protocol.Certificate) (*Attestation, error) {
	if c == nil || c.Offer == nil || c.Acceptance == nil {
		return nil, fmt.Errorf("%w: commitment without offer or acceptance", ErrMalformed)
	}
	if !c.Receipted() {
		return nil, fmt.Errorf("%w: %s holds %d receipts", ErrUnreceipted, c.ID, len(c.Receipts))
	}
	if cert == nil {
		return nil, fmt.Errorf("%w: no certificate", ErrMalformed)
	}
	if !c.IsParty(cert.AgentID) {
		return nil, fmt.Errorf("%w: %s is not a party of %s", ErrNotParty, cert.AgentID, c.ID)
	}
	offer, err := protocol.EncodeEnvelope(c.Offer)
	if err != nil {
		return nil, fmt.Errorf("%w: offer: %w", ErrMalformed, err)
	}
	acc, err := protocol.EncodeEnvelope(c.Acceptance)
	if err != nil {
		return nil, fmt.Errorf("%w: acceptance: %w", ErrMalformed, err)
	}
	var receipts [][]byte
	for _, r := range c.Receipts {
		b, err := protocol.EncodeReceipt(r)
		if err != nil {
			return nil, fmt.Errorf("%w: receipt: %w", ErrMalformed, err)
		}
		receipts = append(receipts, b)
	}
	a := &Attestation{
		Attester:     cert.AgentID,
		Subject:      counterparty(c, cert.AgentID),
		CommitmentID: c.ID,
		Outcome:      outcome,
		Time:         protocol.Millis(t),
		Offer:        offer,
		Acceptance:   acc,
		Receipts:     receipts,
		Certificate:  cert,
	}
	if err := a.Sign(key); err != nil {
		return nil, err
	}
	return a, nil
}
