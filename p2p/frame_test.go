package p2p

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"testing"
	"testing/iotest"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 16383, 16384, 70000, MaxFrameSize} {
		payload := bytes.Repeat([]byte{0xa5}, n)
		var buf bytes.Buffer
		if err := WriteFrame(&buf, payload); err != nil {
			t.Fatalf("%d: %v", n, err)
		}
		if want := uvarintLen(uint64(n)) + n; buf.Len() != want {
			t.Fatalf("%d: frame is %d bytes, want %d", n, buf.Len(), want)
		}
		// Through a reader that is not an io.ByteReader and returns one
		// byte at a time.
		got, err := ReadFrame(iotest.OneByteReader(bytes.NewReader(buf.Bytes())), 0)
		if err != nil {
			t.Fatalf("%d: %v", n, err)
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("%d: payload differs", n)
		}
	}
}

func TestFrameSequenceAndEOF(t *testing.T) {
	var buf bytes.Buffer
	for _, s := range []string{"a", "", "bc"} {
		if err := WriteFrame(&buf, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	r := bufio.NewReader(&buf)
	for _, want := range []string{"a", "", "bc"} {
		got, err := ReadFrame(r, 0)
		if err != nil || string(got) != want {
			t.Fatalf("got %q, %v; want %q", got, err, want)
		}
	}
	if _, err := ReadFrame(r, 0); err != io.EOF {
		t.Fatalf("at end: got %v, want io.EOF", err)
	}
}

func TestWriteFrameTooLarge(t *testing.T) {
	var buf bytes.Buffer
	err := WriteFrame(&buf, make([]byte, MaxFrameSize+1))
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("got %v, want ErrFrameTooLarge", err)
	}
	if buf.Len() != 0 {
		t.Fatal("an oversized frame was partly written")
	}
}

func TestReadFrameRefusals(t *testing.T) {
	for _, tc := range []struct {
		name      string
		in        []byte
		max       int
		want      error
		truncated bool
	}{
		{name: "oversize", in: appendUvarint(nil, MaxFrameSize+1), want: ErrFrameTooLarge},
		{name: "over caller cap", in: append(appendUvarint(nil, 11), make([]byte, 11)...), max: 10, want: ErrFrameTooLarge},
		{name: "prefix too long", in: []byte{0x80, 0x80, 0x80, 0x80, 0x01}, want: ErrMalformedFrame},
		{name: "garbage", in: bytes.Repeat([]byte{0xff}, 16), want: ErrMalformedFrame},
		{name: "not minimal", in: []byte{0x81, 0x00, 0x00}, want: ErrMalformedFrame},
		{name: "truncated prefix", in: []byte{0x81}, want: ErrMalformedFrame, truncated: true},
		{name: "truncated payload", in: []byte{0x05, 'a', 'b'}, want: ErrMalformedFrame, truncated: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadFrame(bytes.NewReader(tc.in), tc.max)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.truncated && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("got %v, want it to match io.ErrUnexpectedEOF too", err)
			}
		})
	}
}

func TestReadFrameDoesNotReadOversizedPayload(t *testing.T) {
	in := append(appendUvarint(nil, MaxFrameSize+1), 'x')
	r := bytes.NewReader(in)
	if _, err := ReadFrame(r, 0); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatal(err)
	}
	if r.Len() != 1 {
		t.Fatalf("%d bytes left unread, want 1 (the payload untouched)", r.Len())
	}
}

func TestRemoteErrorEncoding(t *testing.T) {
	for _, e := range []*RemoteError{
		{Code: "invalid_transition", Message: "ACCEPT after CLOSE"},
		{Code: "", Message: ""},
		{Code: "x", Message: string(bytes.Repeat([]byte("m"), 300))},
	} {
		_, err := decodeResponse(encodeRemoteError(e))
		var got *RemoteError
		if !errors.As(err, &got) || *got != *e {
			t.Fatalf("got %#v, want %#v", err, e)
		}
	}
	for _, bad := range [][]byte{{}, {7}, {statusError}, {statusError, 5, 'a'}, {statusError, 0x80, 0x80, 0x01}} {
		if _, err := decodeResponse(bad); !errors.Is(err, ErrMalformedFrame) {
			t.Fatalf("%x: got %v, want ErrMalformedFrame", bad, err)
		}
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{3, 'a', 'b', 'c'})
	f.Add([]byte{0x80, 0x01})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add(append(appendUvarint(nil, 60000), "0123456789"...))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		got, err := ReadFrame(r, 1<<16)
		// Byte by byte, the growing buffer reads the same frame.
		got1, err1 := ReadFrame(iotest.OneByteReader(bytes.NewReader(in)), 1<<16)
		if (err == nil) != (err1 == nil) || !bytes.Equal(got, got1) {
			t.Fatalf("one byte at a time: %x, %v; at once: %x, %v", got1, err1, got, err)
		}
		if err != nil {
			return
		}
		// Whatever was accepted re-encodes to exactly the bytes consumed.
		var buf bytes.Buffer
		if err := WriteFrame(&buf, got); err != nil {
			t.Fatal(err)
		}
		consumed := in[:len(in)-r.Len()]
		if !bytes.Equal(buf.Bytes(), consumed) {
			t.Fatalf("re-encoding %x gives %x", consumed, buf.Bytes())
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte{statusOK, 'x'})
	f.Add(encodeRemoteError(&RemoteError{Code: "c", Message: "m"}))
	f.Fuzz(func(t *testing.T, in []byte) {
		resp, err := decodeResponse(in)
		var re *RemoteError
		switch {
		case err == nil:
			if !bytes.Equal(append([]byte{statusOK}, resp...), in) {
				t.Fatal("OK response does not round-trip")
			}
		case errors.As(err, &re):
			if len(in) < 64<<10 && len(re.Code) <= 256 && !bytes.Equal(encodeRemoteError(re), in) {
				t.Fatalf("remote error %x does not round-trip", in)
			}
		}
	})
}

// BenchmarkReadFrame reads frames of several sizes from memory.
func BenchmarkReadFrame(b *testing.B) {
	for _, n := range []int{512, 4 << 10, 64 << 10, MaxFrameSize} {
		b.Run(fmt.Sprintf("%dB", n), func(b *testing.B) {
			var buf bytes.Buffer
			if err := WriteFrame(&buf, bytes.Repeat([]byte{0xa5}, n)); err != nil {
				b.Fatal(err)
			}
			frame := buf.Bytes()
			r := bytes.NewReader(frame)
			br := bufio.NewReader(r)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(frame)
				br.Reset(r)
				if _, err := ReadFrame(br, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestReadFrameGrowsWithArrivals: a frame that announces 1 MiB and then
// sends 10 bytes costs a small buffer, not the announced length.
func TestReadFrameGrowsWithArrivals(t *testing.T) {
	in := append(appendUvarint(nil, MaxFrameSize), "0123456789"...)
	const runs = 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		_, err := ReadFrame(bytes.NewReader(in), 0)
		if !errors.Is(err, ErrMalformedFrame) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("got %v, want a truncated frame", err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 4*frameChunk {
		t.Fatalf("%d bytes allocated per truncated frame, want at most %d", per, 4*frameChunk)
	}

	// Delivered in bits, a frame's buffer never exceeds twice what has
	// arrived (plus the first chunk), and ends at exactly the payload.
	payload := bytes.Repeat([]byte{0x5a}, 100_000)
	var reads []int
	got, err := readPayload(iotest.HalfReader(bytes.NewReader(payload)), len(payload), func(n int) {
		reads = append(reads, n)
	})
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("readPayload: %v", err)
	}
	if cap(got) != len(payload) {
		t.Fatalf("final capacity %d, want %d", cap(got), len(payload))
	}
	if len(reads) < 2 {
		t.Fatalf("payload read in %d reads, want several", len(reads))
	}
}
