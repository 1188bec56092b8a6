package p2p

import (
	"errors"
	"fmt"
	"io"
)

// MaxFrameSize is the largest frame payload, in bytes, that ReadFrame accepts
// by default and that WriteFrame sends.
const MaxFrameSize = 1 << 20

// maxVarintLen is the longest uvarint accepted as a frame prefix. A prefix of
// four bytes holds lengths below 2^28, far above any sensible cap; longer
// prefixes are refused as malformed before their value is known.
const maxVarintLen = 4

var (
	// ErrFrameTooLarge is returned, wrapped, when a frame's declared length
	// exceeds the cap. Test for it with errors.Is.
	ErrFrameTooLarge = errors.New("p2p: frame too large")

	// ErrMalformedFrame is returned, wrapped, when a frame prefix is not a
	// minimally encoded uvarint, when a frame ends before its declared length,
	// or when a response frame carries an unknown status. Test for it with
	// errors.Is; a truncated frame also matches io.ErrUnexpectedEOF.
	ErrMalformedFrame = errors.New("p2p: malformed frame")
)

// appendUvarint appends the minimal uvarint encoding of v to b.
func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// uvarintLen is the length of the minimal uvarint encoding of v.
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// WriteFrame writes b to w as one frame: its length as a uvarint, then b,
// in a single Write. It returns an error wrapping ErrFrameTooLarge, and
// writes nothing, when len(b) > MaxFrameSize.
func WriteFrame(w io.Writer, b []byte) error {
	if len(b) > MaxFrameSize {
		return fmt.Errorf("%w: %d bytes, cap %d", ErrFrameTooLarge, len(b), MaxFrameSize)
	}
	buf := make([]byte, 0, uvarintLen(uint64(len(b)))+len(b))
	buf = appendUvarint(buf, uint64(len(b)))
	buf = append(buf, b...)
	_, err := w.Write(buf)
	return err
}

// writeFrameParts writes one frame whose payload is the concatenation of
// head and body, in a single Write. The caller checks the size.
func writeFrameParts(w io.Writer, head []byte, body []byte) error {
	n := len(head) + len(body)
	buf := make([]byte, 0, uvarintLen(uint64(n))+n)
	buf = appendUvarint(buf, uint64(n))
	buf = append(buf, head...)
	buf = append(buf, body...)
	_, err := w.Write(buf)
	return err
}

// ReadFrame reads one frame from r and returns its payload. max caps the
// payload length; max <= 0 means MaxFrameSize, and caps above 256 MiB - 1
// are lowered to it (length prefixes are at most four bytes).
//
// At a clean end of stream before the first byte of a frame it returns
// io.EOF. A declared length above max yields an error wrapping
// ErrFrameTooLarge, returned before any of the payload is read (the caller
// should then abandon the stream). A prefix that is not a minimal uvarint, or
// a stream that ends inside a frame, yields an error wrapping
// ErrMalformedFrame. Other read errors are returned as they are.
//
// The payload buffer grows as bytes arrive (see frameChunk), never by the
// declared length alone: a peer that announces 1 MiB and sends 10 bytes
// costs a few KiB, not 1 MiB.
//
// ReadFrame reads the prefix one byte at a time; when r is not an
// io.ByteReader, wrap it in a bufio.Reader for speed.
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	n, err := readFrameHeader(r, max)
	if err != nil {
		return nil, err
	}
	return readPayload(r, n, nil)
}

// readFrameHeader reads a frame's length prefix and checks it against max
// (see ReadFrame).
func readFrameHeader(r io.Reader, max int) (int, error) {
	if max <= 0 {
		max = MaxFrameSize
	}
	max = min(max, 1<<(7*maxVarintLen)-1)
	n, err := readUvarint(r)
	if err != nil {
		return 0, err
	}
	if n > uint64(max) {
		return 0, fmt.Errorf("%w: %d bytes, cap %d", ErrFrameTooLarge, n, max)
	}
	return int(n), nil
}

// frameChunk is the payload buffer ReadFrame starts with (or the declared
// length, when smaller). The buffer doubles each time it fills, up to the
// declared length, so it never holds more than twice the bytes received
// plus frameChunk, and a frame of n bytes costs about log2(n/frameChunk)
// extra copies (none at all below frameChunk, where ASP's messages are).
const frameChunk = 8 << 10

// readPayload reads an n-byte payload from r into a buffer that grows as
// bytes arrive. before, when not nil, is called before each Read with the
// bytes received so far (the server uses it to move its read deadline).
func readPayload(r io.Reader, n int, before func(got int)) ([]byte, error) {
	buf := make([]byte, 0, min(n, frameChunk))
	for len(buf) < n {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(n, 2*cap(buf)))
			copy(grown, buf)
			buf = grown
		}
		if before != nil {
			before(len(buf))
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil && len(buf) < n {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%w: payload: %w", ErrMalformedFrame, io.ErrUnexpectedEOF)
			}
			return nil, err
		}
	}
	return buf, nil
}

// readUvarint reads a minimally encoded uvarint of at most maxVarintLen bytes.
func readUvarint(r io.Reader) (uint64, error) {
	var (
		x     uint64
		shift uint
		one   [1]byte
	)
	br, _ := r.(io.ByteReader)
	for i := 0; ; i++ {
		var b byte
		var err error
		if br != nil {
			b, err = br.ReadByte()
		} else {
			_, err = io.ReadFull(r, one[:])
			b = one[0]
		}
		if err != nil {
			if i > 0 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
				return 0, fmt.Errorf("%w: length prefix: %w", ErrMalformedFrame, io.ErrUnexpectedEOF)
			}
			return 0, err
		}
		if i >= maxVarintLen {
			return 0, fmt.Errorf("%w: length prefix longer than %d bytes", ErrMalformedFrame, maxVarintLen)
		}
		if b < 0x80 {
			if b == 0 && i > 0 {
				return 0, fmt.Errorf("%w: length prefix not minimally encoded", ErrMalformedFrame)
			}
			return x | uint64(b)<<shift, nil
		}
		x |= uint64(b&0x7f) << shift
		shift += 7
	}
}
