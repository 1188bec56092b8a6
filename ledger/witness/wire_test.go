package witness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// specRequest is the example body of C2SP tlog-witness add-checkpoint.
const specRequest = `old 20852014
PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=
jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=
5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=
/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=

example.com/behind-the-sofa
20852163
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=
— example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=
`

// TestRequestWire: the specification's example decodes, and a request
// built from a ledger survives encoding and is cosigned after decoding.
func TestRequestWire(t *testing.T) {
	req, err := DecodeRequest([]byte(specRequest))
	if err != nil || req.OldSize != 20852014 || len(req.Proof) != 4 || !strings.HasPrefix(string(req.Checkpoint), "example.com/behind-the-sofa\n20852163\n") {
		t.Fatalf("spec example: %+v %v", req, err)
	}
	if b, _ := EncodeRequest(req); string(b) != specRequest {
		t.Fatal("spec example does not re-encode to itself")
	}

	l, cert := openLog(t, vfs.NewMem(), "log", logOrg)
	w, _ := newWitness(t, cert)
	if _, err := add(t, w, l, 0, grow(t, l, "m", 3)); err != nil {
		t.Fatal(err)
	}
	built, err := NewRequest(l, 3, grow(t, l, "m", 40))
	if err != nil {
		t.Fatal(err)
	}
	b, err := EncodeRequest(built)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRequest(b)
	if err != nil || !reflect.DeepEqual(got, built) {
		t.Fatalf("round trip: %v", err)
	}
	cosig, err := w.AddCheckpoint(context.Background(), *got)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyCosignature(got.Checkpoint, cosig, w.VerifierKey()); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeRequestRefusals(t *testing.T) {
	h := "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n"
	cp := "o\n1\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n\n— o AAAA\n"
	for name, body := range map[string]string{
		"empty":              "",
		"no newline":         "old 1",
		"not old":            "new 1\n\n" + cp,
		"leading zero":       "old 01\n\n" + cp,
		"sign":               "old +1\n\n" + cp,
		"space":              "old  1\n\n" + cp,
		"trailing space":     "old 1 \n\n" + cp,
		"overflow":           "old 18446744073709551616\n\n" + cp,
		"no empty line":      "old 1\n" + h,
		"no checkpoint":      "old 1\n" + h + "\n",
		"short hash":         "old 1\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpka==\n\n" + cp,
		"url base64":         "old 1\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw_\n\n" + cp,
		"unpadded":           "old 1\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw\n\n" + cp,
		"non-canonical bits": "old 1\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkax=\n\n" + cp,
		"64 proof lines":     "old 1\n" + strings.Repeat(h, 64) + "\n" + cp,
		"carriage return":    "old 1\r\n\n" + cp,
		"huge checkpoint":    "old 1\n\n" + strings.Repeat("x", MaxCheckpointSize+1),
	} {
		if _, err := DecodeRequest([]byte(body)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := DecodeRequest([]byte("old 1\n" + strings.Repeat(h, 63) + "\n" + cp)); err != nil {
		t.Errorf("63 proof lines: %v", err)
	}
}

// TestResponseWire: every outcome of AddCheckpoint travels as a response
// and reads back as the same kind of error on the client side.
func TestResponseWire(t *testing.T) {
	l, cert := openLog(t, vfs.NewMem(), "log", logOrg)
	w, _ := newWitness(t, cert)
	cp := grow(t, l, "m", 3)
	cosig, err := add(t, w, l, 0, cp)
	if err != nil {
		t.Fatal(err)
	}
	latest, _, _ := w.Latest(originOf(logOrg))
	for _, c := range []struct {
		cosig []byte
		err   error
		want  error
	}{
		{cosig, nil, nil},
		{nil, &ConflictError{Old: 1, New: 5, Size: 3, Checkpoint: latest.Checkpoint}, ErrConflict},
		{nil, &ConflictError{Old: 0, New: 5}, ErrConflict},
		{nil, fmt.Errorf("%w: line\nbreak", ErrBadProof), ErrBadProof},
		{nil, &EquivocationError{Origin: "o", Size: 3}, ErrBadProof},
		{nil, ErrBadSignature, ErrBadSignature},
		{nil, ErrUnknownOrigin, ErrUnknownOrigin},
		{nil, ErrMalformed, ErrMalformed},
		{nil, errors.New("disk on fire"), nil},
	} {
		r := ResponseFor(c.cosig, c.err)
		b, err := EncodeResponse(r)
		if err != nil {
			t.Fatalf("%v: encode: %v", c.err, err)
		}
		got, err := DecodeResponse(b)
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("%v: round trip %+v, %v", c.err, got, err)
		}
		back := got.Err()
		switch {
		case c.err == nil && back != nil, c.want != nil && !errors.Is(back, c.want), c.err != nil && back == nil:
			t.Fatalf("%v: client reads %v", c.err, back)
		}
		var ce *ConflictError
		if errors.As(c.err, &ce) {
			var be *ConflictError
			if !errors.As(back, &be) || be.Size != ce.Size || !bytes.Equal(be.Checkpoint, ce.Checkpoint) {
				t.Fatalf("conflict read back as %v", back)
			}
		}
	}
	if r, _ := DecodeResponse(mustEncode(t, ResponseFor(cosig, nil))); r != nil {
		if _, err := VerifyCosignature(cp, r.Cosignature, w.VerifierKey()); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{
		"empty":           "",
		"unknown status":  "201\nx\n",
		"leading zero":    "0200\n— a AAAAAAAA\n",
		"no cosignature":  "200\n",
		"not a sig line":  "200\nhello\n",
		"bad base64":      "200\n— a ####\n",
		"conflict no nl":  "409\n3",
		"conflict junk":   "409\n3\nx",
		"conflict empty":  "409\n3\n\n",
		"two reasons":     "422\na\nb\n",
		"reason no nl":    "422\na",
		"reason bad utf8": "422\n\xff\n",
	} {
		if _, err := DecodeResponse([]byte(body)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func mustEncode(t *testing.T, r *Response) []byte {
	b, err := EncodeResponse(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzDecodeRequest: the decoder never panics, accepts only what the
// encoder writes (a decoded request re-encodes to the same bytes), and
// stays within its bounds.
func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(specRequest))
	f.Add([]byte("old 0\n\nx\n"))
	f.Add([]byte("old 1\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := DecodeRequest(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again, err := EncodeRequest(req)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("decoded request re-encodes differently: %v", err)
		}
		if len(req.Proof) > MaxProofHashes || len(req.Checkpoint) > MaxCheckpointSize {
			t.Fatal("bounds exceeded")
		}
	})
}

// FuzzDecodeResponse: as FuzzDecodeRequest, for responses.
func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte("200\n— asp-witness/x AAAAAQAAAABoXnmAAAAA\n"))
	f.Add([]byte("409\n12\n\no\n12\nAAAA\n\n— o AAAA\n"))
	f.Add([]byte("409\n0\n"))
	f.Add([]byte("422\nconsistency proof does not verify\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeResponse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again, err := EncodeResponse(r)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("decoded response re-encodes differently: %v", err)
		}
		_ = r.Err()
	})
}

// memStore is a Store in memory, for the fuzzer.
type memStore struct {
	mu sync.Mutex
	m  map[string]State
}

func (s *memStore) Latest(origin string) (State, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[origin]
	return st, ok, nil
}

func (s *memStore) CompareAndSwap(origin string, prev *State, next State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.m[origin]
	if (prev == nil) == ok || (ok && (cur.Size != prev.Size || cur.Root != prev.Root)) {
		return ErrStale
	}
	s.m[origin] = next
	return nil
}

// FuzzAddCheckpoint drives a witness that has cosigned size 8 of a log
// with fuzzed requests (seeded with genuine ones): it never panics,
// refuses with a typed error, and never cosigns a smaller size or a
// second root for a size.
func FuzzAddCheckpoint(f *testing.F) {
	l, cert := openLog(f, vfs.NewMem(), "log", logOrg)
	grow(f, l, "m", 8)
	cp8 := signAt(f, l, 8)
	for _, n := range []uint64{9, 12, 16} {
		grow(f, l, "m", int(n-l.Size()))
		req, err := NewRequest(l, 8, signAt(f, l, n))
		if err != nil {
			f.Fatal(err)
		}
		b, _ := EncodeRequest(req)
		f.Add(b)
	}
	fork, _ := openLog(f, vfs.NewMem(), "fork", logOrg)
	b, _ := EncodeRequest(&Request{OldSize: 8, Checkpoint: grow(f, fork, "fork", 8)})
	f.Add(b)
	f.Fuzz(func(t *testing.T, body []byte) {
		w, err := New(Config{Key: witnessOrg, Store: &memStore{m: map[string]State{}}, Now: fixedNow, Verifier: Certificates(cert)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.AddCheckpoint(context.Background(), Request{Checkpoint: cp8}); err != nil {
			t.Fatal(err)
		}
		before, _, _ := w.Latest(originOf(logOrg))
		req, err := DecodeRequest(body)
		if err != nil {
			return
		}
		_, err = w.AddCheckpoint(context.Background(), *req)
		after, _, _ := w.Latest(originOf(logOrg))
		if err != nil {
			if StatusOf(err) == StatusInternal {
				t.Fatalf("untyped refusal: %v", err)
			}
			if !sameState(before, after) {
				t.Fatal("a refused request changed the state")
			}
			return
		}
		if after.Size < before.Size || (after.Size == before.Size && after.Root != before.Root) {
			t.Fatalf("cosigned size %d after %d", after.Size, before.Size)
		}
		if after.Root != rootAt(t, l, after.Size) {
			t.Fatalf("cosigned a root the log does not have at size %d", after.Size)
		}
	})
}
