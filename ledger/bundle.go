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
