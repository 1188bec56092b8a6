package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Signature domains of the dispute records (see codec.go).
const (
	domainDispute     = "asp/1.0 dispute"
	domainDisputeStep = "asp/1.0 dispute-step"
	domainRuling      = "asp/1.0 ruling"
)

// Grounds of a dispute: a fixed set.
type Grounds string

// Dispute grounds.
const (
	GroundsTimeoutBreach          Grounds = "timeout_breach"
	GroundsNonDelivery            Grounds = "non_delivery"
	GroundsSpecificationMismatch  Grounds = "specification_mismatch"
	GroundsUnauthorizedTermChange Grounds = "unauthorized_term_change"
	GroundsPaymentDefault         Grounds = "payment_default"
	GroundsOther                  Grounds = "other"
)

// Valid reports whether g is one of the fixed grounds.
func (g Grounds) Valid() bool {
	switch g {
	case GroundsTimeoutBreach, GroundsNonDelivery, GroundsSpecificationMismatch, GroundsUnauthorizedTermChange,
		GroundsPaymentDefault, GroundsOther:
		return true
	}
	return false
}

// Evidence kinds.
const (
	EvidenceEntry    = "entry"    // a ledger entry with its inclusion proof against a signed checkpoint
	EvidenceDocument = "document" // a document, by hash and content
)

// EvidenceItem is one piece of a dispute's evidence: a ledger entry
// (Entry, Index, Proof, Checkpoint), whose proof the caller verifies with
// a ProofVerifier (protocol knows no ledger), or a document (Hash, the
// SHA-256 of Content, checked here).
type EvidenceItem struct {
	Kind        string   // EvidenceEntry or EvidenceDocument
	Entry       []byte   // entry: the ledger entry's bytes, as hashed into the log
	Index       uint64   // entry: its index in the log
	Proof       [][]byte // entry: the inclusion proof's hashes
	Checkpoint  string   // entry: the signed checkpoint (C2SP signed note) the proof is against
	Hash        []byte   // document: SHA-256 of Content
	Content     []byte   // document: the document
	MediaType   string   // document: e.g. "application/json", optional
	Description string   // what it shows, optional
}

// ProofVerifier checks that entry is at index in the log whose signed
// checkpoint is checkpoint, by the inclusion proof. The node passes one
// built on its ledger package and the trusted keys of the log's origin.
type ProofVerifier func(entry []byte, index uint64, proof [][]byte, checkpoint string) error

const (
	maxEvidenceItems = 16
	maxProofHashes   = 64
)

type wireEvidence struct {
	Kind        string `cbor:"kind" json:"kind"`
	Entry       b64    `cbor:"entry,omitempty" json:"entry,omitempty"`
	Index       uint64 `cbor:"index,omitempty" json:"index,omitempty"`
	Proof       []b64  `cbor:"proof,omitempty" json:"proof,omitempty"`
	Checkpoint  string `cbor:"checkpoint,omitempty" json:"checkpoint,omitempty"`
	Hash        b64    `cbor:"hash,omitempty" json:"hash,omitempty"`
	Content     b64    `cbor:"content,omitempty" json:"content,omitempty"`
	MediaType   string `cbor:"mediaType,omitempty" json:"mediaType,omitempty"`
	Description string `cbor:"description,omitempty" json:"description,omitempty"`
}

func (e EvidenceItem) wire() wireEvidence {
	w := wireEvidence{e.Kind, e.Entry, e.Index, nil, e.Checkpoint, e.Hash, e.Content, e.MediaType, e.Description}
	for _, p := range e.Proof {
		w.Proof = append(w.Proof, p)
	}
	return w
}

func (w wireEvidence) item() EvidenceItem {
	e := EvidenceItem{w.Kind, nilIfEmpty([]byte(w.Entry)), w.Index, nil, w.Checkpoint, nilIfEmpty([]byte(w.Hash)),
		nilIfEmpty([]byte(w.Content)), w.MediaType, w.Description}
	for _, p := range w.Proof {
		e.Proof = append(e.Proof, []byte(p))
	}
	return e
}

func (e *EvidenceItem) check(i int) error {
	f := fmt.Sprintf("evidence[%d]", i)
	if err := checkText(f+".description", e.Description, maxText, false); err != nil {
		return err
	}
	switch e.Kind {
	case EvidenceEntry:
		if len(e.Entry) == 0 || len(e.Entry) > maxEvidence || e.Checkpoint == "" || len(e.Proof) > maxProofHashes ||
			len(e.Hash)+len(e.Content)+len(e.MediaType) != 0 {
			return fmt.Errorf("%w: %s: an entry needs entry, proof (≤ %d) and checkpoint only", ErrMalformed, f, maxProofHashes)
		}
		for _, p := range e.Proof {
			if len(p) != sha256.Size {
				return fmt.Errorf("%w: %s: proof hash of %d bytes", ErrMalformed, f, len(p))
			}
		}
		return checkText(f+".checkpoint", e.Checkpoint, maxText, true)
	case EvidenceDocument:
		if len(e.Entry)+len(e.Proof)+len(e.Checkpoint) != 0 || e.Index != 0 || len(e.Content) > maxEvidence {
			return fmt.Errorf("%w: %s: a document carries hash, content and media type only", ErrMalformed, f)
		}
		if h := sha256.Sum256(e.Content); !bytes.Equal(h[:], e.Hash) {
			return fmt.Errorf("%w: %s: hash is not SHA-256 of the content", ErrBadHash, f)
		}
		return checkText(f+".mediaType", e.MediaType, maxShort, false)
	}
	return fmt.Errorf("%w: %s kind %q", ErrMalformed, f, e.Kind)
}

// Dispute is a signed filing: a party's complaint about a commitment.
// Its id ("dsp_…", DisputeID) derives from the signed payload.
type Dispute struct {
	CommitmentID string
	Obligation   string // key of the obligation disputed ("delivery", "payment", "commit.<i>"), optional
	FiledBy      string // agent id of the filing party; signs the filing
	Against      string // agent id of the other party
	Grounds      Grounds
	Severity     int    // 1 (minor) to 5 (grave)
	Claim        string // the remedy asked, free text (required)
	Statement    string // what happened, free text, optional
	Evidence     []EvidenceItem
	Time         time.Time // UTC, ms
	Signatures   []ActionSignature
}

type wireDispute struct {
	CommitmentID string                `cbor:"commitmentId" json:"commitmentId"`
	Obligation   string                `cbor:"obligation,omitempty" json:"obligation,omitempty"`
	FiledBy      string                `cbor:"filedBy" json:"filedBy"`
	Against      string                `cbor:"against" json:"against"`
	Grounds      string                `cbor:"grounds" json:"grounds"`
	Severity     int                   `cbor:"severity" json:"severity"`
	Claim        string                `cbor:"claim" json:"claim"`
	Statement    string                `cbor:"statement,omitempty" json:"statement,omitempty"`
	Evidence     []wireEvidence        `cbor:"evidence,omitempty" json:"evidence,omitempty"`
	Time         string                `cbor:"time" json:"time"`
	Signatures   []wireActionSignature `cbor:"signatures,omitempty" json:"signatures,omitempty"`
}

func (d *Dispute) wire(signing bool) *wireDispute {
	w := &wireDispute{d.CommitmentID, d.Obligation, d.FiledBy, d.Against, string(d.Grounds), d.Severity, d.Claim,
		d.Statement, nil, FormatTime(d.Time), nil}
	for _, e := range d.Evidence {
		w.Evidence = append(w.Evidence, e.wire())
	}
	if !signing {
		w.Signatures = wireSignatures(d.Signatures)
	}
	return w
}

func (w *wireDispute) dispute() (*Dispute, error) {
	t, err := ParseTime(w.Time)
	if err != nil {
		return nil, fmt.Errorf("dispute time: %w", err)
	}
	d := &Dispute{CommitmentID: w.CommitmentID, Obligation: w.Obligation, FiledBy: w.FiledBy, Against: w.Against,
		Grounds: Grounds(w.Grounds), Severity: w.Severity, Claim: w.Claim, Statement: w.Statement, Time: t}
	for _, e := range w.Evidence {
		d.Evidence = append(d.Evidence, e.item())
	}
	if d.Signatures, err = fromWireSignatures(w.Signatures); err != nil {
		return nil, err
	}
	return d, d.check()
}

func (d *Dispute) check() error {
	if err := checkText("commitmentId", d.CommitmentID, maxShort, true); err != nil {
		return err
	}
	if err := checkObligationKey("obligation", d.Obligation, false); err != nil {
		return err
	}
	if err := checkAgent("filedBy", d.FiledBy, true); err != nil {
		return err
	}
	if err := checkAgent("against", d.Against, true); err != nil {
		return err
	}
	if d.FiledBy == d.Against {
		return fmt.Errorf("%w: a dispute against oneself", ErrMalformed)
	}
	if !d.Grounds.Valid() {
		return fmt.Errorf("%w: grounds %q", ErrMalformed, d.Grounds)
	}
	if d.Severity < 1 || d.Severity > 5 {
		return fmt.Errorf("%w: severity %d is not 1 to 5", ErrMalformed, d.Severity)
	}
	if err := checkText("claim", d.Claim, maxText, true); err != nil {
		return err
	}
	if err := checkText("statement", d.Statement, maxText, false); err != nil {
		return err
	}
	if len(d.Evidence) > maxEvidenceItems {
		return fmt.Errorf("%w: more than %d evidence items", ErrTooLarge, maxEvidenceItems)
	}
	for i := range d.Evidence {
		if err := d.Evidence[i].check(i); err != nil {
			return err
		}
	}
	return checkRecordTime(d.Time, len(d.Signatures))
}

// Digest returns SHA-256 of the filing's canonical payload (without
// signatures): what the filer signs.
func (d *Dispute) Digest() ([32]byte, error) {
	dg, _, err := digest(d.wire(true))
	return dg, err
}

// DisputeIDPrefix starts every dispute id.
const DisputeIDPrefix = "dsp_"

// ID returns the dispute's id: "dsp_" and the lower-case hex of the first
// 16 bytes of SHA-256("asp/1.0 dispute id" || 0x00 || Digest()). The
// digest covers every field the filer signs, so the id names one filing.
func (d *Dispute) ID() string {
	dg, err := d.Digest()
	if err != nil {
		return ""
	}
	h := sha256.Sum256(append([]byte("asp/1.0 dispute id\x00"), dg[:]...))
	return DisputeIDPrefix + hex.EncodeToString(h[:16])
}

// Sign adds the filer's signature. Set every other field first.
func (d *Dispute) Sign(key ed25519.PrivateKey, cert *Certificate) error {
	if err := d.check(); err != nil {
		return err
	}
	dg, err := d.Digest()
	if err != nil {
		return err
	}
	s, err := signRecord(domainDispute, dg, key, cert)
	if err != nil {
		return err
	}
	d.Signatures = append(d.Signatures, s)
	return nil
}

// Verify checks the filing's form, its documents' hashes and its one
// signature: by FiledBy, with a certificate valid at Time. Entries'
// inclusion proofs are checked by VerifyEvidence.
func (d *Dispute) Verify() error {
	if err := d.check(); err != nil {
		return err
	}
	dg, err := d.Digest()
	if err != nil {
		return err
	}
	return verifyRecord(domainDispute, dg, d.Signatures, d.Time, d.FiledBy)
}

// VerifyEvidence checks every ledger-entry item with verify (an error
// wrapping ErrBadEvidence for the first that fails, or when verify is nil
// and there is an entry to check).
func (d *Dispute) VerifyEvidence(verify ProofVerifier) error {
	for i, e := range d.Evidence {
		if e.Kind != EvidenceEntry {
			continue
		}
		if verify == nil {
			return fmt.Errorf("%w: evidence[%d]: no proof verifier", ErrBadEvidence, i)
		}
		if err := verify(e.Entry, e.Index, e.Proof, e.Checkpoint); err != nil {
			return fmt.Errorf("%w: evidence[%d]: %v", ErrBadEvidence, i, err)
		}
	}
	return nil
}

// EncodeDispute returns the canonical CBOR of a filing.
func EncodeDispute(d *Dispute) ([]byte, error) { return canonical(d.wire(false)) }

// DecodeDispute decodes canonical CBOR and checks the form; it does not
// verify the signature (Verify) or the proofs (VerifyEvidence).
func DecodeDispute(b []byte) (*Dispute, error) {
	var w wireDispute
	if err := decodeCanonical(b, &w); err != nil {
		return nil, fmt.Errorf("dispute: %w", err)
	}
	return w.dispute()
}

// MarshalJSON encodes the filing's JSON form.
func (d *Dispute) MarshalJSON() ([]byte, error) { return json.Marshal(d.wire(false)) }

// UnmarshalJSON decodes the filing's JSON form strictly.
func (d *Dispute) UnmarshalJSON(b []byte) error {
	var w wireDispute
	if err := strictJSON(b, &w); err != nil {
		return err
	}
	x, err := w.dispute()
	if err != nil {
		return err
	}
	*d = *x
	return nil
}

// Shared by the dispute records: signatures as in actions, a record time
// in ms, at most two signers.

func wireSignatures(sigs []ActionSignature) []wireActionSignature {
	var out []wireActionSignature
	for _, s := range sigs {
		ws := wireActionSignature{Signature: s.Signature}
		if s.Certificate != nil {
			c := s.Certificate.wire()
			ws.Certificate = &c
		}
		out = append(out, ws)
	}
	return out
}

func fromWireSignatures(ws []wireActionSignature) ([]ActionSignature, error) {
	var out []ActionSignature
	for _, s := range ws {
		as := ActionSignature{Signature: s.Signature}
		if s.Certificate != nil {
			c, err := s.Certificate.cert()
			if err != nil {
				return nil, err
			}
			as.Certificate = c
		}
		out = append(out, as)
	}
	return out, nil
}

func checkRecordTime(t time.Time, sigs int) error {
	if t.IsZero() || !t.Equal(Millis(t)) {
		return fmt.Errorf("%w: time must be set, in milliseconds", ErrMalformed)
	}
	if sigs > 2 {
		return fmt.Errorf("%w: too many signatures", ErrMalformed)
	}
	return nil
}

func signRecord(domain string, d [32]byte, key ed25519.PrivateKey, cert *Certificate) (ActionSignature, error) {
	if cert == nil || !key.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(cert.PublicKey)) {
		return ActionSignature{}, fmt.Errorf("%w: key does not match the certificate", ErrBadKey)
	}
	sig, err := signDigest(key, domain, d)
	if err != nil {
		return ActionSignature{}, err
	}
	return ActionSignature{cert, sig}, nil
}

// verifyRecord checks every signature (certificate valid at t, issued by
// the signer's organisation, signature over domain and d), no signer
// twice, and that each of want signed.
func verifyRecord(domain string, d [32]byte, sigs []ActionSignature, t time.Time, want ...string) error {
	seen := map[string]bool{}
	for _, s := range sigs {
		if s.Certificate == nil {
			return fmt.Errorf("%w: signature without certificate", ErrMalformed)
		}
		if err := s.Certificate.Verify(t); err != nil {
			return err
		}
		if seen[s.Certificate.AgentID] {
			return fmt.Errorf("%w: %s", ErrDuplicateSignature, s.Certificate.AgentID)
		}
		seen[s.Certificate.AgentID] = true
		if !verifyDigest(ed25519.PublicKey(s.Certificate.PublicKey), domain, d, s.Signature) {
			return fmt.Errorf("%w: %s by %s", ErrBadSignature, domain, s.Certificate.AgentID)
		}
	}
	for _, w := range want {
		if !seen[w] {
			return fmt.Errorf("%w: %s did not sign", ErrMissingSignature, w)
		}
	}
	return nil
}
