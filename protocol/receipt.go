package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
)

// Receipt proves that an organisation recorded a commitment in its ledger:
// its node's signature over the commitment's full offer and acceptance
// hashes (and the id derived from them), the ledger index of the entry and
// the signed checkpoint that covers it.
//
// Receipt format asp/1.1: the signature is made under the domain
// "asp/1.1 receipt", so no asp/1.0 receipt (which signed only the 128-bit
// commitment id) verifies as one.
type Receipt struct {
	CommitmentID   string
	Org            string   // peer id of the organisation (its node)
	OfferHash      [32]byte // integrity hash of the offer accepted
	AcceptanceHash [32]byte // integrity hash of the ACCEPT
	LedgerIndex    uint64   // index of the commitment's entry in Org's ledger
	Checkpoint     []byte   // Org's signed checkpoint covering LedgerIndex
	Signature      []byte   // by Org's key, over the other fields
}

type wireReceipt struct {
	CommitmentID   string `cbor:"commitmentId" json:"commitmentId"`
	Org            string `cbor:"org" json:"org"`
	OfferHash      b64    `cbor:"offerHash" json:"offerHash"`
	AcceptanceHash b64    `cbor:"acceptanceHash" json:"acceptanceHash"`
	LedgerIndex    uint64 `cbor:"ledgerIndex" json:"ledgerIndex"`
	Checkpoint     b64    `cbor:"checkpoint" json:"checkpoint"`
	Signature      b64    `cbor:"signature,omitempty" json:"signature,omitempty"`
}

func (r *Receipt) wire(signing bool) wireReceipt {
	w := wireReceipt{r.CommitmentID, r.Org, slices.Clone(r.OfferHash[:]), slices.Clone(r.AcceptanceHash[:]),
		r.LedgerIndex, r.Checkpoint, r.Signature}
	if w.Checkpoint == nil {
		w.Checkpoint = b64{}
	}
	if signing {
		w.Signature = nil
	}
	return w
}

func (w *wireReceipt) receipt() (*Receipt, error) {
	if len(w.OfferHash) != sha256.Size || len(w.AcceptanceHash) != sha256.Size {
		return nil, fmt.Errorf("%w: receipt hashes of %d and %d bytes, want %d", ErrMalformed,
			len(w.OfferHash), len(w.AcceptanceHash), sha256.Size)
	}
	r := &Receipt{CommitmentID: w.CommitmentID, Org: w.Org, LedgerIndex: w.LedgerIndex, Checkpoint: w.Checkpoint,
		Signature: w.Signature}
	copy(r.OfferHash[:], w.OfferHash)
	copy(r.AcceptanceHash[:], w.AcceptanceHash)
	return r, nil
}

// SignReceipt makes org's receipt for the commitment formed by the offer
// and the acceptance of the given integrity hashes, recorded at
// ledgerIndex, covered by checkpoint.
func SignReceipt(org ed25519.PrivateKey, offerHash, acceptanceHash [32]byte, ledgerIndex uint64, checkpoint []byte) (*Receipt, error) {
	if len(org) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: organisation key", ErrBadKey)
	}
	r := &Receipt{
		CommitmentID:   CommitmentID(offerHash, acceptanceHash),
		Org:            PeerIDFromPublicKey(org.Public().(ed25519.PublicKey)),
		OfferHash:      offerHash,
		AcceptanceHash: acceptanceHash,
		LedgerIndex:    ledgerIndex,
		Checkpoint:     slices.Clone(checkpoint),
	}
	d, _, err := digest(r.wire(true))
	if err != nil {
		return nil, err
	}
	if r.Signature, err = signDigest(org, domainReceipt, d); err != nil {
		return nil, err
	}
	return r, nil
}

// SignCommitmentReceipt is SignReceipt for c.
func SignCommitmentReceipt(org ed25519.PrivateKey, c *Commitment, ledgerIndex uint64, checkpoint []byte) (*Receipt, error) {
	return SignReceipt(org, c.OfferHash, c.Head, ledgerIndex, checkpoint)
}

// Verify checks that the receipt's commitment id is the one its hashes
// derive (ErrWrongCommitment) and its signature against the key in its Org
// peer id (ErrBadSignature).
func (r *Receipt) Verify() error { return r.verifyCached(nil) }

// verifyCached is Verify, skipping the Ed25519 check of a signature vc
// knows, and remembering one it checks.
func (r *Receipt) verifyCached(vc VerifiedSignatures) error {
	if id := CommitmentID(r.OfferHash, r.AcceptanceHash); r.CommitmentID != id {
		return fmt.Errorf("%w: receipt names %s, its hashes form %s", ErrWrongCommitment, r.CommitmentID, id)
	}
	pub, err := PublicKeyFromPeerID(r.Org)
	if err != nil {
		return err
	}
	d, _, err := digest(r.wire(true))
	if err != nil {
		return err
	}
	if vc != nil && vc.Known(pub, cacheKey(domainReceipt, d), r.Signature) {
		return nil
	}
	if !verifyDigest(pub, domainReceipt, d, r.Signature) {
		return fmt.Errorf("%w: receipt of %s for %s", ErrBadSignature, r.Org, r.CommitmentID)
	}
	if vc != nil {
		vc.Add(pub, cacheKey(domainReceipt, d), r.Signature)
	}
	return nil
}

// SealedBy records in vc that r's signature, just made by the caller with
// SignReceipt, is valid, so that adding r to its commitment costs no
// Ed25519 check. It verifies nothing itself: call it only for a receipt
// you signed.
func (r *Receipt) SealedBy(vc VerifiedSignatures) {
	pub, err := PublicKeyFromPeerID(r.Org)
	if vc == nil || err != nil {
		return
	}
	if d, _, err := digest(r.wire(true)); err == nil {
		vc.Add(pub, cacheKey(domainReceipt, d), r.Signature)
	}
}

// EncodeReceipt returns the canonical CBOR of a receipt.
func EncodeReceipt(r *Receipt) ([]byte, error) { return canonical(r.wire(false)) }

// DecodeReceipt decodes canonical CBOR; it does not verify the signature.
func DecodeReceipt(b []byte) (*Receipt, error) {
	var w wireReceipt
	if err := decodeCanonical(b, &w); err != nil {
		return nil, fmt.Errorf("receipt: %w", err)
	}
	return w.receipt()
}

// MarshalJSON encodes the receipt's JSON form.
func (r *Receipt) MarshalJSON() ([]byte, error) { return json.Marshal(r.wire(false)) }

// UnmarshalJSON decodes the receipt's JSON form strictly.
func (r *Receipt) UnmarshalJSON(b []byte) error {
	var w wireReceipt
	if err := strictJSON(b, &w); err != nil {
		return err
	}
	x, err := w.receipt()
	if err != nil {
		return err
	}
	*r = *x
	return nil
}

// CheckReceipt checks that r is a valid receipt for c: it names c, by id
// and by the full hashes of c's offer and acceptance (ErrWrongCommitment),
// it is from a party organisation (ErrReceiptOrg) and its signature
// verifies (ErrBadSignature). It does not look at c's other receipts.
func (c *Commitment) CheckReceipt(r *Receipt) error { return c.CheckReceiptCached(r, nil) }

// CheckReceiptCached is CheckReceipt, skipping the Ed25519 check of a
// signature vc knows, and remembering one it checks.
func (c *Commitment) CheckReceiptCached(r *Receipt, vc VerifiedSignatures) error {
	if r == nil {
		return fmt.Errorf("%w: no receipt", ErrMalformed)
	}
	if r.CommitmentID != c.ID {
		return fmt.Errorf("%w: receipt for %s, not %s", ErrWrongCommitment, r.CommitmentID, c.ID)
	}
	if r.OfferHash != c.OfferHash || r.AcceptanceHash != c.Head {
		return fmt.Errorf("%w: receipt for %s names another offer or acceptance", ErrWrongCommitment, c.ID)
	}
	if !slices.Contains(c.Orgs(), r.Org) {
		return fmt.Errorf("%w: %s", ErrReceiptOrg, r.Org)
	}
	return r.verifyCached(vc)
}

// Receipted reports whether c holds every party organisation's receipt:
// both organisations recorded it.
func (c *Commitment) Receipted() bool { return c.hasAllReceipts() }

// AddReceipt returns c with r added. r must be for c (CheckReceipt: its id
// and both full hashes), from a party organisation not already holding a
// receipt, and correctly signed. When
// every party organisation's receipt is held, a PENDING commitment becomes
// ACTIVE.
func (c *Commitment) AddReceipt(r *Receipt) (*Commitment, error) { return c.AddReceiptCached(r, nil) }

// AddReceiptCached is AddReceipt, skipping the Ed25519 check of a receipt
// signature vc knows (one the caller made, SealedBy, or checked before).
func (c *Commitment) AddReceiptCached(r *Receipt, vc VerifiedSignatures) (*Commitment, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: no receipt", ErrMalformed)
	}
	if r.CommitmentID != c.ID {
		return nil, fmt.Errorf("%w: receipt for %s, not %s", ErrWrongCommitment, r.CommitmentID, c.ID)
	}
	if !slices.Contains(c.Orgs(), r.Org) {
		return nil, fmt.Errorf("%w: %s", ErrReceiptOrg, r.Org)
	}
	for _, x := range c.Receipts {
		if x.Org == r.Org {
			if bytes.Equal(x.Signature, r.Signature) {
				return nil, fmt.Errorf("%w: receipt of %s", ErrDuplicate, r.Org)
			}
			return nil, fmt.Errorf("%w: second receipt of %s", ErrReplay, r.Org)
		}
	}
	if err := c.CheckReceiptCached(r, vc); err != nil {
		return nil, err
	}
	n := c.clone()
	n.Receipts = append(n.Receipts, r)
	if n.State == CommitmentPending && n.hasAllReceipts() {
		n.State = CommitmentActive
	}
	return n, nil
}

func (c *Commitment) hasAllReceipts() bool {
	for _, o := range c.Orgs() {
		if !slices.ContainsFunc(c.Receipts, func(r *Receipt) bool { return r.Org == o }) {
			return false
		}
	}
	return true
}
