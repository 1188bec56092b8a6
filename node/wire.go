package node

import (
	"fmt"

	"github.com/aspnode/asp/ledger"
	"github.com/fxamacker/cbor/v2"
)

// Node-to-node messages on the session protocol (p2p.SessionProtocol). Each
// request gets exactly one response. Requests are idempotent: a resent
// request gets the answer the first one got (at-least-once delivery with
// dedupe by message id or commitment id).

// Request types.
const (
	wireEnvelope uint8 = 1 // a signed session envelope
	wireReceipt  uint8 = 2 // our receipt for a commitment
	wireAction   uint8 = 3 // a signed commitment action (fulfil, confirm, ...)
	wireHead     uint8 = 4 // a session's head, and the transcript after a given length
	wireDispute  uint8 = 5 // a signed dispute filing or step, with the action it carries (disputes.go)
	wireCancel   uint8 = 6 // a cancellation offer: a cancel action signed by its sender alone (cancel.go)
)

// maxWire caps a decoded request or response.
const maxWire = 1 << 20

type wireReq struct {
	Type     uint8  `cbor:"1,keyasint"`
	Envelope []byte `cbor:"2,keyasint,omitempty"` // protocol envelope, canonical CBOR
	Receipt  []byte `cbor:"3,keyasint,omitempty"` // protocol receipt, CBOR
	Action   []byte `cbor:"4,keyasint,omitempty"` // protocol commitment action, CBOR
	// KeyCert certifies the checkpoint key that signed Receipt's
	// checkpoint (ledger.KeyCertificate, JSON).
	KeyCert []byte `cbor:"5,keyasint,omitempty"`
	// With wireHead: the session, the length of the sender's transcript
	// and its head (the hash of its last envelope), and why the sender
	// ended the session, if it did.
	Session string `cbor:"6,keyasint,omitempty"`
	Length  uint64 `cbor:"7,keyasint,omitempty"`
	Head    []byte `cbor:"8,keyasint,omitempty"`
	Ended   string `cbor:"9,keyasint,omitempty"`
	// With wireDispute: the signed filing (protocol.EncodeDispute) or
	// step (protocol.EncodeDisputeStep); Action carries the filer's
	// dispute action, or the acceptor's resolve action.
	Filing []byte `cbor:"10,keyasint,omitempty"`
	Step   []byte `cbor:"11,keyasint,omitempty"`
	// Ruling is a ruling at the human rung (protocol.EncodeRuling):
	// signed by the sender's party alone, an offer; by both, the ruling.
	Ruling []byte `cbor:"12,keyasint,omitempty"`
}

type wireResp struct {
	// Code is empty on success, else the ASP error code of the refusal
	// ("busy" when the peer is sending in the same session right now).
	Code    string `cbor:"1,keyasint,omitempty"`
	Message string `cbor:"2,keyasint,omitempty"`
	// Reply is the peer's answering envelope, if it answered at once
	// (an invitation accepted or declined under its consent policy).
	Reply []byte `cbor:"3,keyasint,omitempty"`
	// Receipt is the peer's receipt when the request formed a commitment.
	Receipt []byte `cbor:"4,keyasint,omitempty"`
	// KeyCert certifies the checkpoint key of Receipt's checkpoint.
	KeyCert []byte `cbor:"5,keyasint,omitempty"`
	// With wireHead: the answering node's transcript length and head,
	// the envelopes that follow the requester's head (if the requester's
	// transcript is a prefix of ours), and why we ended the session.
	Length uint64   `cbor:"6,keyasint,omitempty"`
	Head   []byte   `cbor:"7,keyasint,omitempty"`
	Tail   [][]byte `cbor:"8,keyasint,omitempty"`
	Ended  string   `cbor:"9,keyasint,omitempty"`
	// Cosigned is the resolve action countersigned, answering an
	// accepted remedy (wireDispute).
	Cosigned []byte `cbor:"10,keyasint,omitempty"`
}

var wireDec, _ = cbor.DecOptions{MaxArrayElements: 16, MaxMapPairs: 16, MaxNestedLevels: 4}.DecMode()

func decodeWireReq(b []byte) (*wireReq, error) {
	if len(b) > maxWire {
		return nil, fmt.Errorf("request of %d bytes exceeds %d", len(b), maxWire)
	}
	var r wireReq
	if err := wireDec.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("malformed request: %w", err)
	}
	return &r, nil
}

func decodeWireResp(b []byte) (*wireResp, error) {
	var r wireResp
	if err := wireDec.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("malformed response: %w", err)
	}
	return &r, nil
}

// kindMessageRefused is the ledger kind of a record that the counterparty
// refused one of our moves (ledger.KindMessageRefused; body
// ledger.Refusal): the move named stays in the ledger (it was recorded
// before it was sent) but never entered the session.
const kindMessageRefused = ledger.KindMessageRefused

// refusal is the body of a kindMessageRefused record.
type refusal = ledger.Refusal
