package witness

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	tlog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// MaxCheckpointSize bounds a signed checkpoint (body, the log's signatures
// and any cosignatures).
const MaxCheckpointSize = 16 << 10

// emptyRoot is the RFC 6962 root of the empty tree, SHA-256("").
var emptyRoot = sha256.Sum256(nil)

// checkpoint is a signed checkpoint whose log signature verified.
type checkpoint struct {
	origin string
	size   uint64
	root   [32]byte
	text   string // the note text (body)
	signed []byte // the text with the log's verified signatures only
}

// peekOrigin returns the origin line of a signed checkpoint, unverified.
func peekOrigin(signed []byte) (string, error) {
	i := bytes.IndexByte(signed, '\n')
	if i <= 0 {
		return "", fmt.Errorf("%w: checkpoint has no origin line", ErrMalformed)
	}
	return string(signed[:i]), nil
}

// parseUnverified parses a signed checkpoint's body without checking any
// signature.
func parseUnverified(signed []byte) (origin string, size uint64, err error) {
	i := bytes.Index(signed, []byte("\n\n"))
	if i < 0 {
		return "", 0, fmt.Errorf("%w: checkpoint is not a signed note", ErrMalformed)
	}
	var cp tlog.Checkpoint
	if _, err := cp.Unmarshal(signed[:i+1]); err != nil {
		return "", 0, fmt.Errorf("%w: checkpoint: %v", ErrMalformed, err)
	}
	return cp.Origin, cp.Size, nil
}

// openCheckpoint verifies signed with the log verifier v and parses it. A
// note that does not parse is ErrMalformed; one without a valid signature
// by v, or with a failing signature by v, is ErrBadSignature.
func openCheckpoint(signed []byte, origin string, v note.Verifier) (*checkpoint, error) {
	if len(signed) > MaxCheckpointSize {
		return nil, fmt.Errorf("%w: checkpoint of %d bytes (max %d)", ErrMalformed, len(signed), MaxCheckpointSize)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) || errors.As(err, &invalid) {
			return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
		}
		return nil, fmt.Errorf("%w: checkpoint: %v", ErrMalformed, err)
	}
	var cp tlog.Checkpoint
	if _, err := cp.Unmarshal([]byte(n.Text)); err != nil {
		return nil, fmt.Errorf("%w: checkpoint: %v", ErrMalformed, err)
	}
	if cp.Origin != origin || strings.Contains(origin, "\n") {
		return nil, fmt.Errorf("%w: checkpoint origin %q, want %q", ErrMalformed, cp.Origin, origin)
	}
	if len(cp.Hash) != 32 {
		return nil, fmt.Errorf("%w: checkpoint root of %d bytes", ErrMalformed, len(cp.Hash))
	}
	c := &checkpoint{origin: cp.Origin, size: cp.Size, text: n.Text, signed: noteWith(n.Text, n.Sigs)}
	copy(c.root[:], cp.Hash)
	return c, nil
}
