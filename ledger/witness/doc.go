// Package witness is the core of witnessing between counterparties, after
// C2SP tlog-witness (https://c2sp.org/tlog-witness): a log's owner presents
// a new signed checkpoint with a consistency proof from the size the
// witness last cosigned; the witness checks the checkpoint's signature with
// the log's certified checkpoint key, the proof, and that the log neither
// rolled back nor signed a second root for a size, records the new size
// with an atomic, synced check-and-set, and answers a C2SP
// tlog-cosignature/v1 Ed25519 cosignature (https://c2sp.org/tlog-cosignature).
//
// The package does no networking. The node carries Request and Response
// (EncodeRequest, DecodeRequest, EncodeResponse, DecodeResponse) over its
// own transport, resolves and certifies the log's checkpoint key
// (CertifiedVerifier), and turns an EquivocationError into a portable
// Equivocation proof that any third party checks with VerifyEquivocation.
//
// # Invariants
//
//  1. For each origin the store holds at most one state {size, root,
//     checkpoint}; a check-and-set replaces it only if it is still the state
//     the decision was taken on, and only with a larger size, or the same
//     size and root.
//  2. A cosignature is returned only after the state it vouches for is
//     durable (a synced Pebble batch). A crash at any point leaves the state
//     that was acknowledged or the one being written, never an older one.
//  3. The witness never cosigns two roots for one size of one origin, nor a
//     size below one it cosigned.
//
// The formats, the check-and-set rule and who could forge, replay,
// backdate or withhold each message are in docs/ledger.md, "Witnessing".
package witness
