package cli

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/spf13/cobra"

	"github.com/aspnode/asp/ledger"
)

func (a *app) auditCommand() *cobra.Command {
	cmd := groupCommand("audit", "Verify a node's ledger or an audit bundle; export a bundle")
	cmd.AddCommand(a.auditVerifyCommand(), a.auditExportCommand())
	return cmd
}

// VerifyResult is the --json output of asp audit verify.
type VerifyResult struct {
	OK bool `json:"ok"`
	// Error says what failed (when OK is false).
	Error string `json:"error,omitempty"`
	// Entry is the index of the first bad entry, when an entry failed.
	Entry *uint64 `json:"entry,omitempty"`

	// Home or Bundle is what was verified.
	Home   string `json:"home,omitempty"`
	Bundle string `json:"bundle,omitempty"`
	// Snapshot is true when a running node's ledger was verified on a
	// snapshot of its store.
	Snapshot bool `json:"snapshot,omitempty"`

	Org    string `json:"org,omitempty"`
	Origin string `json:"origin,omitempty"`
	Size   uint64 `json:"size"`
	Root   string `json:"root,omitempty"`
	// Checkpoints is the number of signed checkpoints checked (bundles).
	Checkpoints int `json:"checkpoints,omitempty"`
	// Signed is the number of entries holding signed protocol values
	// (messages, commitments, receipts) whose signatures were checked.
	Signed int `json:"signed"`
	// Kinds counts entries by kind.
	Kinds map[string]uint64 `json:"kinds,omitempty"`
}

func (a *app) auditVerifyCommand() *cobra.Command {
	var home, org string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify (--home DIR | FILE)",
		Short: "Verify a node's ledger (running or stopped), or an exported bundle offline",
		Long: `Verify a node's ledger, or an audit bundle offline.

With --home, the node's ledger is checked from scratch: hash chain, Merkle
tree, every signed checkpoint, the indexes, and the signature of every
protocol message recorded in it. The node may be running (its store is then
read through a snapshot) or stopped.

With FILE, a bundle written by asp audit export is verified with no node and
no network: certificates, checkpoint signatures, hash chain, Merkle roots,
consistency proofs and message signatures. Exit status 1 names the first
entry that fails and why.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res VerifyResult
			var err error
			switch {
			case home != "" && len(args) > 0:
				return usageErrorf("give --home DIR or a bundle FILE, not both")
			case home != "":
				res, err = verifyHome(cmd.Context(), home)
			case len(args) == 1:
				res, err = verifyBundle(args[0], org)
			default:
				return usageErrorf("give --home DIR or a bundle FILE")
			}
			if err != nil {
				res.OK, res.Error = false, oneLine(err)
				var ce *ledger.CorruptionError
				var ve *ledger.VerifyError
				switch {
				case errors.As(err, &ce) && ce.What == "entry":
					res.Entry = &ce.Index
				case errors.As(err, &ve) && ve.What == "entry":
					res.Entry = &ve.Index
				}
				if asJSON {
					_ = printJSON(a.stdout, res)
				}
				return err
			}
			res.OK = true
			if asJSON {
				return printJSON(a.stdout, res)
			}
			what := "ledger of " + res.Home
			if res.Bundle != "" {
				what = "bundle " + res.Bundle
			}
			if res.Size == 0 && res.Root == "" {
				fmt.Fprintf(a.stdout, "ok: %s is empty\n", what)
				return nil
			}
			fmt.Fprintf(a.stdout, "ok: %s: %d entries, root %s, %d signed entries checked (org %s)\n",
				what, res.Size, res.Root, res.Signed, res.Org)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&home, "home", "", "node home whose ledger to verify")
	f.StringVar(&org, "org", "", "with FILE: peer id of the organization that must have certified the bundle's checkpoint key")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON (also on failure)")
	return cmd
}

func verifyHome(ctx context.Context, home string) (VerifyResult, error) {
	res := VerifyResult{Home: home}
	l, err := openHomeLedger(home, false)
	if errors.Is(err, errEmptyLedger) {
		return res, nil
	}
	if err != nil {
		return res, err
	}
	defer l.Close()
	res.Org, res.Origin, res.Snapshot = l.PeerID, l.Origin, l.Snapshot
	if err := l.Check(ctx); err != nil {
		return res, err
	}
	size, root := l.Root()
	res.Size, res.Root = size, hex.EncodeToString(root[:])
	v := newEntryVerifier()
	for from := uint64(0); from < size; {
		ents, err := l.Entries(from, 1000)
		if err != nil {
			return res, err
		}
		if len(ents) == 0 {
			return res, fmt.Errorf("ledger: entries from %d missing (size %d)", from, size)
		}
		for _, e := range ents {
			if e.Index >= size {
				break
			}
			if err := v.verify(e); err != nil {
				return res, &ledger.CorruptionError{What: "entry", Index: e.Index, Reason: err.Error()}
			}
		}
		from = ents[len(ents)-1].Index + 1
	}
	var ve *ledger.VerifyError
	if err := v.refs.Check(); errors.As(err, &ve) {
		return res, &ledger.CorruptionError{What: "entry", Index: ve.Index, Reason: ve.Reason}
	}
	res.Signed, res.Kinds = v.signed, v.kinds
	return res, nil
}

func verifyBundle(path, org string) (VerifyResult, error) {
	res := VerifyResult{Bundle: path}
	if _, err := os.Stat(path); err != nil {
		return res, fmt.Errorf("bundle: %w", err)
	}
	v := newEntryVerifier()
	rep, err := ledger.VerifyBundle(path, ledger.VerifyOptions{Org: org, VerifyEntry: v.verify})
	if err != nil {
		return res, err
	}
	if err := v.refs.Check(); err != nil {
		return res, err
	}
	res.Org, res.Origin, res.Size, res.Root = rep.Org, rep.Origin, rep.Size, hex.EncodeToString(rep.Root[:])
	res.Checkpoints, res.Signed, res.Kinds = rep.Checkpoints, v.signed, v.kinds
	return res, nil
}

// entryVerifier checks the bodies of ledger entries with
// ledger.VerifyProtocolBody: every recorded protocol message, commitment and
// receipt must decode and its signatures verify, so that a changed term is
// caught even if a forger recomputed every hash and re-signed every
// checkpoint. refs, checked once every entry is verified, holds every
// commitment update to a commitment the log records.
//
// verify is safe for concurrent use: ledger.VerifyBundle calls it from
// several goroutines at once.
type entryVerifier struct {
	mu     sync.Mutex
	signed int // entries whose signatures were checked
	kinds  map[string]uint64
	refs   ledger.CommitmentRefs
}

func newEntryVerifier() *entryVerifier { return &entryVerifier{kinds: map[string]uint64{}} }

func (v *entryVerifier) verify(e ledger.Entry) error {
	// The signatures are checked outside the lock: that is the work the
	// bundle verifier spreads over its goroutines.
	err := ledger.VerifyProtocolBody(e)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.kinds[e.Kind.String()]++
	if err != nil {
		return err
	}
	v.refs.Add(e)
	switch e.Kind {
	case ledger.KindMessageSent, ledger.KindMessageReceived, ledger.KindCommitment, ledger.KindReceipt:
		v.signed++
	}
	return nil
}

// ExportResult is the --json output of asp audit export.
type ExportResult struct {
	Home   string `json:"home"`
	Out    string `json:"out"`
	Org    string `json:"org"`
	Origin string `json:"origin"`
	Size   uint64 `json:"size"`
	Root   string `json:"root"`
	Bytes  int64  `json:"bytes"`
}

func (a *app) auditExportCommand() *cobra.Command {
	var home, out string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "export --home DIR --out FILE",
		Short: "Write a self-contained audit bundle of a node's ledger (running or stopped)",
		Long: `Write a self-contained audit bundle of a node's ledger: entries, signed
checkpoints, key certificates and consistency proofs, ending at a checkpoint
signed for the occasion. Anyone can check it offline with asp audit verify FILE.
The node may be running; its store is never written to.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlag("home", home); err != nil {
				return err
			}
			if err := requireFlag("out", out); err != nil {
				return err
			}
			l, err := openHomeLedger(home, true)
			if err != nil {
				return err
			}
			defer l.Close()
			if err := l.Export(cmd.Context(), out, ledger.BundleExtras{}); err != nil {
				return err
			}
			size, root := l.Root()
			res := ExportResult{Home: home, Out: out, Org: l.PeerID, Origin: l.Origin, Size: size, Root: hex.EncodeToString(root[:])}
			if fi, err := os.Stat(out); err == nil {
				res.Bytes = fi.Size()
			}
			if asJSON {
				return printJSON(a.stdout, res)
			}
			fmt.Fprintf(a.stdout, "wrote %s: %d entries, root %s, %d bytes\nverify it with: asp audit verify %s\n", out, res.Size, res.Root, res.Bytes, out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&home, "home", "", "node home whose ledger to export (required)")
	f.StringVar(&out, "out", "", "bundle file to write (required)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}
