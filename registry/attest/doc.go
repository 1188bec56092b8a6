// Package attest implements trust attestations and their gossip.
//
// An Attestation is one party's signed statement about how the other party
// of a commitment behaved (fulfilled, breached, dispute_lost, dispute_won,
// cancelled, expired). It carries its evidence, so that any node can verify
// it on its own, with no lookup:
//
//   - the offer and the acceptance envelopes that form the commitment,
//     both signed by their senders and carrying their certificates, in
//     their canonical CBOR (protocol.EncodeEnvelope);
//   - the receipt of every party organisation for that commitment
//     (protocol.EncodeReceipt): each organisation's identity-key
//     signature that it recorded the commitment, naming it by the full
//     hashes of its offer and acceptance;
//   - the attester's certificate, issued by the attester's organisation.
//
// The attester signs, with its agent key, "asp/1.0 attestation" || 0x00 ||
// SHA-256 of the canonical CBOR (RFC 8949 core deterministic encoding) of
// every other field. Verify checks the signature and the certificate chain
// to the attester's organisation, re-derives the commitment from the
// evidence with protocol.VerifyEvidence (both envelopes' signatures and
// certificates, the ACCEPT naming the offer and signed within its
// validUntil, the id from protocol.CommitmentID, both organisations'
// receipts), and checks that the attester and the subject are its two
// parties. Only attestations backed by a commitment both organisations
// recorded verify: an ACCEPT the offerer never received carries no
// receipt of the offerer's organisation, so nobody can rate an agent it
// never dealt with (docs/trust.md, "Evidence rule").
//
// # Wire form
//
// A CBOR map with text keys, canonical: version ("asp/1.1"), attester,
// subject, commitmentId, outcome, time (protocol.TimeLayout), offer and
// acceptance (byte strings holding the envelopes), receipts (an array of
// at most two byte strings, each a receipt), certificate (as protocol
// encodes it) and signature (64 bytes). asp/1.0 attestations (no
// receipts) are refused. Decode refuses anything
// else: unknown or duplicate keys, another encoding of the same value,
// more than MaxSize bytes.
//
// # Gossip
//
// A Service publishes and receives attestations on the GossipSub topic
// Topic ("/asp/trust/1.1"). Its topic validator, following GossipSub's
// convention:
//
//   - rejects what is provably bad for everyone, at any time: bytes that do
//     not decode, a signature or certificate that does not verify, an
//     attester that is not a party, evidence that does not form the named
//     commitment or lacks a party organisation's receipt (see Provable).
//     GossipSub then penalises the sender;
//   - ignores duplicates (an LRU set of attestation hashes: the same
//     attestation republished under another GossipSub message id is
//     delivered once), stale items (older than Config.Horizon, or more than
//     Config.MaxSkew ahead of the clock) and items over their origin's rate
//     limit (a token bucket per publishing peer). Ignored messages are
//     neither forwarded nor held against the peer that relayed them.
//
// Verified attestations reach Subscribe's channels once each. Counters
// (asp_attest_validations_total{result,reason} and others) go to
// Config.Registerer.
//
// The rate limit is keyed by the origin (the peer that signed the GossipSub
// message, checked by GossipSub before validators run), not by the relaying
// peer: an honest relay forwarding a burst from many organisations is not
// throttled, and a flood stops at the flooder's neighbours.
//
// # Peer scoring
//
// Service.AppScore is the application-specific part of GossipSub's peer
// score, fed by Config.AppScore (or SetAppScore), typically from the trust
// model. Install it on the host with p2p.Host.SetAppSpecificScore; the host
// needs peer scoring on (p2p.WithPeerScore(PeerScoreParams())).
//
// A node typically wires it like this:
//
//	params, thresholds := attest.PeerScoreParams()
//	h, _ := p2p.New(ctx, cfg, p2p.WithPeerScore(params, thresholds))
//	svc, _ := attest.New(attest.Config{
//		Registerer: reg,
//		// A peer id is its organisation's id: weigh it as the trust model does.
//		AppScore: func(p peer.ID) float64 { return 10 * snapshot().OrgWeight(p.String()) },
//	})
//	_ = svc.Join(ctx, h.PubSub())
//	_ = h.SetAppSpecificScore(svc.AppScore)
//	ch, cancel := svc.Subscribe()
//	defer cancel()
//	for d := range ch { // verified, once each
//		e, _ := d.Evidence()
//		_ = model.Add(e) // and record d.Attestation.Encode() in the ledger
//	}
package attest
