package ledger

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aspnode/asp/protocol"
	"github.com/aspnode/asp/protocol/protocoltest"
	"github.com/cockroachdb/pebble/v2/vfs"
	tlog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

type member struct {
	name string
	data []byte
}

func readTar(t testing.TB, b []byte) []member {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var out []member
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		d, _ := io.ReadAll(tr)
		out = append(out, member{h.Name, d})
	}
}

func writeTar(ms []member) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), Typeflag: tar.TypeReg})
		tw.Write(m.data)
	}
	tw.Close()
	return buf.Bytes()
}

func bundleBytes(t testing.TB, l *Ledger, extra BundleExtras) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := l.WriteBundle(context.Background(), &buf, extra); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bundleLedger returns a ledger of n entries with checkpoints every step.
func bundleLedger(t testing.TB, n, step int) *Ledger {
	t.Helper()
	l := openTest(t, vfs.NewMem(), "db")
	t.Cleanup(func() { l.Close() })
	ctx := context.Background()
	for i := 0; i < n; i += step {
		var recs []Record
		for j := i; j < min(i+step, n); j++ {
			recs = append(recs, rec(j))
		}
		if _, err := l.Append(ctx, recs...); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func TestBundleRoundTrip(t *testing.T) {
	l := bundleLedger(t, 1000, 300)
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.tar")
	cosigned, _ := l.LatestCheckpoint()
	extra := BundleExtras{Cosigned: [][]byte{cosigned}, Files: map[string][]byte{"notes.txt": []byte("hello")}}
	if err := l.Export(context.Background(), path, extra); err != nil {
		t.Fatal(err)
	}
	rep, err := VerifyBundle(path, VerifyOptions{Org: testPeerID()})
	if err != nil {
		t.Fatal(err)
	}
	size, root := l.Root()
	if rep.Size != size || rep.Root != root || rep.Org != testPeerID() || rep.Origin != testOrigin() ||
		rep.Checkpoints != 4 || rep.Cosigned != 1 || len(rep.Extra) != 1 {
		t.Fatalf("report %+v", rep)
	}
	var total uint64
	for _, n := range rep.Kinds {
		total += n
	}
	if total != size {
		t.Fatalf("kinds count %d entries", total)
	}

	// The same bundle extracted into a directory.
	b, _ := os.ReadFile(path)
	x := filepath.Join(dir, "x")
	for _, m := range readTar(t, b) {
		p := filepath.Join(x, filepath.FromSlash(m.name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, m.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := VerifyBundle(x, VerifyOptions{}); err != nil {
		t.Fatalf("extracted bundle: %v", err)
	}
	// Export is deterministic for a given ledger state.
	if !bytes.Equal(bundleBytes(t, l, extra), b) {
		t.Fatal("export is not deterministic")
	}
	// A bundle spanning several entries files.
	if _, err := VerifyBundle(path, VerifyOptions{Org: "12D3KooWsomeoneelse"}); !errors.Is(err, ErrInvalidBundle) {
		t.Fatalf("verified for another org: %v", err)
	}
}

func TestBundleEmptyAndChunked(t *testing.T) {
	l := openTest(t, vfs.NewMem(), "db")
	defer l.Close()
	if _, err := VerifyBundleReader(bytes.NewReader(bundleBytes(t, l, BundleExtras{})), VerifyOptions{}); err != nil {
		t.Fatalf("empty ledger: %v", err)
	}
	// Entries of ~1 MiB: the bundle splits them into several files.
	big := bytes.Repeat([]byte{'b'}, 1<<20)
	for i := 0; i < 18; i++ { // 18 MiB: two entries files
		if _, err := l.Append(context.Background(), Record{Kind: KindAnchor, Body: big}); err != nil {
			t.Fatal(err)
		}
	}
	b := bundleBytes(t, l, BundleExtras{})
	files := 0
	for _, m := range readTar(t, b) {
		if strings.HasPrefix(m.name, "entries/") {
			files++
		}
	}
	if files < 2 {
		t.Fatalf("%d entries files", files)
	}
	if _, err := VerifyBundleReader(bytes.NewReader(b), VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
}

// entryFrames returns the frames of an entries file.
func entryFrames(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= 4 {
		n := binary.BigEndian.Uint32(b)
		out = append(out, b[4:4+n])
		b = b[4+n:]
	}
	return out
}

func mutateEntries(ms []member, fn func(frames [][]byte) [][]byte) []member {
	out := append([]member(nil), ms...)
	for i, m := range out {
		if strings.HasPrefix(m.name, "entries/") {
			out[i].data = frame(fn(entryFrames(m.data)))
		}
	}
	return out
}

func mutateMember(ms []member, name string, fn func([]byte) []byte) []member {
	out := append([]member(nil), ms...)
	for i, m := range out {
		if m.name == name {
			out[i].data = fn(bytes.Clone(m.data))
		}
	}
	return out
}

func TestBundleTamper(t *testing.T) {
	l := bundleLedger(t, 500, 100)
	orig := readTar(t, bundleBytes(t, l, BundleExtras{}))
	// A ledger whose first 512 entries go into the tree as whole groups.
	lw := bundleLedger(t, 600, 512)
	whole := readTar(t, bundleBytes(t, lw, BundleExtras{}))
	flip := func(b []byte, off int) []byte {
		if off < 0 {
			off += len(b)
		}
		b = bytes.Clone(b)
		b[off] ^= 0x20
		return b
	}
	s, _, v := testKeys(t)
	cases := []struct {
		name  string
		ms    []member
		opts  VerifyOptions
		what  string
		index uint64
	}{
		{"flip a body", mutateEntries(orig, func(f [][]byte) [][]byte { f[120] = flip(f[120], -2); return f }), VerifyOptions{}, "entry", 120},
		{"flip the last body", mutateEntries(orig, func(f [][]byte) [][]byte { f[499] = flip(f[499], -2); return f }), VerifyOptions{}, "checkpoint", 500},
		{"flip in a whole group", mutateEntries(whole, func(f [][]byte) [][]byte { f[300] = flip(f[300], -2); return f }), VerifyOptions{}, "entry", 300},
		{"flip the last of a whole group", mutateEntries(whole, func(f [][]byte) [][]byte { f[511] = flip(f[511], -2); return f }), VerifyOptions{}, "entry", 511},
		{"flip a prev hash in a whole group", mutateEntries(whole, func(f [][]byte) [][]byte { f[260] = flip(f[260], 12); return f }), VerifyOptions{}, "entry", 260},
		{"flip a prev hash", mutateEntries(orig, func(f [][]byte) [][]byte { f[33] = flip(f[33], 12); return f }), VerifyOptions{}, "entry", 33},
		{"flip an index", mutateEntries(orig, func(f [][]byte) [][]byte { f[7] = flip(f[7], 8); return f }), VerifyOptions{}, "entry", 7},
		{"drop an entry", mutateEntries(orig, func(f [][]byte) [][]byte { return append(f[:250:250], f[251:]...) }), VerifyOptions{}, "entry", 250},
		{"swap entries", mutateEntries(orig, func(f [][]byte) [][]byte { f[10], f[11] = f[11], f[10]; return f }), VerifyOptions{}, "entry", 10},
		{"truncate", mutateEntries(orig, func(f [][]byte) [][]byte { return f[:480] }), VerifyOptions{}, "entry", 480},
		{"append", mutateEntries(orig, func(f [][]byte) [][]byte {
			e := Entry{Index: 500, PrevHash: LeafHash(f[499]), Kind: KindAgent}
			return append(f, e.Encode())
		}), VerifyOptions{}, "entry", 500},
		{"checkpoint signature", mutateMember(orig, memberCheckpoints, func(b []byte) []byte { return flip(b, -10) }), VerifyOptions{}, "checkpoint", 500},
		{"manifest size", mutateMember(orig, memberManifest, func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"size": 500`), []byte(`"size": 499`), 1)
		}), VerifyOptions{}, "manifest", 0},
		{"certificate", mutateMember(orig, memberCertificates, func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"signature": "`), []byte(`"signature": "A`), 1)
		}), VerifyOptions{}, "certificate", 0},
		{"proof", mutateMember(orig, memberProofs, func(b []byte) []byte { return flip(b, 20) }), VerifyOptions{}, "proof", 100},
		{"unknown member", append(append([]member(nil), orig...), member{"evil", nil}), VerifyOptions{}, "archive", 0},
		{"member order", append([]member{orig[1], orig[0]}, orig[2:]...), VerifyOptions{}, "archive", 0},
		{"no certificate, no key", mutateMember(orig, memberCertificates, func([]byte) []byte { return []byte("[]") }), VerifyOptions{}, "manifest", 0},
		// A checkpoint obtained elsewhere (a receipt) for a size the bundle
		// covers, signed by the log with another root: a fork.
		{"forked anchor", orig, VerifyOptions{Anchors: [][]byte{func() []byte {
			b, _ := note.Sign(&note.Note{Text: string(tlog.Checkpoint{Origin: testOrigin(), Size: 250, Hash: make([]byte, 32)}.Marshal())}, s)
			return b
		}()}}, "anchor", 250},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyBundleReader(bytes.NewReader(writeTar(tc.ms)), tc.opts)
			var ve *VerifyError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalidBundle) {
				t.Fatalf("verified: %v", err)
			}
			if ve.What != tc.what || ve.Index != tc.index {
				t.Fatalf("named %s %d (%v), want %s %d", ve.What, ve.Index, err, tc.what, tc.index)
			}
			t.Log(err)
		})
	}
	// Anchors that agree with the bundle verify; a trusted key stands in
	// for a missing certificate.
	cp100, _ := l.CheckpointAt(100)
	vk := mustVKey(t)
	ms := mutateMember(orig, memberCertificates, func([]byte) []byte { return []byte("[]") })
	ms = mutateMember(ms, memberManifest, func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"org": "`+testPeerID()+`",`), nil, 1)
	})
	rep, err := VerifyBundleReader(bytes.NewReader(writeTar(ms)), VerifyOptions{Keys: []string{vk}, Anchors: [][]byte{cp100}})
	if err != nil || rep.Anchors != 1 || rep.Org != "" {
		t.Fatalf("trusted key and anchor: %v %+v", err, rep)
	}
	_ = v
}

func mustVKey(t testing.TB) string {
	_, c, _ := testKeys(t)
	return c.Key
}

// TestForgedTermsCaughtBySignatures records the seed deal (its envelopes
// and the commitment) and builds a forged twin ledger in which the agreed
// unit price is changed. The forger holds the checkpoint key, so every
// hash is recomputed and every checkpoint re-signed: the bundle verifies
// structurally, and only the agents' signatures inside the entries, checked
// by VerifyProtocolBody, catch the forgery, naming the entry.
func TestForgedTermsCaughtBySignatures(t *testing.T) {
	start := time.Date(2027, 2, 1, 9, 0, 0, 0, time.UTC)
	deal, err := protocoltest.SeedDeal(protocoltest.FixtureParty("buyer", "buyer"), protocoltest.FixtureParty("vendor", "vendor"), start)
	if err != nil {
		t.Fatal(err)
	}
	var recs []Record
	for i, env := range deal.Transcript {
		b, err := protocol.EncodeEnvelope(env)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, Record{Kind: KindMessageSent, Time: start.Add(time.Duration(i) * time.Second), Session: env.SessionID, Body: b})
	}
	cb, err := protocol.EncodeCommitment(deal.Commitment)
	if err != nil {
		t.Fatal(err)
	}
	cmtIndex := len(recs)
	recs = append(recs, Record{Kind: KindCommitment, Time: start.Add(time.Minute), Session: deal.Commitment.SessionID, Commitment: deal.Commitment.ID, Body: cb})

	// The forgery: the accepted offer now says 2.05 instead of 2.55.
	forged := append([]Record(nil), recs...)
	fb := bytes.Replace(cb, []byte("2.55"), []byte("2.05"), 1)
	if bytes.Equal(fb, cb) {
		t.Fatal("price not found in the commitment encoding")
	}
	forged[cmtIndex].Body = fb

	build := func(rs []Record) []byte {
		l := openTest(t, vfs.NewMem(), "db")
		defer l.Close()
		for _, r := range rs {
			if _, err := l.Append(context.Background(), r); err != nil {
				t.Fatal(err)
			}
		}
		return bundleBytes(t, l, BundleExtras{})
	}
	honest, forgedBundle := build(recs), build(forged)

	if _, err := VerifyBundleReader(bytes.NewReader(honest), VerifyOptions{VerifyEntry: VerifyProtocolBody}); err != nil {
		t.Fatalf("honest bundle: %v", err)
	}
	if _, err := VerifyBundleReader(bytes.NewReader(forgedBundle), VerifyOptions{}); err != nil {
		t.Fatalf("the forger re-signed everything; structure alone should pass: %v", err)
	}
	_, err = VerifyBundleReader(bytes.NewReader(forgedBundle), VerifyOptions{VerifyEntry: VerifyProtocolBody})
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.What != "entry" || ve.Index != uint64(cmtIndex) {
		t.Fatalf("forged terms: %v", err)
	}
	t.Log(err)

	// A forger without the checkpoint key is caught by the checkpoint alone.
	ms := readTar(t, forgedBundle)
	hm := readTar(t, honest)
	ms = mutateMember(ms, memberCheckpoints, func([]byte) []byte { return hm[2].data })
	if _, err := VerifyBundleReader(bytes.NewReader(writeTar(ms)), VerifyOptions{}); !errors.Is(err, ErrInvalidBundle) {
		t.Fatalf("forged entries under the honest checkpoint: %v", err)
	}
}

// TestBodyHookOwnSignatures exercises the hook with bodies signed by a
// key of the test's own: a changed body fails at its entry.
func TestBodyHookOwnSignatures(t *testing.T) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	sign := func(msg string) []byte { return append(ed25519.Sign(key, []byte(msg)), msg...) }
	hook := func(e Entry) error {
		if len(e.Body) < ed25519.SignatureSize || !ed25519.Verify(key.Public().(ed25519.PublicKey), e.Body[64:], e.Body[:64]) {
			return errors.New("bad body signature")
		}
		return nil
	}
	l := openTest(t, vfs.NewMem(), "db")
	defer l.Close()
	for i := 0; i < 50; i++ {
		if _, err := l.Append(context.Background(), Record{Kind: KindAttestation, Body: sign(strings.Repeat("x", i))}); err != nil {
			t.Fatal(err)
		}
	}
	b := bundleBytes(t, l, BundleExtras{})
	if _, err := VerifyBundleReader(bytes.NewReader(b), VerifyOptions{VerifyEntry: hook}); err != nil {
		t.Fatal(err)
	}
	ms := mutateEntries(readTar(t, b), func(f [][]byte) [][]byte { f[17][len(f[17])-1] ^= 1; return f })
	_, err := VerifyBundleReader(bytes.NewReader(writeTar(ms)), VerifyOptions{VerifyEntry: hook})
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.What != "entry" || ve.Index != 17 {
		t.Fatalf("hook: %v", err)
	}
}

// fuzzNames are the member names FuzzVerifyBundle inputs choose from.
var fuzzNames = []string{memberManifest, memberCertificates, memberCheckpoints,
	memberEntries + "00000000000000000000", memberEntries + "00000000000000000006",
	memberProofs, memberCosigned, memberExtra + "x", "evil", memberEntries + "0"}

// packMembers encodes members compactly for FuzzVerifyBundle: for each, a
// name index (1 byte), a length (2 bytes) and the data.
func packMembers(ms []member) []byte {
	var b []byte
	for _, m := range ms {
		k := slices.Index(fuzzNames, m.name)
		b = append(b, byte(k))
		b = binary.BigEndian.AppendUint16(b, uint16(len(m.data)))
		b = append(b, m.data...)
	}
	return b
}

func unpackMembers(b []byte) []member {
	var ms []member
	for len(b) >= 3 {
		name := fuzzNames[int(b[0])%len(fuzzNames)]
		n := min(int(binary.BigEndian.Uint16(b[1:])), len(b)-3)
		ms = append(ms, member{name, b[3 : 3+n]})
		b = b[3+n:]
	}
	return ms
}

// FuzzVerifyBundle: whatever the members (names, order, contents), the
// verifier does not panic, and a bundle that verifies tells only the
// truth: its entries are a prefix of the genuine log and its root the
// genuine root at its size. Inputs are packed members (packMembers), so
// that the fuzzer works on the verifier rather than on tar headers.
func FuzzVerifyBundle(f *testing.F) {
	l := bundleLedger(f, 12, 6)
	ms := readTar(f, bundleBytes(f, l, BundleExtras{}))
	tru := truthOf(f, l)
	f.Add(packMembers(ms))
	f.Add(packMembers(mutateEntries(ms, func(fr [][]byte) [][]byte { return fr[:6] })))
	f.Add(packMembers(ms[:3]))
	f.Fuzz(func(t *testing.T, b []byte) {
		seen := newSeen()
		rep, err := VerifyBundleReader(bytes.NewReader(writeTar(unpackMembers(b))), VerifyOptions{VerifyEntry: seen.hook})
		if err != nil {
			if !errors.Is(err, ErrInvalidBundle) {
				t.Fatalf("error without ErrInvalidBundle: %v", err)
			}
			return
		}
		if rep.Size > uint64(len(tru.enc)) || rep.Root != tru.roots[rep.Size] {
			t.Fatalf("forged bundle verified: size %d root %x", rep.Size, rep.Root)
		}
		seen.check(t, tru, rep.Size)
	})
}

// FuzzBundleEdit applies small edits to one member of a genuine bundle (a
// byte changed, inserted or cut) and checks the same property as
// FuzzVerifyBundle: an edited bundle that verifies tells only the truth.
func FuzzBundleEdit(f *testing.F) {
	l := bundleLedger(f, 40, 15)
	ms := readTar(f, bundleBytes(f, l, BundleExtras{}))
	tru := truthOf(f, l)
	for i := range ms {
		f.Add(uint8(i), uint16(0), byte(1), uint8(0))
		f.Add(uint8(i), uint16(len(ms[i].data)/2), byte(0x80), uint8(1))
		f.Add(uint8(i), uint16(len(ms[i].data)-1), byte(0), uint8(2))
	}
	f.Fuzz(func(t *testing.T, which uint8, off uint16, val byte, op uint8) {
		edited := append([]member(nil), ms...)
		m := &edited[int(which)%len(edited)]
		d := bytes.Clone(m.data)
		o := int(off) % (len(d) + 1)
		switch op % 4 {
		case 0: // change a byte
			if o == len(d) {
				return
			}
			if d[o] == val {
				return
			}
			d[o] = val
		case 1: // insert a byte
			d = append(d[:o:o], append([]byte{val}, d[o:]...)...)
		case 2: // cut the rest
			d = d[:o]
		case 3: // cut one byte
			if o == len(d) {
				return
			}
			d = append(d[:o:o], d[o+1:]...)
		}
		if bytes.Equal(d, m.data) {
			return
		}
		m.data = d
		seen := newSeen()
		rep, err := VerifyBundleReader(bytes.NewReader(writeTar(edited)), VerifyOptions{VerifyEntry: seen.hook})
		if err != nil {
			return
		}
		// Only changes that do not alter meaning may pass (JSON whitespace
		// or base64 slack in the manifest and certificates).
		if rep.Size != uint64(len(tru.enc)) || rep.Root != tru.roots[rep.Size] {
			t.Fatalf("edited bundle verified with size %d", rep.Size)
		}
		seen.check(t, tru, rep.Size)
		if m.name != memberManifest && m.name != memberCertificates {
			t.Fatalf("an edit of %s verified", m.name)
		}
	})
}

// seen collects the entries a verifier hands its hook (concurrently).
type seen struct {
	mu   sync.Mutex
	encs map[uint64][]byte
}

func newSeen() *seen { return &seen{encs: map[uint64][]byte{}} }

func (s *seen) hook(e Entry) error {
	b := e.Encode()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.encs[e.Index]; dup {
		s.encs[e.Index] = nil // two entries claim one index
		return nil
	}
	s.encs[e.Index] = b
	return nil
}

// check asserts that the verified entries [0, size) are the genuine ones.
func (s *seen) check(t *testing.T, tru *truth, size uint64) {
	for i := uint64(0); i < size; i++ {
		if !bytes.Equal(s.encs[i], tru.enc[i]) {
			t.Fatalf("entry %d verified but is not the log's", i)
		}
	}
}

// TestBundleWitnessCosignature: a checkpoint cosigned by a witness travels
// in the bundle; the verifier checks the log's signature, the root, and
// counts the cosignatures of the witnesses it is given. (The witness signs
// with a plain Ed25519 note key here; a C2SP cosignature/v1 verifier from
// transparency-dev/formats/note plugs into VerifyOptions.Witnesses alike.)
func TestBundleWitnessCosignature(t *testing.T) {
	l := bundleLedger(t, 300, 100)
	_, _, lv := testKeys(t)
	skey, vkey, err := note.GenerateKey(nil, "witness.example/w1")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	wv, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	cp, _ := l.CheckpointAt(200)
	n, err := note.Open(cp, note.VerifierList(lv))
	if err != nil {
		t.Fatal(err)
	}
	cosigned, err := note.Sign(n, ws)
	if err != nil {
		t.Fatal(err)
	}
	b := bundleBytes(t, l, BundleExtras{Cosigned: [][]byte{cosigned}})
	rep, err := VerifyBundleReader(bytes.NewReader(b), VerifyOptions{Witnesses: []note.Verifier{wv}})
	if err != nil || rep.Cosigned != 1 || rep.Cosignatures != 1 {
		t.Fatalf("%v %+v", err, rep)
	}
	// Without the witness's key the cosignature is not counted.
	if rep, err := VerifyBundleReader(bytes.NewReader(b), VerifyOptions{}); err != nil || rep.Cosignatures != 0 {
		t.Fatalf("%v %+v", err, rep)
	}
	// A cosigned checkpoint for another root of this log fails.
	forged := bytes.Replace(cosigned, []byte("\n200\n"), []byte("\n201\n"), 1)
	if _, err := VerifyBundleReader(bytes.NewReader(bundleBytes(t, l, BundleExtras{Cosigned: [][]byte{forged}})), VerifyOptions{}); !errors.Is(err, ErrInvalidBundle) {
		t.Fatalf("forged cosigned checkpoint: %v", err)
	}
}
