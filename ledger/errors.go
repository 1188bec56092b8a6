package ledger

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound is returned when an entry, checkpoint or index key does not
	// exist. Test with errors.Is.
	ErrNotFound = errors.New("ledger: not found")

	// ErrCorruption marks stored state that contradicts itself: a broken hash
	// chain, a Merkle tree that does not match its entries, a checkpoint that
	// does not match the tree. Errors carrying it are usually a
	// *CorruptionError naming the first bad entry. Test with errors.Is.
	ErrCorruption = errors.New("ledger: corruption")

	// ErrClosed is returned by calls on a closed Ledger.
	ErrClosed = errors.New("ledger: closed")

	// ErrFailed is returned by Append after a write to storage failed. Once a
	// write has failed, whether it reached the disk is unknown, so the ledger
	// accepts no more writes; Close it and Open it again (Open recovers
	// whatever was durable). Reads keep working. Test with errors.Is.
	ErrFailed = errors.New("ledger: a write failed; reopen the ledger")

	// ErrFormatTooNew is returned by Open for a store written by a newer
	// version of this package.
	ErrFormatTooNew = errors.New("ledger: store format is newer than this build")

	// ErrNoSigner is returned by Checkpoint and Export when Options.Signer is nil.
	ErrNoSigner = errors.New("ledger: no checkpoint signer configured")

	// ErrInvalidRecord is returned by Append for a record it refuses (kind 0,
	// oversized fields, invalid UTF-8, a time out of range).
	ErrInvalidRecord = errors.New("ledger: invalid record")

	// ErrInvalidBundle marks a bundle that failed verification; such errors
	// are a *VerifyError naming the first bad entry or checkpoint.
	ErrInvalidBundle = errors.New("ledger: invalid bundle")
)

// CorruptionError names the first bad item found in stored state.
// errors.Is(err, ErrCorruption) holds for every CorruptionError.
type CorruptionError struct {
	// What is the kind of item: "entry", "tile", "tree", "checkpoint",
	// "index", "certificate", "format", or "file" for a store file whose
	// checksums fail (then File names it), or "store" for other damage
	// Pebble reports.
	What string
	// File is the path of the damaged store file when What is "file".
	File string
	// Index is the index of the bad entry when What is "entry"; the tree size
	// of the checkpoint when What is "checkpoint"; otherwise informative.
	Index uint64
	// Reason says what is wrong, for people.
	Reason string
}

func (e *CorruptionError) Error() string {
	switch e.What {
	case "entry", "checkpoint":
		return fmt.Sprintf("ledger: corruption: %s %d: %s", e.What, e.Index, e.Reason)
	case "file":
		return fmt.Sprintf("ledger: corruption: store file %s: %s", e.File, e.Reason)
	default:
		return fmt.Sprintf("ledger: corruption: %s: %s", e.What, e.Reason)
	}
}

// Is reports whether target is ErrCorruption.
func (e *CorruptionError) Is(target error) bool { return target == ErrCorruption }

func corruptEntry(i uint64, format string, args ...any) error {
	return &CorruptionError{What: "entry", Index: i, Reason: fmt.Sprintf(format, args...)}
}

func corrupt(what string, format string, args ...any) error {
	return &CorruptionError{What: what, Reason: fmt.Sprintf(format, args...)}
}

// VerifyError names the first item of a bundle that failed verification.
// errors.Is(err, ErrInvalidBundle) holds for every VerifyError.
type VerifyError struct {
	// What is the kind of item: "entry", "checkpoint", "anchor", "proof",
	// "certificate", "manifest" or "archive".
	What string
	// Index is the entry index when What is "entry", the tree size when What
	// is "checkpoint", "anchor" or "proof".
	Index uint64
	// Reason says what is wrong, for people.
	Reason string
	// Err is the underlying error, if any (for example the one returned by
	// VerifyOptions.VerifyEntry).
	Err error
}

func (e *VerifyError) Error() string {
	var s string
	switch e.What {
	case "entry", "checkpoint", "anchor", "proof":
		s = fmt.Sprintf("bundle: %s %d: %s", e.What, e.Index, e.Reason)
	default:
		s = fmt.Sprintf("bundle: %s: %s", e.What, e.Reason)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports whether target is ErrInvalidBundle.
func (e *VerifyError) Is(target error) bool { return target == ErrInvalidBundle }

// Unwrap returns the underlying error.
func (e *VerifyError) Unwrap() error { return e.Err }
