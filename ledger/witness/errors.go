package witness

import (
	"errors"
	"fmt"
)

// Refusals of AddCheckpoint, each with the C2SP tlog-witness status it maps
// to (StatusOf). Match them with errors.Is.
var (
	// ErrMalformed: a request or checkpoint that does not parse, exceeds a
	// bound, or has an old size above the checkpoint's size (400).
	ErrMalformed = errors.New("witness: malformed")
	// ErrUnknownOrigin: no checkpoint key is known for the origin (404).
	ErrUnknownOrigin = errors.New("witness: unknown log origin")
	// ErrBadSignature: the checkpoint bears no valid signature by the
	// log's certified checkpoint key, or a signature by that key fails (403).
	ErrBadSignature = errors.New("witness: checkpoint not signed by the log's certified key")
	// ErrBadProof: the consistency proof is missing, not empty where it
	// must be, or does not verify; or a size-0 checkpoint with another root
	// than the empty tree's (422).
	ErrBadProof = errors.New("witness: consistency proof does not verify")
	// ErrConflict: the old size is not the size this witness last cosigned
	// for the origin (409). The error is a *ConflictError carrying it.
	ErrConflict = errors.New("witness: old size is not the latest cosigned size")
	// ErrRollback: the checkpoint is smaller than one this witness already
	// cosigned (409, a *ConflictError with Rollback set).
	ErrRollback = errors.New("witness: checkpoint smaller than the latest cosigned")
	// ErrEquivocation: the log signed a second root for a size this witness
	// cosigned (422). The error is an *EquivocationError holding both
	// signed checkpoints.
	ErrEquivocation = errors.New("witness: log signed two roots for one size")
	// ErrStale is the store's answer to a check-and-set whose expected
	// state is no longer the current one.
	ErrStale = errors.New("witness: stored state changed")
	// ErrBadCosignature: a cosignature that does not verify with the
	// witness key, or is not a timestamped cosignature/v1.
	ErrBadCosignature = errors.New("witness: cosignature does not verify")
	// ErrInvalidProof: an equivocation proof that is malformed or whose
	// checkpoints or inclusion proofs do not verify.
	ErrInvalidProof = errors.New("witness: invalid equivocation proof")
	// ErrNotContradictory: an equivocation proof whose two checkpoints can
	// both be true.
	ErrNotContradictory = errors.New("witness: equivocation proof shows no contradiction")
)

// ConflictError is the refusal of a request whose old size is not the
// latest cosigned size (C2SP's 409), or whose checkpoint is smaller than it
// (Rollback). It carries the witness's latest cosigned state so the log can
// retry from it.
type ConflictError struct {
	Old, New   uint64 // the request's old size and checkpoint size
	Size       uint64 // the latest size this witness cosigned (0 if none)
	Checkpoint []byte // that checkpoint with the log's signature and this witness's cosignature; nil if none (or unknown to a client)
	Rollback   bool   // New < Size
}

func (e *ConflictError) Error() string {
	if e.Rollback {
		return fmt.Sprintf("witness: checkpoint of size %d is smaller than the latest cosigned size %d", e.New, e.Size)
	}
	return fmt.Sprintf("witness: old size %d, but the latest cosigned size is %d", e.Old, e.Size)
}

// Is matches ErrConflict, and ErrRollback when Rollback is set.
func (e *ConflictError) Is(target error) bool {
	return target == ErrConflict || (e.Rollback && target == ErrRollback)
}

// EquivocationError is the refusal of a checkpoint whose size this witness
// already cosigned with another root. Both checkpoints verify with the
// log's key: Proof turns them into a portable Equivocation.
type EquivocationError struct {
	Origin    string
	Size      uint64
	Cosigned  []byte // the checkpoint this witness cosigned (log signature and cosignature)
	Presented []byte // the checkpoint presented, with the log's verified signatures
}

func (e *EquivocationError) Error() string {
	return fmt.Sprintf("witness: log %s signed two roots for size %d", e.Origin, e.Size)
}

func (e *EquivocationError) Unwrap() error { return ErrEquivocation }

// Proof returns the self-contained proof of the equivocation.
func (e *EquivocationError) Proof() *Equivocation {
	return SameSizeEquivocation(e.Cosigned, e.Presented)
}

// Status codes of the C2SP tlog-witness add-checkpoint call, which
// Response carries.
const (
	StatusOK            = 200
	StatusBadRequest    = 400
	StatusForbidden     = 403
	StatusNotFound      = 404
	StatusConflict      = 409
	StatusUnprocessable = 422
	StatusInternal      = 500
)

// StatusOf returns the C2SP status for an AddCheckpoint result: 200 for
// nil, the refusal's code for the errors above, 500 for anything else (a
// store failure: nothing was cosigned).
func StatusOf(err error) int {
	switch {
	case err == nil:
		return StatusOK
	case errors.Is(err, ErrMalformed):
		return StatusBadRequest
	case errors.Is(err, ErrBadSignature):
		return StatusForbidden
	case errors.Is(err, ErrUnknownOrigin):
		return StatusNotFound
	case errors.Is(err, ErrConflict):
		return StatusConflict
	case errors.Is(err, ErrBadProof), errors.Is(err, ErrEquivocation):
		return StatusUnprocessable
	}
	return StatusInternal
}
