package ledger

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/note"
)

// BundleFormat is the format name in a bundle's manifest.
const BundleFormat = "asp-ledger-bundle/1"

// Bundle member names. A bundle is a tar archive (or a directory) holding,
// in this order:
//
//	manifest.json        {"format","origin","org","size","root","checkpoints","entryFiles"}
//	certificates.json    [KeyCertificate…] certifying the checkpoint keys
//	checkpoints          signed checkpoints in increasing size, each a 4-byte length and the note
//	entries/<20 digits>  entries from that index on, each a 4-byte length and the encoding
//	proofs               for each checkpoint but the last: its size (8 bytes), the number of
//	                     hashes (2 bytes) and the consistency proof to the bundle's size
//	cosigned             optional: checkpoints bearing witness cosignatures, framed as checkpoints
//	extra/<name>         optional: files the exporter added (not verified)
const (
	memberManifest     = "manifest.json"
	memberCertificates = "certificates.json"
	memberCheckpoints  = "checkpoints"
	memberEntries      = "entries/"
	memberProofs       = "proofs"
	memberCosigned     = "cosigned"
	memberExtra        = "extra/"
)

// entryChunkBytes is the size at which Export starts a new entries file.
const entryChunkBytes = 16 << 20

// maxEntryLen bounds an entry's encoding.
const maxEntryLen = entryHeaderLen + 2 + MaxIDLen + 2 + MaxIDLen + 4 + MaxBodyLen

// BundleExtras are what an exporter adds to a bundle beyond the ledger's
// own entries, checkpoints and certificates.
type BundleExtras struct {
	// Cosigned are checkpoints of this log bearing witness cosignatures
	// (signed notes). The verifier checks the log's signature and the root,
	// and counts the cosignatures of the witnesses it is given.
	Cosigned [][]byte
	// Files are stored under extra/<name> and listed, not verified.
	Files map[string][]byte
}

type manifest struct {
	Format      string `json:"format"`
	Origin      string `json:"origin"`
	Org         string `json:"org,omitempty"`
	Size        uint64 `json:"size"`
	Root        string `json:"root"`
	Checkpoints int    `json:"checkpoints"`
	EntryFiles  int    `json:"entryFiles"`
}

// Export writes a self-contained bundle of the whole ledger to path (a tar
// archive; written to a temporary file, synced, then renamed). It first
// signs a checkpoint covering every durable entry, so the bundle ends at
// that checkpoint. Requires Options.Signer.
func (l *Ledger) Export(ctx context.Context, path string, extra BundleExtras) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".bundle-*")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	w := bufio.NewWriterSize(f, 1<<20)
	err = l.WriteBundle(ctx, w, extra)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// WriteBundle writes the bundle that Export writes, as a tar stream, to w.
func (l *Ledger) WriteBundle(ctx context.Context, w io.Writer, extra BundleExtras) (err error) {
	defer func() { err = l.dmg.storeErr(err) }()
	defer recoverFatal(&err)
	latest, err := l.Checkpoint(ctx)
	if err != nil {
		return err
	}
	if err := l.rlock(); err != nil {
		return err
	}
	defer l.runlock()
	snap := l.db.NewSnapshot()
	defer snap.Close()

	i := bytes.Index(latest, []byte("\n\n"))
	rec, err := parseCheckpointRecord(sizeOfBody(latest[:i+1]), append([]byte{cpSigned}, latest...))
	if err != nil {
		return err
	}
	head := CheckpointBody{Origin: rec.cp.Origin, Size: rec.cp.Size, Root: rec.root}

	certs, err := certificates(snap)
	if err != nil {
		return err
	}
	var sizes []uint64
	var notes [][]byte
	err = eachCheckpoint(snap, false, func(size uint64, r cpRecord) (bool, error) {
		if size > head.Size {
			return false, nil
		}
		if r.state == cpSigned && r.cp.Origin == head.Origin {
			sizes = append(sizes, size)
			notes = append(notes, bytes.Clone(r.text))
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	if len(sizes) == 0 || sizes[len(sizes)-1] != head.Size {
		sizes = append(sizes, head.Size)
		notes = append(notes, latest)
	}

	tw := tar.NewWriter(w)
	put := func(name string, data []byte) error {
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}

	// Entries go in files of about entryChunkBytes; count them first.
	chunks, err := entryChunks(snap, head.Size)
	if err != nil {
		return err
	}
	m := manifest{
		Format: BundleFormat, Origin: head.Origin, Size: head.Size,
		Root:        base64.StdEncoding.EncodeToString(head.Root[:]),
		Checkpoints: len(notes), EntryFiles: len(chunks),
	}
	if len(certs) > 0 {
		m.Org = certs[0].Org
	}
	mb, _ := json.MarshalIndent(m, "", "  ")
	if err := put(memberManifest, append(mb, '\n')); err != nil {
		return err
	}
	if certs == nil {
		certs = []*KeyCertificate{}
	}
	cb, _ := json.MarshalIndent(certs, "", "  ")
	if err := put(memberCertificates, append(cb, '\n')); err != nil {
		return err
	}
	if err := put(memberCheckpoints, frame(notes)); err != nil {
		return err
	}

	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: entryKey(0), UpperBound: entryKey(head.Size)})
	if err != nil {
		return err
	}
	defer it.Close()
	it.First()
	for ci, c := range chunks {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr := &tar.Header{Name: fmt.Sprintf("%s%020d", memberEntries, c.first), Mode: 0o644, Size: c.bytes, ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		end := head.Size
		if ci+1 < len(chunks) {
			end = chunks[ci+1].first
		}
		var lenBuf [4]byte
		for i := c.first; i < end; i++ {
			if !it.Valid() || binary.BigEndian.Uint64(it.Key()[1:]) != i {
				return corruptEntry(i, "missing")
			}
			v := it.Value()
			binary.BigEndian.PutUint32(lenBuf[:], uint32(len(v)))
			if _, err := tw.Write(lenBuf[:]); err != nil {
				return err
			}
			if _, err := tw.Write(v); err != nil {
				return err
			}
			it.Next()
		}
	}
	if err := it.Error(); err != nil {
		return err
	}

	// Consistency proofs from each earlier checkpoint to the bundle's size.
	var pb []byte
	for _, s := range sizes[:len(sizes)-1] {
		p, err := l.ConsistencyProof(s, head.Size)
		if err != nil {
			return err
		}
		pb = binary.BigEndian.AppendUint64(pb, s)
		pb = binary.BigEndian.AppendUint16(pb, uint16(len(p)))
		for _, h := range p {
			pb = append(pb, h...)
		}
	}
	if err := put(memberProofs, pb); err != nil {
		return err
	}
	if len(extra.Cosigned) > 0 {
		if err := put(memberCosigned, frame(extra.Cosigned)); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(extra.Files))
	for n := range extra.Files {
		if n == "" || strings.Contains(n, "..") || strings.HasPrefix(n, "/") {
			return fmt.Errorf("export: bad extra file name %q", n)
		}
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := put(memberExtra+n, extra.Files[n]); err != nil {
			return err
		}
	}
	return tw.Close()
}

// sizeOfBody returns the size line of a checkpoint body (0 if malformed).
func sizeOfBody(body []byte) uint64 {
	lines := strings.SplitN(string(body), "\n", 3)
	if len(lines) < 2 {
		return 0
	}
	n, _ := strconv.ParseUint(lines[1], 10, 64)
	return n
}

type chunk struct {
	first uint64
	bytes int64
}

// entryChunks splits entries [0, size) into files of about entryChunkBytes.
func entryChunks(r reader, size uint64) ([]chunk, error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: entryKey(0), UpperBound: entryKey(size)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []chunk
	var i uint64
	for ok := it.First(); ok; ok = it.Next() {
		n := int64(4 + len(it.Value()))
		if len(out) == 0 || out[len(out)-1].bytes+n > entryChunkBytes {
			out = append(out, chunk{first: i})
		}
		out[len(out)-1].bytes += n
		i++
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	if i != size {
		return nil, corruptEntry(i, "missing")
	}
	return out, nil
}

func frame(items [][]byte) []byte {
	var b []byte
	for _, x := range items {
		b = binary.BigEndian.AppendUint32(b, uint32(len(x)))
		b = append(b, x...)
	}
	return b
}

func unframe(b []byte, max int) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, errors.New("truncated frame")
		}
		n := binary.BigEndian.Uint32(b)
		if uint64(n) > uint64(max) || uint64(n) > uint64(len(b)-4) {
			return nil, fmt.Errorf("frame of %d bytes", n)
		}
		out = append(out, b[4:4+n])
		b = b[4+n:]
	}
	return out, nil
}

// VerifyOptions configure VerifyBundle.
type VerifyOptions struct {
	// Org, if set, is the peer id of the organization that must have
	// certified the checkpoint key. Empty: any, reported in BundleReport.Org.
	Org string

	// Keys are further trusted checkpoint verifier keys (note format), for
	// bundles of logs without key certificates.
	Keys []string

	// VerifyEntry, if set, is called for every entry; an error fails the
	// bundle naming that entry (unless an earlier entry fails first). It is
	// called from several goroutines at once and in no particular order, so
	// it must be safe for concurrent use. The node
	// supplies one that checks the signatures of protocol envelopes inside
	// entries, so that a changed term is caught even when the forger could
	// recompute every hash and re-sign every checkpoint. The entry's Body is
	// only valid during the call.
	VerifyEntry func(Entry) error

	// Anchors are checkpoints of this log obtained elsewhere (receipts,
	// witnesses). Each must verify and match the root the bundle's entries
	// give for its size; a mismatch proves the log signed two roots for one
	// size.
	Anchors [][]byte

	// Witnesses verify cosignatures on the bundle's cosigned checkpoints.
	Witnesses []note.Verifier
}

// BundleReport describes a bundle that verified.
type BundleReport struct {
	Origin       string
	Org          string // peer id of the organization certifying the checkpoint key ("" if none)
	Size         uint64
	Root         [32]byte
	Checkpoints  int
	Anchors      int
	Cosigned     int // cosigned checkpoints checked
	Cosignatures int // witness cosignatures verified on them
	Kinds        map[Kind]uint64
	Extra        []string // names of unverified extra files
}

// VerifyBundle verifies a bundle written by Export (a tar archive, or a
// directory it was extracted into) with no ledger and no network. It checks
// the key certificates, every checkpoint's signature, the encoding, index
// and hash chain link of every entry, the Merkle root at every checkpoint
// and anchor, the consistency proofs, and whatever opts.VerifyEntry checks.
// On failure the error is a *VerifyError naming the first bad entry (or
// checkpoint, certificate…).
func VerifyBundle(path string, opts VerifyOptions) (*BundleReport, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, &VerifyError{What: "archive", Reason: "cannot read", Err: err}
	}
	if fi.IsDir() {
		return verifyMembers(&dirMembers{dir: path}, opts)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &VerifyError{What: "archive", Reason: "cannot read", Err: err}
	}
	defer f.Close()
	return VerifyBundleReader(bufio.NewReaderSize(f, 1<<20), opts)
}

// VerifyBundleReader verifies a bundle read as a tar stream from r.
func VerifyBundleReader(r io.Reader, opts VerifyOptions) (*BundleReport, error) {
	return verifyMembers(&tarMembers{tr: tar.NewReader(r)}, opts)
}

// members yields a bundle's files in order.
type members interface {
	next() (name string, r io.Reader, size int64, err error) // io.EOF at the end
	close()
}

type tarMembers struct{ tr *tar.Reader }

func (t *tarMembers) next() (string, io.Reader, int64, error) {
	for {
		h, err := t.tr.Next()
		if err != nil {
			return "", nil, 0, err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
			return h.Name, t.tr, h.Size, nil
		default:
			return "", nil, 0, fmt.Errorf("member %q is not a regular file", h.Name)
		}
	}
}

func (t *tarMembers) close() {}

// dirMembers reads an extracted bundle in member order.
type dirMembers struct {
	dir   string
	names []string
	pos   int
	f     *os.File
}

func (d *dirMembers) next() (string, io.Reader, int64, error) {
	if d.names == nil {
		d.names = []string{memberManifest, memberCertificates, memberCheckpoints}
		ents, err := os.ReadDir(filepath.Join(d.dir, "entries"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", nil, 0, err
		}
		for _, e := range ents {
			d.names = append(d.names, memberEntries+e.Name())
		}
		d.names = append(d.names, memberProofs)
		if _, err := os.Stat(filepath.Join(d.dir, memberCosigned)); err == nil {
			d.names = append(d.names, memberCosigned)
		}
		extras, _ := os.ReadDir(filepath.Join(d.dir, "extra"))
		for _, e := range extras {
			d.names = append(d.names, memberExtra+e.Name())
		}
	}
	d.close()
	if d.pos >= len(d.names) {
		return "", nil, 0, io.EOF
	}
	name := d.names[d.pos]
	d.pos++
	f, err := os.Open(filepath.Join(d.dir, filepath.FromSlash(name)))
	if err != nil {
		return "", nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return "", nil, 0, err
	}
	d.f = f
	return name, bufio.NewReaderSize(f, 1<<20), fi.Size(), nil
}

func (d *dirMembers) close() {
	if d.f != nil {
		d.f.Close()
		d.f = nil
	}
}

// maxSmallMember bounds the members read whole (all but entries).
const maxSmallMember = 256 << 20

func readSmall(r io.Reader, size int64) ([]byte, error) {
	if size < 0 || size > maxSmallMember {
		return nil, fmt.Errorf("member of %d bytes", size)
	}
	b := make([]byte, size)
	_, err := io.ReadFull(r, b)
	return b, err
}

type bundleCheckpoint struct {
	body CheckpointBody
	text []byte
}

func verifyMembers(ms members, opts VerifyOptions) (*BundleReport, error) {
	defer ms.close()
	bad := func(what string, idx uint64, format string, args ...any) error {
		return &VerifyError{What: what, Index: idx, Reason: fmt.Sprintf(format, args...)}
	}
	rep := &BundleReport{Kinds: map[Kind]uint64{}}
	expect := func(want string) ([]byte, error) {
		name, r, size, err := ms.next()
		if err != nil {
			return nil, &VerifyError{What: "archive", Reason: "reading " + want, Err: err}
		}
		if name != want {
			return nil, bad("archive", 0, "member %q where %q belongs", name, want)
		}
		b, err := readSmall(r, size)
		if err != nil {
			return nil, &VerifyError{What: "archive", Reason: "reading " + want, Err: err}
		}
		return b, nil
	}

	// Manifest.
	b, err := expect(memberManifest)
	if err != nil {
		return nil, err
	}
	var m manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, &VerifyError{What: "manifest", Reason: "malformed", Err: err}
	}
	if m.Format != BundleFormat {
		return nil, bad("manifest", 0, "format %q, want %q", m.Format, BundleFormat)
	}
	if err := validOrigin(m.Origin); err != nil {
		return nil, bad("manifest", 0, "%v", err)
	}
	mroot, err := base64.StdEncoding.DecodeString(m.Root)
	if err != nil || len(mroot) != 32 {
		return nil, bad("manifest", 0, "root is not a base64 SHA-256 hash")
	}
	rep.Origin, rep.Size = m.Origin, m.Size
	copy(rep.Root[:], mroot)

	// Certificates and the checkpoint verifiers.
	if b, err = expect(memberCertificates); err != nil {
		return nil, err
	}
	var certs []*KeyCertificate
	dec = json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&certs); err != nil {
		return nil, &VerifyError{What: "certificate", Reason: "malformed", Err: err}
	}
	var verifiers []note.Verifier
	for i, c := range certs {
		if c == nil {
			return nil, bad("certificate", uint64(i), "null")
		}
		if err := c.Verify(); err != nil {
			return nil, &VerifyError{What: "certificate", Index: uint64(i), Reason: "does not verify", Err: err}
		}
		if c.Origin != m.Origin {
			return nil, bad("certificate", uint64(i), "for origin %q, bundle origin %q", c.Origin, m.Origin)
		}
		if rep.Org == "" {
			rep.Org = c.Org
		} else if c.Org != rep.Org {
			return nil, bad("certificate", uint64(i), "certified by %s and %s", rep.Org, c.Org)
		}
		v, _ := c.Verifier()
		verifiers = append(verifiers, v)
	}
	if m.Org != rep.Org {
		return nil, bad("manifest", 0, "org %q, certificates say %q", m.Org, rep.Org)
	}
	if opts.Org != "" && rep.Org != opts.Org {
		return nil, bad("certificate", 0, "checkpoint key certified by %q, want %q", rep.Org, opts.Org)
	}
	for _, k := range opts.Keys {
		v, err := note.NewVerifier(k)
		if err != nil {
			return nil, &VerifyError{What: "certificate", Reason: "bad trusted key", Err: err}
		}
		verifiers = append(verifiers, v)
	}
	if len(verifiers) == 0 {
		return nil, bad("certificate", 0, "no certified or trusted checkpoint key")
	}
	parse := func(text []byte) (CheckpointBody, *note.Note, error) {
		var last error
		for _, v := range verifiers {
			cp, n, err := ParseCheckpoint(text, m.Origin, v, opts.Witnesses...)
			if err == nil {
				// Signatures must be encoded canonically, so that a
				// bundle's bytes are exactly what was signed.
				for _, sig := range append(append([]note.Signature(nil), n.Sigs...), n.UnverifiedSigs...) {
					raw, err := base64.StdEncoding.DecodeString(sig.Base64)
					if err != nil || base64.StdEncoding.EncodeToString(raw) != sig.Base64 {
						return CheckpointBody{}, nil, fmt.Errorf("signature of %s is not canonical base64", sig.Name)
					}
				}
				return cp, n, nil
			}
			last = err
		}
		return CheckpointBody{}, nil, last
	}

	// Checkpoints.
	if b, err = expect(memberCheckpoints); err != nil {
		return nil, err
	}
	items, err := unframe(b, 1<<20)
	if err != nil {
		return nil, &VerifyError{What: "checkpoint", Reason: "malformed list", Err: err}
	}
	var cps []bundleCheckpoint
	for _, text := range items {
		cp, n, err := parse(text)
		if err != nil {
			return nil, &VerifyError{What: "checkpoint", Index: sizeOfBody([]byte(text)), Reason: "does not verify", Err: err}
		}
		if len(n.Sigs) != 1 || len(n.UnverifiedSigs) != 0 {
			return nil, bad("checkpoint", cp.Size, "carries signatures other than the log's (cosigned checkpoints go in %s)", memberCosigned)
		}
		if len(cps) > 0 && cp.Size <= cps[len(cps)-1].body.Size {
			return nil, bad("checkpoint", cp.Size, "out of order")
		}
		cps = append(cps, bundleCheckpoint{body: cp, text: text})
	}
	if len(cps) == 0 || len(cps) != m.Checkpoints {
		return nil, bad("manifest", 0, "%d checkpoints listed, %d present", m.Checkpoints, len(cps))
	}
	last := cps[len(cps)-1].body
	if last.Size != m.Size || last.Root != rep.Root {
		return nil, bad("manifest", 0, "size and root differ from the last checkpoint's")
	}
	rep.Checkpoints = len(cps)
	want := make(map[uint64][32]byte, len(cps)+len(opts.Anchors))
	whatAt := map[uint64]string{}
	for _, c := range cps {
		want[c.body.Size] = c.body.Root
		whatAt[c.body.Size] = "checkpoint"
	}
	for i, a := range opts.Anchors {
		cp, _, err := parse(a)
		if err != nil {
			return nil, &VerifyError{What: "anchor", Index: sizeOfBody(a), Reason: fmt.Sprintf("anchor %d of %d does not verify", i+1, len(opts.Anchors)), Err: err}
		}
		if cp.Size > m.Size {
			return nil, bad("anchor", cp.Size, "beyond the bundle's size %d", m.Size)
		}
		if r, ok := want[cp.Size]; ok && r != cp.Root {
			return nil, bad("anchor", cp.Size, "the log signed two different roots for this size")
		}
		want[cp.Size] = cp.Root
		if _, ok := whatAt[cp.Size]; !ok {
			whatAt[cp.Size] = "anchor"
		}
	}
	rep.Anchors = len(opts.Anchors)
	if r, ok := want[0]; ok && r != emptyRoot {
		return nil, bad(whatAt[0], 0, "root of the empty tree is wrong")
	}

	// Entries, scanned in parallel (scan.go) and checked in order.
	sc := newScanner()
	var (
		name   string
		r      io.Reader
		size   int64
		files  int
		lastAt uint64 // the last size at which a root was checked
		wantAt []uint64
		wi     int // wantAt[wi] is the next wanted size above sc.n
	)
	for s := range want {
		wantAt = append(wantAt, s)
	}
	slices.Sort(wantAt)
	produce := func(emit func(*scanBatch) bool) error {
		var next uint64
		var lenb [4]byte
		b := &scanBatch{}
		flush := func(stop error) bool {
			b.stop = stop
			ok := emit(b)
			b = &scanBatch{first: next, buf: make([]byte, 0, len(b.buf))}
			return ok && stop == nil
		}
		for {
			var err error
			name, r, size, err = ms.next()
			if err != nil {
				flush(&VerifyError{What: "archive", Reason: "reading entries", Err: err})
				return nil
			}
			if !strings.HasPrefix(name, memberEntries) {
				break
			}
			files++
			first, perr := strconv.ParseUint(strings.TrimPrefix(name, memberEntries), 10, 64)
			if perr != nil || name != fmt.Sprintf("%s%020d", memberEntries, first) || first != next {
				flush(bad("archive", 0, "entries file %q out of place (next entry is %d)", name, next))
				return nil
			}
			lr := io.LimitReader(r, size)
			for size > 0 {
				if _, err := io.ReadFull(lr, lenb[:]); err != nil {
					flush(bad("entry", next, "truncated length"))
					return nil
				}
				n := binary.BigEndian.Uint32(lenb[:])
				size -= 4
				if int64(n) > size || n > maxEntryLen {
					flush(bad("entry", next, "length %d exceeds the file", n))
					return nil
				}
				if next >= m.Size {
					flush(bad("entry", next, "beyond the bundle's size %d", m.Size))
					return nil
				}
				l := len(b.buf)
				b.buf = slices.Grow(b.buf, int(n))[:l+int(n)]
				if _, err := io.ReadFull(lr, b.buf[l:]); err != nil {
					flush(bad("entry", next, "truncated"))
					return nil
				}
				size -= int64(n)
				b.ends = append(b.ends, len(b.buf))
				next++
				if k := len(b.ends); k == scanBatchEntries ||
					(len(b.buf) >= scanBatchBytes && (next%tileWidth == 0 || len(b.buf) >= 4*scanBatchBytes)) {
					if !flush(nil) {
						return nil
					}
				}
			}
		}
		flush(nil)
		return nil
	}
	consume := func(b *scanBatch) error {
		for j := 0; j < b.len(); j++ {
			if j == b.errAt {
				return sc.malformed(b.err)
			}
			e := &b.ents[j]
			// A group of 256 goes into the tree whole when no root is
			// wanted inside it.
			whole := false
			if k := b.group(j); k >= 0 {
				for wi < len(wantAt) && wantAt[wi] <= sc.n {
					wi++
				}
				whole = wi == len(wantAt) || wantAt[wi] >= sc.n+tileWidth
				if whole {
					if err := sc.addGroup(b.ents[j:j+tileWidth], b.leaves[j:j+tileWidth], b.roots[k], j, b.hookAt, b.hookErr); err != nil {
						return err
					}
					for _, x := range b.ents[j : j+tileWidth] {
						rep.Kinds[x.Kind]++
					}
					j += tileWidth - 1
				}
			}
			if !whole {
				if err := sc.add(e, b.leaves[j]); err != nil {
					return err
				}
				if j == b.hookAt {
					return &VerifyError{What: "entry", Index: e.Index, Reason: "body does not verify", Err: b.hookErr}
				}
				rep.Kinds[e.Kind]++
			}
			if root, ok := want[sc.n]; ok {
				sc.checkRoot(root, whatAt[sc.n], lastAt)
				lastAt = sc.n
			}
		}
		return b.stop
	}
	if err := runScan(scanOpts{hook: opts.VerifyEntry}, produce, consume); err != nil {
		return nil, err
	}
	if err := sc.finish(); err != nil {
		return nil, err
	}
	if files != m.EntryFiles {
		return nil, bad("manifest", 0, "%d entries files listed, %d present", m.EntryFiles, files)
	}
	if sc.n != m.Size {
		return nil, bad("entry", sc.n, "missing: the bundle ends at %d of %d entries", sc.n, m.Size)
	}

	// Proofs.
	if name != memberProofs {
		return nil, bad("archive", 0, "member %q where %q belongs", name, memberProofs)
	}
	if b, err = readSmall(r, size); err != nil {
		return nil, &VerifyError{What: "archive", Reason: "reading proofs", Err: err}
	}
	for i, c := range cps[:len(cps)-1] {
		if len(b) < 10 {
			return nil, bad("proof", c.body.Size, "missing")
		}
		s, n := binary.BigEndian.Uint64(b), int(binary.BigEndian.Uint16(b[8:]))
		b = b[10:]
		if s != c.body.Size || len(b) < 32*n {
			return nil, bad("proof", c.body.Size, "malformed (proof %d)", i)
		}
		p := make([][]byte, n)
		for j := range p {
			p[j] = b[32*j : 32*j+32]
		}
		b = b[32*n:]
		if err := VerifyConsistency(c.body.Size, last.Size, p, c.body.Root, last.Root); err != nil {
			return nil, &VerifyError{What: "proof", Index: c.body.Size, Reason: "does not verify", Err: err}
		}
	}
	if len(b) != 0 {
		return nil, bad("proof", 0, "%d trailing bytes", len(b))
	}

	// Cosigned checkpoints and extra files.
	for {
		name, r, size, err = ms.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, &VerifyError{What: "archive", Reason: "reading", Err: err}
		}
		switch {
		case name == memberCosigned && rep.Cosigned == 0 && len(rep.Extra) == 0:
			b, err := readSmall(r, size)
			if err != nil {
				return nil, &VerifyError{What: "archive", Reason: "reading cosigned", Err: err}
			}
			items, err := unframe(b, 1<<20)
			if err != nil || len(items) == 0 {
				return nil, bad("cosigned", 0, "malformed list")
			}
			for i, text := range items {
				cp, n, err := parse(text)
				if err != nil {
					return nil, &VerifyError{What: "cosigned", Index: uint64(i), Reason: "does not verify", Err: err}
				}
				root, ok := sc.rootAt(cp.Size)
				if !ok || root != cp.Root {
					return nil, bad("cosigned", uint64(i), "root for size %d does not match the entries", cp.Size)
				}
				rep.Cosigned++
				for _, s := range n.Sigs {
					if s.Name != m.Origin {
						rep.Cosignatures++
					}
				}
			}
		case strings.HasPrefix(name, memberExtra) && len(name) > len(memberExtra):
			if len(rep.Extra) > 0 && name <= memberExtra+rep.Extra[len(rep.Extra)-1] {
				return nil, bad("archive", 0, "extra file %q out of order", name)
			}
			rep.Extra = append(rep.Extra, strings.TrimPrefix(name, memberExtra))
		default:
			return nil, bad("archive", 0, "unexpected member %q", name)
		}
	}
	return rep, nil
}

// scanner checks entries in order: encoding, index, hash chain, and the
// Merkle root, keeping roots at the sizes asked for later. A broken link
// or a root mismatch is judged one entry later, so that the entry named is
// the changed one: if entry i's PrevHash is not the hash of entry i-1 but
// entry i+1 vouches for entry i, entry i-1 is the one that changed.
type scanner struct {
	n    uint64
	prev [32]byte
	rng  *compact.Range
	// roots remembers the roots computed so far at the sizes of interest.
	roots map[uint64][32]byte
	// linkBroken: entry n-1's PrevHash is not the hash of entry n-2.
	linkBroken bool
	// rootErr is a root mismatch at size n, reported unless entry n
	// reveals a changed entry first.
	rootErr error
}

func newScanner() *scanner {
	return &scanner{rng: rangeFactory.NewEmptyRange(0), roots: map[uint64][32]byte{0: emptyRoot}}
}

func (s *scanner) linkError(next *Entry) error {
	i := s.n - 1
	if next != nil && next.PrevHash == s.prev && i > 0 {
		return &VerifyError{What: "entry", Index: i - 1, Reason: fmt.Sprintf("changed: its hash differs from the prev hash that entry %d records", i)}
	}
	return &VerifyError{What: "entry", Index: i, Reason: fmt.Sprintf("prev hash does not match entry %d", int64(i)-1)}
}

// malformed reports an entry that does not decode.
func (s *scanner) malformed(err error) error {
	if s.linkBroken {
		return s.linkError(nil)
	}
	return &VerifyError{What: "entry", Index: s.n, Reason: "malformed", Err: err}
}

// checkLink checks that e is the next entry and chains to the previous one.
// A broken link is remembered (the error names it once the tail is known).
func (s *scanner) checkLink(e *Entry) error {
	if e.Index != s.n {
		if s.linkBroken {
			return s.linkError(nil)
		}
		return &VerifyError{What: "entry", Index: s.n, Reason: fmt.Sprintf("holds index %d: entries are missing, added or out of order", e.Index)}
	}
	if s.linkBroken {
		return s.linkError(e)
	}
	if e.PrevHash != s.prev {
		s.linkBroken, s.rootErr = true, nil
	} else if s.rootErr != nil {
		return s.rootErr
	}
	return nil
}

// add checks the next entry, decoded, with its leaf hash.
func (s *scanner) add(e *Entry, h [32]byte) error {
	if err := s.checkLink(e); err != nil {
		return err
	}
	s.rng.Append(bytes.Clone(h[:]), nil)
	s.prev = h
	s.n++
	return nil
}

// addGroup checks 256 entries starting at a multiple of 256 and adds them
// to the tree by their root. hookAt is the batch position of the first entry
// the hook rejected, j that of the group's first entry.
func (s *scanner) addGroup(es []Entry, leaves [][32]byte, root [32]byte, j, hookAt int, hookErr error) error {
	start := s.n
	for k := range es {
		e := &es[k]
		if err := s.checkLink(e); err != nil {
			return err
		}
		if j+k == hookAt {
			return &VerifyError{What: "entry", Index: e.Index, Reason: "body does not verify", Err: hookErr}
		}
		s.prev = leaves[k]
		s.n++
	}
	other, _ := rangeFactory.NewRange(start, start+tileWidth, [][]byte{bytes.Clone(root[:])})
	return s.rng.AppendRange(other, nil)
}

// checkRoot compares the root of the entries so far with want; a mismatch
// is reported by the next add or by finish.
func (s *scanner) checkRoot(want [32]byte, what string, from uint64) {
	if s.root() != want && !s.linkBroken {
		reason := fmt.Sprintf("root does not match entries [%d, %d)", from, s.n)
		if what == "anchor" {
			reason = "root differs from the bundle's: the log signed two different roots for this size"
		}
		s.rootErr = &VerifyError{What: what, Index: s.n, Reason: reason}
	}
}

// finish reports what is still pending after the last entry.
func (s *scanner) finish() error {
	if s.linkBroken {
		return s.linkError(nil)
	}
	return s.rootErr
}

// root returns the root of the entries added so far, and remembers it.
func (s *scanner) root() [32]byte {
	if r, ok := s.roots[s.n]; ok {
		return r
	}
	var out [32]byte
	r, _ := s.rng.GetRootHash(nil)
	copy(out[:], r)
	s.roots[s.n] = out
	return out
}

// rootAt returns a root computed earlier (or the current one).
func (s *scanner) rootAt(size uint64) ([32]byte, bool) {
	if size == s.n {
		return s.root(), true
	}
	r, ok := s.roots[size]
	return r, ok
}
