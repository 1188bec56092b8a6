// Package ledger is a node's tamper-evident audit log: an append-only
// sequence of entries on Pebble, hash-chained, kept in an RFC 6962 Merkle
// tree, published as signed checkpoints (C2SP tlog-checkpoint), with
// inclusion and consistency proofs, an fsck (Check), and self-contained
// export bundles that VerifyBundle checks offline.
//
// An entry is a Record (kind, time, session id, commitment id, opaque body)
// plus its index and the hash of the previous entry. Its canonical encoding
// (Entry.Encode) is what is stored, what is chained (the next entry records
// LeafHash of it) and the Merkle leaf: SHA-256(0x00 || encoding).
//
// Append is durable: it returns once the entries and the tree that covers
// them are synced. Concurrent Appends share one synced commit (group
// commit); see Append.
//
// # Invariants
//
// These hold for a store after any sequence of Appends, Checkpoints and
// crashes (Check verifies them all):
//
//  1. Entry i is stored under "e"+i and its encoding says Index i; entries
//     0 … n-1 are all present, and none beyond, where n is the size in the
//     tree head.
//  2. Entry 0's PrevHash is zero; entry i's is LeafHash of entry i-1's
//     encoding.
//  3. The tree head ("T": size n, tip, root) is written in the same synced
//     Pebble batch as the entries and tiles it covers, so a crash leaves
//     entries and head consistent: the tip is the leaf hash of entry n-1
//     and the root is that of entries 0 … n-1. Open checks the root
//     against the last entries and stored tiles, rehashing at most 255
//     entries and 255 tile roots per tile level.
//  4. A tile is stored if and only if it is full in the tree of size n, and
//     holds exactly the node hashes that the entries give (tree.go).
//     Partial tiles are never stored; Open rebuilds them.
//  5. Each entry has exactly the index keys implied by its kind, session and
//     commitment, and no index key names a missing entry.
//  6. What readers see (Size, Root, proofs, Checkpoint) covers only entries
//     that are durable and acknowledged: the in-memory state is published
//     after the sync, never before.
//  7. A checkpoint for size s is signed only after {s, root} is recorded
//     under "c"+s with a synced write, and never if that record holds
//     another root: the ledger cannot sign two roots for one size, even
//     across crashes. Every recorded checkpoint's root is the root of
//     entries 0 … s-1.
//  8. The format version key is present in every store and no greater than
//     FormatVersion; Open refuses a newer one (ErrFormatTooNew).
//  9. After a write fails, whether it reached the disk is unknown: the
//     ledger accepts no more writes (ErrFailed) until it is reopened, and
//     Open recovers exactly what was durable.
//  10. Open never returns a ledger smaller than the size it acknowledged
//     (the size of its latest synced checkpoint intent or clean Close, kept
//     outside Pebble in AckFile), nor of that size with another root: it
//     returns a *RolledBackError instead, unless Options.AllowRollback,
//     which records a KindRollback entry (acked.go).
//
// A damaged store file (a table block or log record whose checksum fails)
// is an error naming the file, never a panic (damage.go).
//
// Build with -tags invariants to re-derive the tree state after every
// commit (internal/invariants).
//
// Storage failures that Pebble treats as fatal outside a commit (a MANIFEST
// write during a background flush) end the process, as with Pebble's own
// logger; a restart recovers. Inside a commit they fail the Appends in
// flight with ErrFailed.
//
// The on-disk layout is in keys.go and tree.go; the bundle format in
// bundle.go (the writer), bundleverify.go (the verifier) and
// docs/ledger.md; snapshots of a ledger in use in snapshot.go.
package ledger
