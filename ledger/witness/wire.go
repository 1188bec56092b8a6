package witness

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxRequestSize bounds an encoded request: the old size line, 63 proof
// lines and a checkpoint.
const MaxRequestSize = 32 + MaxProofHashes*45 + 1 + MaxCheckpointSize

// MaxResponseSize bounds an encoded response.
const MaxResponseSize = 64 + 4*maxSigLine + MaxCheckpointSize

// EncodeRequest returns the C2SP tlog-witness add-checkpoint body:
//
//	old <size>\n
//	<base64 hash>\n     (zero or more, the consistency proof)
//	\n
//	<signed checkpoint>
func EncodeRequest(req *Request) ([]byte, error) {
	if err := checkRequest(req); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("old " + strconv.FormatUint(req.OldSize, 10) + "\n")
	for _, h := range req.Proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h) + "\n")
	}
	b.WriteByte('\n')
	b.Write(req.Checkpoint)
	return b.Bytes(), nil
}

// DecodeRequest reads an add-checkpoint body strictly: at most
// MaxRequestSize bytes; "old" and a decimal without leading zeros; at most
// MaxProofHashes lines, each the canonical base64 of 32 bytes; an empty
// line; a non-empty checkpoint. The checkpoint is not verified here.
func DecodeRequest(b []byte) (*Request, error) {
	bad := func(format string, args ...any) (*Request, error) {
		return nil, fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	if len(b) > MaxRequestSize {
		return bad("request of %d bytes (max %d)", len(b), MaxRequestSize)
	}
	line, rest, ok := bytes.Cut(b, []byte("\n"))
	if !ok {
		return bad("no old size line")
	}
	num, ok := strings.CutPrefix(string(line), "old ")
	if !ok {
		return bad("first line is not \"old <size>\"")
	}
	old, err := parseDecimal(num)
	if err != nil {
		return bad("old size: %v", err)
	}
	req := &Request{OldSize: old}
	for {
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		if !ok {
			return bad("no empty line before the checkpoint")
		}
		if len(line) == 0 {
			break
		}
		if len(req.Proof) == MaxProofHashes {
			return bad("more than %d proof lines", MaxProofHashes)
		}
		h, err := base64.StdEncoding.Strict().DecodeString(string(line))
		if err != nil || len(h) != 32 || base64.StdEncoding.EncodeToString(h) != string(line) {
			return bad("proof line %d is not the base64 of a 32-byte hash", len(req.Proof)+1)
		}
		req.Proof = append(req.Proof, h)
	}
	req.Checkpoint = bytes.Clone(rest)
	if err := checkRequest(req); err != nil {
		return nil, err
	}
	return req, nil
}

// parseDecimal parses an ASCII decimal without sign or leading zeros.
func parseDecimal(s string) (uint64, error) {
	if s == "" || len(s) > 20 || (len(s) > 1 && s[0] == '0') {
		return 0, errors.New("not a canonical decimal")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not a canonical decimal")
		}
	}
	return strconv.ParseUint(s, 10, 64)
}

// Response is the witness's answer to one request.
type Response struct {
	Status      int    // a Status* code (C2SP tlog-witness's HTTP codes)
	Cosignature []byte // StatusOK: the cosignature line(s)
	Size        uint64 // StatusConflict: the latest cosigned size
	Checkpoint  []byte // StatusConflict: the latest cosigned checkpoint, if any
	Reason      string // other statuses: one line of explanation
}

// maxReason bounds a refusal's reason.
const maxReason = 512

// ResponseFor returns the response to an AddCheckpoint result.
func ResponseFor(cosig []byte, err error) *Response {
	r := &Response{Status: StatusOf(err)}
	var conflict *ConflictError
	switch {
	case err == nil:
		r.Cosignature = cosig
	case errors.As(err, &conflict):
		r.Size, r.Checkpoint = conflict.Size, conflict.Checkpoint
	default:
		r.Reason = oneLine(err.Error())
	}
	return r
}

// oneLine makes s a valid reason: UTF-8, no newline, bounded.
func oneLine(s string) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\n", " "), "?")
	for len(s) > maxReason {
		_, n := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-n]
	}
	return s
}

// Err returns the client side's view of the response: nil for StatusOK, a
// *ConflictError for StatusConflict (Checkpoint as the witness sent it,
// unverified), otherwise an error wrapping the sentinel of the status.
func (r *Response) Err() error {
	switch r.Status {
	case StatusOK:
		return nil
	case StatusConflict:
		return &ConflictError{Size: r.Size, Checkpoint: r.Checkpoint}
	}
	sentinel := map[int]error{StatusBadRequest: ErrMalformed, StatusForbidden: ErrBadSignature,
		StatusNotFound: ErrUnknownOrigin, StatusUnprocessable: ErrBadProof}[r.Status]
	if sentinel == nil {
		return fmt.Errorf("witness: status %d: %s", r.Status, r.Reason)
	}
	return fmt.Errorf("%w (witness said: %s)", sentinel, r.Reason)
}

// EncodeResponse returns the response's body: a status line (the decimal
// code), then for StatusOK the C2SP body (the cosignature lines); for
// StatusConflict the C2SP body (the latest size and a newline) followed,
// if the witness holds one, by an empty line and its latest cosigned
// checkpoint; otherwise one reason line.
func EncodeResponse(r *Response) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(strconv.Itoa(r.Status) + "\n")
	switch r.Status {
	case StatusOK:
		if err := checkSigLines(r.Cosignature); err != nil || len(r.Cosignature) > 4*maxSigLine {
			return nil, fmt.Errorf("%w: response: cosignature is not note signature lines", ErrMalformed)
		}
		b.Write(r.Cosignature)
	case StatusConflict:
		if len(r.Checkpoint) > MaxCheckpointSize {
			return nil, fmt.Errorf("%w: response: checkpoint of %d bytes", ErrMalformed, len(r.Checkpoint))
		}
		b.WriteString(strconv.FormatUint(r.Size, 10) + "\n")
		if len(r.Checkpoint) > 0 {
			b.WriteByte('\n')
			b.Write(r.Checkpoint)
		}
	case StatusBadRequest, StatusForbidden, StatusNotFound, StatusUnprocessable, StatusInternal:
		if r.Reason != oneLine(r.Reason) {
			return nil, fmt.Errorf("%w: response: reason is not one bounded line", ErrMalformed)
		}
		b.WriteString(r.Reason + "\n")
	default:
		return nil, fmt.Errorf("%w: response: status %d", ErrMalformed, r.Status)
	}
	return b.Bytes(), nil
}

// DecodeResponse reads a response body strictly, as EncodeResponse writes
// it. It verifies no signature: VerifyCosignature does.
func DecodeResponse(b []byte) (*Response, error) {
	bad := func(format string, args ...any) (*Response, error) {
		return nil, fmt.Errorf("%w: response: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	if len(b) > MaxResponseSize {
		return bad("%d bytes (max %d)", len(b), MaxResponseSize)
	}
	line, rest, ok := bytes.Cut(b, []byte("\n"))
	if !ok {
		return bad("no status line")
	}
	code, err := parseDecimal(string(line))
	if err != nil || code > 999 {
		return bad("status line %q", line)
	}
	r := &Response{Status: int(code)}
	switch r.Status {
	case StatusOK:
		if len(rest) > 4*maxSigLine {
			return bad("cosignature of %d bytes", len(rest))
		}
		if err := checkSigLines(rest); err != nil {
			return bad("%v", err)
		}
		r.Cosignature = bytes.Clone(rest)
	case StatusConflict:
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		if !ok {
			return bad("no size line")
		}
		if r.Size, err = parseDecimal(string(line)); err != nil {
			return bad("size: %v", err)
		}
		if len(rest) > 0 {
			cp, ok := bytes.CutPrefix(rest, []byte("\n"))
			if !ok || len(cp) == 0 || len(cp) > MaxCheckpointSize {
				return bad("malformed checkpoint after the size")
			}
			r.Checkpoint = bytes.Clone(cp)
		}
	case StatusBadRequest, StatusForbidden, StatusNotFound, StatusUnprocessable, StatusInternal:
		reason, ok := bytes.CutSuffix(rest, []byte("\n"))
		if !ok || bytes.IndexByte(reason, '\n') >= 0 || string(reason) != oneLine(string(reason)) {
			return bad("reason is not one bounded line")
		}
		r.Reason = string(reason)
	default:
		return bad("status %d", r.Status)
	}
	return r, nil
}
