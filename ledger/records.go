package ledger

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aspnode/asp/protocol"
	"github.com/fxamacker/cbor/v2"
)

// The records the node writes, each with its constructor, its decoder and
// what VerifyProtocolBody checks of it, side by side: the node builds its
// records here, recovery reads them back here, and an auditor verifies
// them here, so the three cannot read one body differently. The
// encodings are fixed: ledgers already written must keep recovering.
//
// Who could lie with them: the node writes every record itself, so its
// operator can write any record at all, and (with the checkpoint key)
// rewrite history and re-sign the checkpoints. What stops a changed or
// invented record is a signature the operator does not hold: envelopes,
// commitments, receipts, the actions inside commitment updates and the
// evidence of attestations carry the agents' and organisations'
// signatures, and an added key its organisation's certificate, checked by
// VerifyProtocolBody. Refusals (kind 32), reconciliations (kind 33) and
// key removals carry none: they are the node's own word. An operator can
// forge, backdate or withhold one to hide a move (and recovery then treats the
// move as refused), but cannot make the counterparty hold a move it never
// signed; the counterparty's own ledger holds the other side, and
// reconciliation between the two nodes brings the divergence to light.
// Replaying a record adds nothing: recovery reads each as a set member
// (a message id refused, a move adopted, an action appended once).

// Kinds the node records beyond the ledger's own list. They are shown as
// kind-32 and kind-33 (Kind.String).
const (
	// KindMessageRefused records that the counterparty refused one of our
	// moves or actions: the move named stays in the ledger (it was
	// recorded before it was sent) but never entered the session. Body:
	// Refusal.
	KindMessageRefused Kind = 32
	// KindReconciled records a reconciliation's outcome in a session: a
	// move of ours recorded as refused that the counterparty holds after
	// all (Adopted), or the session ended because the two transcripts
	// cannot converge (Ended). Body: Reconciled.
	KindReconciled Kind = 33
)

// recordDecMode reads the node's record bodies: one reading only (no
// duplicate keys, no unknown fields, no tags, no indefinite lengths, no
// trailing bytes). Text is not checked for UTF-8: a refusal's reason is
// copied from the counterparty's answer as it came. Arrays may be long
// enough for any key event's capabilities.
var recordDecMode = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   4,
		MaxArrayElements:  4096,
		MaxMapPairs:       16,
		UTF8:              cbor.UTF8DecodeInvalid,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

func decodeRecord(what string, b []byte, v any) error {
	if err := recordDecMode.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %s: %v", protocol.ErrMalformed, what, err)
	}
	return nil
}

func encodeRecord(v any) []byte {
	b, err := cbor.Marshal(v)
	if err != nil {
		// Structs of strings and byte strings always encode.
		panic(err)
	}
	return b
}

// EnvelopeRecord is the record of a signed envelope this node sent
// (KindMessageSent) or received (KindMessageReceived): the envelope's
// canonical bytes (protocol.EncodeEnvelope), at its own timestamp, under
// its session. VerifyProtocolBody checks its certificate, hash and sender
// signature: no one but the sending agent can make one.
func EnvelopeRecord(kind Kind, env *protocol.Envelope, raw []byte) Record {
	return Record{Kind: kind, Time: env.Timestamp, Session: env.SessionID, Body: raw}
}

// CommitmentRecord is the record of a commitment as formed
// (protocol.EncodeCommitment).
func CommitmentRecord(t time.Time, session, commitment string, raw []byte) Record {
	return Record{Kind: KindCommitment, Time: t, Session: session, Commitment: commitment, Body: raw}
}

// ReceiptRecord is the record of a receipt for a commitment, ours or the
// counterparty's (protocol.EncodeReceipt). Its organisation signature
// makes it unforgeable; recovery reads it with protocol.DecodeReceipt.
func ReceiptRecord(t time.Time, session, commitment string, raw []byte) Record {
	return Record{Kind: KindReceipt, Time: t, Session: session, Commitment: commitment, Body: raw}
}

// Refusal is the body of a KindMessageRefused record: the counterparty
// (or, with the code "superseded", this node itself) refused the move or
// action named. Encoding: a CBOR map {1: messageId, 2: code, 3: reason
// (omitted when empty)}. A refused action is named "action:" and the hex
// of the first 16 bytes of the SHA-256 of its encoding.
type Refusal struct {
	MessageID string `cbor:"1,keyasint"`
	Code      string `cbor:"2,keyasint"`
	Reason    string `cbor:"3,keyasint,omitempty"`
}

// EncodeRefusal returns the body of a KindMessageRefused record.
func EncodeRefusal(r Refusal) []byte { return encodeRecord(r) }

// DecodeRefusal reads the body of a KindMessageRefused record: it must
// name a message and a code.
func DecodeRefusal(b []byte) (Refusal, error) {
	var r Refusal
	if err := decodeRecord("refusal", b, &r); err != nil {
		return Refusal{}, err
	}
	if r.MessageID == "" || r.Code == "" {
		return Refusal{}, fmt.Errorf("%w: refusal without message id or code", protocol.ErrMalformed)
	}
	return r, nil
}

// RefusalRecord is a KindMessageRefused record.
func RefusalRecord(t time.Time, session, commitment string, r Refusal) Record {
	return Record{Kind: KindMessageRefused, Time: t, Session: session, Commitment: commitment, Body: EncodeRefusal(r)}
}

// Reconciled is the body of a KindReconciled record: exactly one of
// Adopted (the message id whose refusal is void) and Ended (why the
// session ended). Encoding: a CBOR map {1: adopted} or {2: ended}.
type Reconciled struct {
	Adopted string `cbor:"1,keyasint,omitempty"`
	Ended   string `cbor:"2,keyasint,omitempty"`
}

// EncodeReconciled returns the body of a KindReconciled record.
func EncodeReconciled(r Reconciled) []byte { return encodeRecord(r) }

// DecodeReconciled reads the body of a KindReconciled record.
func DecodeReconciled(b []byte) (Reconciled, error) {
	var r Reconciled
	if err := decodeRecord("reconciliation", b, &r); err != nil {
		return Reconciled{}, err
	}
	if (r.Adopted == "") == (r.Ended == "") {
		return Reconciled{}, fmt.Errorf("%w: a reconciliation adopts a move or ends the session, one of the two", protocol.ErrMalformed)
	}
	return r, nil
}

// ReconciledRecord is a KindReconciled record of a session.
func ReconciledRecord(t time.Time, session string, r Reconciled) Record {
	return Record{Kind: KindReconciled, Time: t, Session: session, Body: EncodeReconciled(r)}
}

// CommitmentUpdate is the body of a KindCommitmentUpdate record: the
// state a commitment moved to and, when a signed action caused it, the
// action's canonical encoding (protocol.EncodeAction). With no action the
// node moved it on its own: to ACTIVE once both receipts were held, or to
// EXPIRED at the record's time. Encoding: a CBOR map {1: state, 2: action
// (omitted when none)}.
type CommitmentUpdate struct {
	State  protocol.CommitmentState `cbor:"1,keyasint"`
	Action []byte                   `cbor:"2,keyasint,omitempty"`
}

// EncodeCommitmentUpdate returns the body of a KindCommitmentUpdate
// record.
func EncodeCommitmentUpdate(u CommitmentUpdate) []byte { return encodeRecord(u) }

// DecodeCommitmentUpdate reads the body of a KindCommitmentUpdate record:
// a known state, and an action if any that is not empty. It does not
// decode or verify the action (VerifyProtocolBody does).
func DecodeCommitmentUpdate(b []byte) (CommitmentUpdate, error) {
	var u CommitmentUpdate
	if err := decodeRecord("commitment update", b, &u); err != nil {
		return CommitmentUpdate{}, err
	}
	switch u.State {
	case protocol.CommitmentPending, protocol.CommitmentActive, protocol.CommitmentFulfillmentClaimed,
		protocol.CommitmentFulfilled, protocol.CommitmentDisputed, protocol.CommitmentResolved,
		protocol.CommitmentBreached, protocol.CommitmentExpired, protocol.CommitmentCancelled:
	default:
		return CommitmentUpdate{}, fmt.Errorf("%w: commitment update to state %q", protocol.ErrMalformed, u.State)
	}
	if u.Action != nil && len(u.Action) == 0 {
		return CommitmentUpdate{}, fmt.Errorf("%w: commitment update with an empty action", protocol.ErrMalformed)
	}
	return u, nil
}

// CommitmentUpdateRecord is a KindCommitmentUpdate record of a commitment.
func CommitmentUpdateRecord(t time.Time, session, commitment string, u CommitmentUpdate) Record {
	return Record{Kind: KindCommitmentUpdate, Time: t, Session: session, Commitment: commitment, Body: EncodeCommitmentUpdate(u)}
}

// verifyCommitmentUpdate is VerifyProtocolBody for KindCommitmentUpdate:
// the entry names a commitment, and the action it carries, if any,
// verifies (every signature, the actor among the signers) and acts on
// that commitment. Only the agent can sign its action: an operator cannot
// invent a claim or a confirmation, nor move one to another commitment.
func verifyCommitmentUpdate(e Entry) error {
	u, err := DecodeCommitmentUpdate(e.Body)
	if err != nil {
		return err
	}
	if e.Commitment == "" {
		return fmt.Errorf("%w: commitment update names no commitment", protocol.ErrMalformed)
	}
	if u.Action == nil {
		return nil
	}
	a, err := protocol.DecodeAction(u.Action)
	if err != nil {
		return err
	}
	if err := a.Verify(); err != nil {
		return fmt.Errorf("action: %w", err)
	}
	if a.CommitmentID != e.Commitment {
		return fmt.Errorf("%w: entry names commitment %q, its action %q", protocol.ErrWrongCommitment, e.Commitment, a.CommitmentID)
	}
	return nil
}

// verifyReconciled is VerifyProtocolBody for KindReconciled: well formed,
// and naming the session it reconciled.
func verifyReconciled(e Entry) error {
	if _, err := DecodeReconciled(e.Body); err != nil {
		return err
	}
	if e.Session == "" {
		return fmt.Errorf("%w: reconciliation names no session", protocol.ErrMalformed)
	}
	return nil
}

// Key event operations (KeyEvent.Op).
const (
	KeyAdded   = "add"
	KeyRemoved = "remove"
)

// KeyEvent is the body of a KindKeyEvent record: an agent of the node was
// created (Op KeyAdded, with its public key, the certificate its
// organisation signed for that key and the capabilities granted) or
// removed (Op KeyRemoved, the agent id alone). Encoding: a CBOR map
// {1: op, 2: agentId, 3: publicKey, 4: certificate (canonical CBOR of a
// protocol.Certificate), 5: capabilities}, 3 to 5 omitted when empty.
//
// Who could forge one: an added key carries its certificate, which only
// the organisation named in the agent id can sign, and VerifyProtocolBody
// checks that it certifies that agent, that key and those capabilities at
// the record's time. The node's operator holds the organisation key and so
// can certify any key for its own agents; a forger without it (holding
// only the checkpoint key, which is derived from it one way, or no key at
// all) cannot record a key for one of its agents. A removal carries no signature: it is the
// node's own word, as a refusal is, and its operator can forge, backdate
// or withhold one; that changes what the ledger says of when a key went
// out of use, not what the key signed. Certificates are public (agent
// cards carry them), so a forger can copy another organisation's into a
// key event; VerifyProtocolBody sees one entry at a time and does not
// know whose ledger it reads.
type KeyEvent struct {
	Op           string   `cbor:"1,keyasint"`
	AgentID      string   `cbor:"2,keyasint"`
	PublicKey    []byte   `cbor:"3,keyasint,omitempty"`
	Certificate  []byte   `cbor:"4,keyasint,omitempty"`
	Capabilities []string `cbor:"5,keyasint,omitempty"`
}

// EncodeKeyEvent returns the body of a KindKeyEvent record.
func EncodeKeyEvent(ev KeyEvent) []byte { return encodeRecord(ev) }

// DecodeKeyEvent reads the body of a KindKeyEvent record: a well-formed
// agent id and either an added key (an Ed25519 public key and a
// certificate) or a removal (nothing else). It does not decode or verify
// the certificate (VerifyProtocolBody does).
func DecodeKeyEvent(b []byte) (KeyEvent, error) {
	var ev KeyEvent
	if err := decodeRecord("key event", b, &ev); err != nil {
		return KeyEvent{}, err
	}
	if _, err := protocol.ParseAgentID(ev.AgentID); err != nil {
		return KeyEvent{}, fmt.Errorf("%w: key event: %w", protocol.ErrMalformed, err)
	}
	switch ev.Op {
	case KeyAdded:
		if len(ev.PublicKey) != ed25519.PublicKeySize || len(ev.Certificate) == 0 {
			return KeyEvent{}, fmt.Errorf("%w: added key of %s without a %d-byte key and a certificate", protocol.ErrMalformed, ev.AgentID, ed25519.PublicKeySize)
		}
	case KeyRemoved:
		if ev.PublicKey != nil || ev.Certificate != nil || ev.Capabilities != nil {
			return KeyEvent{}, fmt.Errorf("%w: removal of %s carries a key, certificate or capabilities", protocol.ErrMalformed, ev.AgentID)
		}
	default:
		return KeyEvent{}, fmt.Errorf("%w: key event %q", protocol.ErrMalformed, ev.Op)
	}
	return ev, nil
}

// KeyEventRecord is a KindKeyEvent record.
func KeyEventRecord(t time.Time, ev KeyEvent) Record {
	return Record{Kind: KindKeyEvent, Time: t, Body: EncodeKeyEvent(ev)}
}

// verifyKeyEvent is VerifyProtocolBody for KindKeyEvent: well formed and,
// for an added key, a certificate signed by the organisation its agent id
// names, valid at the entry's time, of that agent, that key and those
// capabilities.
func verifyKeyEvent(e Entry) error {
	ev, err := DecodeKeyEvent(e.Body)
	if err != nil {
		return err
	}
	if ev.Op != KeyAdded {
		return nil
	}
	var cert protocol.Certificate
	if err := cert.UnmarshalCBOR(ev.Certificate); err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	if err := cert.Verify(e.Time); err != nil {
		return err
	}
	if cert.AgentID != ev.AgentID || !bytes.Equal(cert.PublicKey, ev.PublicKey) || !slices.Equal(cert.Capabilities, ev.Capabilities) {
		return fmt.Errorf("%w: key event of %s does not match its certificate (of %s)", protocol.ErrBadCertificate, ev.AgentID, cert.AgentID)
	}
	return nil
}

// AttestationRecord is the record of a trust attestation this node issued
// or received: its encoding as registry/attest signed it, under the
// commitment it is about and, for one the node issued, that commitment's
// session. VerifyProtocolBody checks its evidence (verifyAttestation);
// the attester's own signature is registry/attest's to check, which the
// node does before recording.
func AttestationRecord(t time.Time, session, commitment string, raw []byte) Record {
	return Record{Kind: KindAttestation, Time: t, Session: session, Commitment: commitment, Body: raw}
}

// verifyAttestation is VerifyProtocolBody for KindAttestation: the
// evidence proves the commitment, and the entry, if it names a
// commitment, names that one.
func verifyAttestation(e Entry) error {
	id, err := verifyAttestationEvidence(e.Body)
	if err != nil {
		return err
	}
	if e.Commitment != "" && e.Commitment != id {
		return fmt.Errorf("entry names commitment %q, its attestation %q", e.Commitment, id)
	}
	return nil
}

// attestationVersion is the attestation format whose evidence
// VerifyProtocolBody checks: registry/attest.Version (a test keeps the two
// equal; registry depends on ledger, not the reverse).
const attestationVersion = "asp/1.1"

// attestationEvidence is the part of an attestation's CBOR that names and
// proves the commitment; the other fields are ignored here.
type attestationEvidence struct {
	Version      string   `cbor:"version"`
	Attester     string   `cbor:"attester"`
	Subject      string   `cbor:"subject"`
	CommitmentID string   `cbor:"commitmentId"`
	Offer        []byte   `cbor:"offer"`
	Acceptance   []byte   `cbor:"acceptance"`
	Receipts     [][]byte `cbor:"receipts"`
}

// evidenceDecMode reads the evidence fields of an attestation: no
// duplicate keys (so no reader can see another offer than the one
// signed), case-sensitive names, no tags, no indefinite lengths; the
// attestation's other fields are skipped.
var evidenceDecMode = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   16,
		MaxArrayElements:  4096,
		MaxMapPairs:       4096,
		UTF8:              cbor.UTF8RejectInvalid,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

// verifyAttestationEvidence checks the evidence of an encoded attestation
// and returns the id of the commitment it proves.
func verifyAttestationEvidence(b []byte) (string, error) {
	var w attestationEvidence
	if err := evidenceDecMode.Unmarshal(b, &w); err != nil {
		return "", fmt.Errorf("%w: %v", protocol.ErrMalformed, err)
	}
	if w.Version != attestationVersion {
		return "", fmt.Errorf("%w: attestation version %q, want %q", protocol.ErrVersion, w.Version, attestationVersion)
	}
	offer, err := protocol.DecodeEnvelope(w.Offer)
	if err != nil {
		return "", fmt.Errorf("offer: %w", err)
	}
	acc, err := protocol.DecodeEnvelope(w.Acceptance)
	if err != nil {
		return "", fmt.Errorf("acceptance: %w", err)
	}
	var receipts []*protocol.Receipt
	for _, rb := range w.Receipts {
		r, err := protocol.DecodeReceipt(rb)
		if err != nil {
			return "", err
		}
		receipts = append(receipts, r)
	}
	c, err := protocol.VerifyEvidence(offer, acc, receipts)
	if err != nil {
		return "", err
	}
	if w.CommitmentID != c.ID {
		return "", fmt.Errorf("%w: names %s, its evidence forms %s", protocol.ErrWrongCommitment, w.CommitmentID, c.ID)
	}
	if w.Attester == w.Subject || !slices.Contains(c.Parties(), w.Attester) || !slices.Contains(c.Parties(), w.Subject) {
		return "", fmt.Errorf("%w: %s about %s on %s", protocol.ErrNotParty, w.Attester, w.Subject, c.ID)
	}
	return c.ID, nil
}

// CommitmentRefs is the one check on the node's records that spans
// entries, so VerifyProtocolBody (one entry at a time) cannot make it:
// every commitment update names a commitment the same log records
// (KindCommitment). Recovery ignores an update of a commitment it never
// saw formed; an auditor refuses it, since an operator could invent one
// to make a commitment look fulfilled or disputed. Add every entry (safe
// for concurrent use, in any order, as VerifyOptions.VerifyEntry is
// called), then Check.
type CommitmentRefs struct {
	mu      sync.Mutex
	formed  map[string]bool
	updates map[string]uint64 // commitment id -> lowest index of an update naming it
}

// Add notes what e records or names.
func (r *CommitmentRefs) Add(e Entry) {
	if e.Kind != KindCommitment && e.Kind != KindCommitmentUpdate {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.formed == nil {
		r.formed, r.updates = map[string]bool{}, map[string]uint64{}
	}
	if e.Kind == KindCommitment {
		r.formed[e.Commitment] = true
		return
	}
	if i, ok := r.updates[e.Commitment]; !ok || e.Index < i {
		r.updates[e.Commitment] = e.Index
	}
}

// Check returns a *VerifyError naming the first commitment update (by
// index) whose commitment the entries added do not record, or nil.
func (r *CommitmentRefs) Check() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var bad *VerifyError
	for id, i := range r.updates {
		if !r.formed[id] && (bad == nil || i < bad.Index) {
			bad = &VerifyError{What: "entry", Index: i,
				Reason: fmt.Sprintf("commitment update of %q, a commitment the log does not record", id)}
		}
	}
	if bad == nil {
		return nil
	}
	return bad
}

// KindBusinessEvent records an event of the organisation's own business
// that one of its agents asked its node to put on the chain ("order.created",
// "shipment.created"), beside the protocol's records. Body: BusinessEvent.
const KindBusinessEvent Kind = 40

// Bounds of a business event.
const (
	MaxBusinessEventType = 64
	MaxBusinessEventData = 16 << 10
)

// businessEventDomain separates the signature of a business event from
// every other signature of an agent key.
const businessEventDomain = "asp/business-event/1\x00"

// BusinessEvent is the body of a KindBusinessEvent record: an event an
// agent signed. Encoding: a CBOR map {1: type, 2: agentId, 3: commitmentId
// (omitted when none), 4: data (compact JSON bytes of an object), 5: time
// (protocol.FormatTime), 6: certificate (canonical CBOR of the agent's
// protocol.Certificate), 7: signature}; the signature is the agent key's
// Ed25519 signature over businessEventDomain followed by the encoding of
// the same map without 7.
//
// Who could forge one: the signature needs the agent's key, which its node
// holds, so the node's operator can write any event of its own agents (it
// is that organisation's word, as its agents' moves are) but no one else
// can, and no event of another organisation's agents: the certificate must
// be signed by the organisation the agent id names, and VerifyProtocolBody
// checks it at the signed time. Replaying an event copies it into a ledger
// (its signature still holds); a copy in another organisation's ledger is
// told apart by its agent id, and two equal entries by their index. The
// signed time is the agent's claim: the node sets it to its clock when it
// records the event, and the entry's position in the chain (and the
// checkpoints that witnessed it) bounds it. Withholding an event is the
// organisation's choice: these are its own records.
type BusinessEvent struct {
	Type         string `cbor:"1,keyasint"`
	AgentID      string `cbor:"2,keyasint"`
	CommitmentID string `cbor:"3,keyasint,omitempty"`
	Data         []byte `cbor:"4,keyasint"`
	Time         string `cbor:"5,keyasint"`
	Certificate  []byte `cbor:"6,keyasint"`
	Signature    []byte `cbor:"7,keyasint,omitempty"`
}

// signedBytes are what the agent signs.
func (ev BusinessEvent) signedBytes() []byte {
	ev.Signature = nil
	return append([]byte(businessEventDomain), encodeRecord(ev)...)
}

// SignBusinessEvent fills in ev's signature with the agent's key.
func SignBusinessEvent(ev BusinessEvent, key ed25519.PrivateKey) BusinessEvent {
	ev.Signature = ed25519.Sign(key, ev.signedBytes())
	return ev
}

// EncodeBusinessEvent returns the body of a KindBusinessEvent record.
func EncodeBusinessEvent(ev BusinessEvent) []byte { return encodeRecord(ev) }

// CheckBusinessEvent checks the shape of an event before it is signed: a
// type of 1 to MaxBusinessEventType characters of [a-z0-9._-] starting
// with a letter, data a JSON object of at most MaxBusinessEventData bytes.
func CheckBusinessEvent(typ string, data []byte) error {
	if typ == "" || len(typ) > MaxBusinessEventType || typ[0] < 'a' || typ[0] > 'z' {
		return fmt.Errorf("%w: business event type %q: 1 to %d characters, starting with a lowercase letter", protocol.ErrMalformed, typ, MaxBusinessEventType)
	}
	for _, r := range typ {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%w: business event type %q: only a-z, 0-9, '.', '_' and '-'", protocol.ErrMalformed, typ)
		}
	}
	if len(data) > MaxBusinessEventData {
		return fmt.Errorf("%w: business event data of %d bytes exceeds %d", protocol.ErrMalformed, len(data), MaxBusinessEventData)
	}
	if len(data) == 0 || data[0] != '{' || !json.Valid(data) {
		return fmt.Errorf("%w: business event data must be a JSON object", protocol.ErrMalformed)
	}
	return nil
}

// DecodeBusinessEvent reads the body of a KindBusinessEvent record and
// checks its shape (not its signature: VerifyProtocolBody does).
func DecodeBusinessEvent(b []byte) (BusinessEvent, error) {
	var ev BusinessEvent
	if err := decodeRecord("business event", b, &ev); err != nil {
		return BusinessEvent{}, err
	}
	if err := CheckBusinessEvent(ev.Type, ev.Data); err != nil {
		return BusinessEvent{}, err
	}
	if _, err := protocol.ParseAgentID(ev.AgentID); err != nil {
		return BusinessEvent{}, fmt.Errorf("%w: business event: %w", protocol.ErrMalformed, err)
	}
	if _, err := protocol.ParseTime(ev.Time); err != nil {
		return BusinessEvent{}, fmt.Errorf("%w: business event time: %w", protocol.ErrMalformed, err)
	}
	if len(ev.Certificate) == 0 || len(ev.Signature) != ed25519.SignatureSize {
		return BusinessEvent{}, fmt.Errorf("%w: business event without a certificate and a %d-byte signature", protocol.ErrMalformed, ed25519.SignatureSize)
	}
	return ev, nil
}

// BusinessEventRecord is a KindBusinessEvent record of a signed event,
// under its commitment if it names one.
func BusinessEventRecord(t time.Time, ev BusinessEvent) Record {
	return Record{Kind: KindBusinessEvent, Time: t, Commitment: ev.CommitmentID, Body: EncodeBusinessEvent(ev)}
}

// verifyBusinessEvent is VerifyProtocolBody for KindBusinessEvent: well
// formed, a certificate of its agent signed by the agent's organisation
// and valid at the signed time, the agent's signature, and the entry's
// commitment that of the event.
func verifyBusinessEvent(e Entry) error {
	ev, err := DecodeBusinessEvent(e.Body)
	if err != nil {
		return err
	}
	var cert protocol.Certificate
	if err := cert.UnmarshalCBOR(ev.Certificate); err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	at, _ := protocol.ParseTime(ev.Time)
	if err := cert.Verify(at); err != nil {
		return err
	}
	if cert.AgentID != ev.AgentID {
		return fmt.Errorf("%w: business event of %s carries the certificate of %s", protocol.ErrBadCertificate, ev.AgentID, cert.AgentID)
	}
	if !ed25519.Verify(cert.PublicKey, ev.signedBytes(), ev.Signature) {
		return fmt.Errorf("%w: business event of %s", protocol.ErrBadSignature, ev.AgentID)
	}
	if e.Commitment != ev.CommitmentID {
		return fmt.Errorf("entry names commitment %q, its business event %q", e.Commitment, ev.CommitmentID)
	}
	return nil
}
