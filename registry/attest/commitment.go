package attest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/aspnode/asp/protocol"
)

// decodeEvidence decodes the offer, the acceptance and the receipts; it
// verifies nothing.
func decodeEvidence(offerBytes, accBytes []byte, receiptBytes [][]byte) (offer, acc *protocol.Envelope, receipts []*protocol.Receipt, err error) {
	if offer, err = protocol.DecodeEnvelope(offerBytes); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: offer: %w", ErrMalformed, err)
	}
	if acc, err = protocol.DecodeEnvelope(accBytes); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: acceptance: %w", ErrMalformed, err)
	}
	for _, b := range receiptBytes {
		r, err := protocol.DecodeReceipt(b)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%w: receipt: %w", ErrMalformed, err)
		}
		receipts = append(receipts, r)
	}
	return offer, acc, receipts, nil
}

// rebuild derives the commitment that offer and acc form with
// protocol.VerifyEvidence, which verifies both envelopes (signatures,
// integrity hashes, certificates at their timestamps), checks that the
// ACCEPT names the offer and was signed within its validUntil, derives the
// commitment id (protocol.CommitmentID) and adds each receipt (naming the
// commitment by its full hashes, signed by a party organisation). The
// commitment must then hold every party organisation's receipt.
func rebuild(offer, acc *protocol.Envelope, receipts []*protocol.Receipt) (*protocol.Commitment, error) {
	c, err := protocol.VerifyEvidence(offer, acc, receipts)
	if err != nil {
		switch {
		case errors.Is(err, protocol.ErrBadReference), errors.Is(err, protocol.ErrStaleOffer):
			return nil, fmt.Errorf("%w: %w", ErrMismatch, err)
		case errors.Is(err, protocol.ErrUnreceipted), errors.Is(err, protocol.ErrWrongCommitment),
			errors.Is(err, protocol.ErrReceiptOrg), errors.Is(err, protocol.ErrDuplicate), errors.Is(err, protocol.ErrReplay):
			return nil, fmt.Errorf("%w: %w", ErrUnreceipted, err)
		default:
			return nil, classifyEnvelope("evidence", err)
		}
	}
	return c, nil
}

// counterparty returns the party of c that is not agent.
func counterparty(c *protocol.Commitment, agent string) string {
	if agent == c.Proposer {
		return c.Acceptor
	}
	return c.Proposer
}

// certificateOf returns the certificate that agent's envelope carries, or
// nil if agent sent neither.
func certificateOf(agent string, offer, acc *protocol.Envelope) *protocol.Certificate {
	switch agent {
	case offer.Sender:
		return offer.Certificate
	case acc.Sender:
		return acc.Certificate
	}
	return nil
}

// sameCertificate reports whether a and b are the same signed certificate.
func sameCertificate(a, b *protocol.Certificate) bool {
	return a != nil && b != nil && a.AgentID == b.AgentID && bytes.Equal(a.PublicKey, b.PublicKey) &&
		a.NotAfter.Equal(b.NotAfter) && slices.Equal(a.Capabilities, b.Capabilities) &&
		bytes.Equal(a.Signature, b.Signature)
}
