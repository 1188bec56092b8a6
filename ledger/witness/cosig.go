package witness

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/protocol"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// algCosignatureV1 is the signed-note key type of an Ed25519
// cosignature/v1 key (C2SP signed-note, tlog-cosignature).
const algCosignatureV1 = 0x04

// NameFor returns the cosigner name of the witness run by the organization
// whose libp2p peer id is peerID: "asp-witness/<peerID>".
func NameFor(peerID string) string { return "asp-witness/" + peerID }

// VerifierKey returns the C2SP vkey of a cosignature/v1 Ed25519 cosigner:
// "<name>+<key id, 8 hex>+base64(0x04 || public key)".
func VerifierKey(name string, pub ed25519.PublicKey) (string, error) {
	if err := validName(name); err != nil {
		return "", err
	}
	if len(pub) != ed25519.PublicKeySize {
		return "", fmt.Errorf("witness: public key of %d bytes", len(pub))
	}
	k := append([]byte{algCosignatureV1}, pub...)
	return fmt.Sprintf("%s+%08x+%s", name, keyID(name, pub), base64.StdEncoding.EncodeToString(k)), nil
}

// VerifierKeyFor returns the vkey of the witness of the organization whose
// peer id is peerID: its identity key under NameFor(peerID). Anyone who
// knows the peer id can check that organization's cosignatures.
func VerifierKeyFor(peerID string) (string, error) {
	pub, err := protocol.PublicKeyFromPeerID(peerID)
	if err != nil {
		return "", fmt.Errorf("witness: %w", err)
	}
	return VerifierKey(NameFor(peerID), pub)
}

// keyID is SHA-256(name || "\n" || 0x04 || public key)[:4].
func keyID(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', algCosignatureV1})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

func validName(s string) error {
	if s == "" || !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsSpace) >= 0 || strings.Contains(s, "+") {
		return fmt.Errorf("witness: invalid cosigner name %q", s)
	}
	return nil
}

// cosignedMessage is what an Ed25519 cosignature/v1 signs: the header
// line, the time line, then the checkpoint's note text.
func cosignedMessage(ts uint64, text string) []byte {
	return []byte("cosignature/v1\ntime " + strconv.FormatUint(ts, 10) + "\n" + text)
}

// cosign returns the note signature line of the cosignature/v1 of text at
// time ts (POSIX seconds).
func cosign(key ed25519.PrivateKey, name string, ts uint64, text string) []byte {
	sig := make([]byte, 0, 4+8+ed25519.SignatureSize)
	sig = binary.BigEndian.AppendUint32(sig, keyID(name, key.Public().(ed25519.PublicKey)))
	sig = binary.BigEndian.AppendUint64(sig, ts)
	sig = append(sig, ed25519.Sign(key, cosignedMessage(ts, text))...)
	return []byte("— " + name + " " + base64.StdEncoding.EncodeToString(sig) + "\n")
}

// VerifyCosignature checks that cosig (one or more note signature lines,
// as AddCheckpoint returns them) holds a valid C2SP cosignature/v1 by the
// witness whose vkey is witnessKey on the signed checkpoint checkpoint, and
// returns the cosignature's time. Signature lines of other keys are
// ignored; a line of this key that does not verify is refused. The log's
// own signature on checkpoint is not checked here.
func VerifyCosignature(checkpoint, cosig []byte, witnessKey string) (time.Time, error) {
	v, err := fnote.NewVerifierForCosignatureV1(witnessKey)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: witness key: %v", ErrBadCosignature, err)
	}
	if err := checkSigLines(cosig); err != nil {
		return time.Time{}, fmt.Errorf("%w: %v", ErrBadCosignature, err)
	}
	if len(checkpoint) == 0 || checkpoint[len(checkpoint)-1] != '\n' {
		return time.Time{}, fmt.Errorf("%w: checkpoint is not a signed note", ErrBadCosignature)
	}
	msg := make([]byte, 0, len(checkpoint)+len(cosig))
	msg = append(append(msg, checkpoint...), cosig...)
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %v", ErrBadCosignature, err)
	}
	for _, s := range n.Sigs {
		if s.Hash != v.KeyHash() || s.Name != v.Name() {
			continue
		}
		t, err := fnote.CoSigV1Timestamp(s)
		if err != nil || t.Unix() <= 0 {
			return time.Time{}, fmt.Errorf("%w: no timestamp", ErrBadCosignature)
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%w: no cosignature by %s", ErrBadCosignature, v.Name())
}

// WithCosignature returns the signed checkpoint with the cosignature lines
// appended: a note that opens with the log's and the witness's verifiers.
func WithCosignature(checkpoint, cosig []byte) []byte {
	return append(bytes.Clone(checkpoint), cosig...)
}

// maxSigLine bounds one note signature line (C2SP: name and base64).
const maxSigLine = 1024

// checkSigLines checks that b is one or more lines "— <name> <base64>\n".
func checkSigLines(b []byte) error {
	if len(b) == 0 {
		return errors.New("no signature line")
	}
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return errors.New("signature line without newline")
		}
		line := string(b[:i])
		b = b[i+1:]
		if len(line) > maxSigLine {
			return errors.New("signature line too long")
		}
		rest, ok := strings.CutPrefix(line, "— ")
		if !ok {
			return errors.New("not a note signature line")
		}
		name, sig, ok := strings.Cut(rest, " ")
		if !ok || validName(name) != nil {
			return errors.New("malformed signature line")
		}
		if raw, err := base64.StdEncoding.Strict().DecodeString(sig); err != nil || len(raw) < 5 {
			return errors.New("malformed signature in signature line")
		}
	}
	return nil
}

// noteWith renders a signed note from its text and signatures.
func noteWith(text string, sigs []note.Signature) []byte {
	var b bytes.Buffer
	b.WriteString(text)
	b.WriteByte('\n')
	for _, s := range sigs {
		b.WriteString("— " + s.Name + " " + s.Base64 + "\n")
	}
	return b.Bytes()
}

// CertifiedVerifier returns the checkpoint verifier of the log certified
// by cert: the certificate's signature by the organization key inside its
// Org peer id verifies, and it certifies the key of that organization's
// own ledger (origin ledger.OriginFor(cert.Org)). A node resolves a
// counterparty's certificate (from a receipt, a bundle or the network) and
// passes this to Config.Verifier or VerifyEquivocation.
func CertifiedVerifier(cert *ledger.KeyCertificate) (note.Verifier, error) {
	if cert == nil {
		return nil, fmt.Errorf("%w: no key certificate", ErrUnknownOrigin)
	}
	if err := cert.Verify(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if cert.Origin != ledger.OriginFor(cert.Org) {
		return nil, fmt.Errorf("%w: certificate of %s is for origin %q", ErrBadSignature, cert.Org, cert.Origin)
	}
	return cert.Verifier()
}

// Resolver returns the checkpoint verifier of a log origin, or an error
// wrapping ErrUnknownOrigin.
type Resolver func(origin string) (note.Verifier, error)

// Certificates returns a Resolver over the given certificates. Each is
// checked by CertifiedVerifier when first resolved, and the outcome kept:
// the certificate's signature is verified once, not per request.
func Certificates(certs ...*ledger.KeyCertificate) Resolver {
	type outcome struct {
		v   note.Verifier
		err error
	}
	var mu sync.Mutex
	done := map[string]outcome{}
	return func(origin string) (note.Verifier, error) {
		mu.Lock()
		defer mu.Unlock()
		if o, ok := done[origin]; ok {
			return o.v, o.err
		}
		for _, c := range certs {
			if c != nil && c.Origin == origin {
				v, err := CertifiedVerifier(c)
				done[origin] = outcome{v, err}
				return v, err
			}
		}
		return nil, fmt.Errorf("%w: %q", ErrUnknownOrigin, origin)
	}
}
