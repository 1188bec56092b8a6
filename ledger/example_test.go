package ledger_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/protocol"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// A node opens its ledger with a checkpoint key derived from its identity
// key, records what happens, and hands out checkpoints and proofs that
// anyone can check without the node.
func Example() {
	org := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32)) // the node's identity key
	origin := ledger.OriginFor(protocol.PeerIDFromPublicKey(org.Public().(ed25519.PublicKey)))
	signer, cert, err := ledger.NewCheckpointSigner(org, origin)
	if err != nil {
		panic(err)
	}
	l, err := ledger.Open("ledger", ledger.Options{FS: vfs.NewMem(), Origin: origin, Signer: signer, KeyCertificate: cert})
	if err != nil {
		panic(err)
	}
	defer l.Close()
	ctx := context.Background()

	// Append returns once the entries are durable.
	es, err := l.Append(ctx,
		ledger.Record{Kind: ledger.KindSessionOpened, Session: "ses-1"},
		ledger.Record{Kind: ledger.KindCommitment, Session: "ses-1", Commitment: "cmt_1", Body: []byte("…")},
	)
	if err != nil {
		panic(err)
	}
	cp, err := l.Checkpoint(ctx) // signed note covering both entries
	if err != nil {
		panic(err)
	}

	// A counterparty holding the checkpoint, the entry and the proof checks
	// it offline, knowing only the node's peer id (through the certificate).
	if err := cert.Verify(); err != nil {
		panic(err)
	}
	v, _ := cert.Verifier()
	head, _, err := ledger.ParseCheckpoint(cp, origin, v)
	if err != nil {
		panic(err)
	}
	proof, err := l.InclusionProof(es[1].Index, head.Size)
	if err != nil {
		panic(err)
	}
	err = ledger.VerifyInclusion(es[1].Index, head.Size, es[1].Hash(), proof, head.Root)
	fmt.Println("size", head.Size, "inclusion verified:", err == nil)

	// A bundle of the whole ledger verifies with no node at all. (A node's
	// real bundles also pass VerifyEntry: ledger.VerifyProtocolBody, which
	// checks the signatures inside envelopes and commitments; the body
	// above is not a signed commitment.)
	dir, _ := os.MkdirTemp("", "bundle")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "audit.tar")
	if err := l.Export(ctx, path, ledger.BundleExtras{}); err != nil {
		panic(err)
	}
	rep, err := ledger.VerifyBundle(path, ledger.VerifyOptions{Org: cert.Org})
	if err != nil {
		panic(err)
	}
	fmt.Println("bundle verified:", rep.Size, "entries")
	// Output:
	// size 2 inclusion verified: true
	// bundle verified: 2 entries
}
