// Package registry publishes the cards of a node's agents and discovers
// other organizations' agents by capability over the libp2p Kademlia DHT,
// with no central registry.
//
// # Cards
//
// A Card names an agent ("agent://<org peer id>/<name>"), what it offers
// (dotted capability names such as "compute.gpu-hours"), how to reach its
// node, its public key and certificate, a version and an expiry. The
// organization signs the card's canonical CBOR (RFC 8949 core deterministic)
// with its node key; Verify takes the key from the organization's peer id,
// so only that organization can issue a card for its agents, and
// VerifyFrom refuses a card presented by any other peer.
//
// # On the DHT
//
// Cards are stored as records under CardKey(agentID) =
// "/asp/card/<hex sha256>" and checked by Validator, registered in the
// DHT under Namespace "asp": canonical and within MaxCardSize, stored under
// its own key, signed, certified, unexpired; the highest version wins.
// Removing an agent puts a newer, withdrawn version (a tombstone).
//
// A capability index lives in provider records: an organization provides
// CapabilityCID(p) for every prefix p of every capability of its agents, so
// a query for "compute" finds the providers of "compute.gpu-hours". A
// provider is then asked for its matching cards over ProtocolID
// ("/asp/registry/1.1.0"). Provider records cannot be withdrawn; a
// provider that no longer serves a valid matching card is skipped.
//
// # Freshness
//
// Run republishes every card and provider record each RepublishInterval,
// re-signs cards (a new version, and a new certificate when the registry
// issued it) once half their CardTTL has passed, retries failed
// announcements, and refreshes the cached discovery answers that are in
// use. Versions are milliseconds since the epoch (or one more than the
// last), so they keep increasing across restarts without being stored.
//
// # Invariants
//
//   - A card served over ProtocolID or put on the DHT verifies at the time
//     it was signed; its notAfter never exceeds its certificate's.
//   - Discover returns only cards that verify at the time of the answer,
//     are not withdrawn, came from their own organization (or from the
//     DHT under their own key), and are not older than a version already
//     verified for the same agent.
package registry
