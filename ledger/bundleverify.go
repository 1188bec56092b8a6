package ledger

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

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
// checkpoint, certificate…). It is NewBundleVerifier(opts).Verify(path).
func VerifyBundle(path string, opts VerifyOptions) (*BundleReport, error) {
	return NewBundleVerifier(opts).Verify(path)
}

// VerifyBundleReader verifies a bundle read as a tar stream from r.
func VerifyBundleReader(r io.Reader, opts VerifyOptions) (*BundleReport, error) {
	return NewBundleVerifier(opts).VerifyReader(r)
}

// BundleVerifier checks a bundle member by member, in the bundle's order,
// each member by its own method (manifest, certificates, checkpoints and
// anchors, entries, proofs, cosigned, extra) against what the members
// before it established. It reads only the bundle: no store, no network.
// One verifier checks one bundle at a time; Verify and VerifyReader start
// afresh on each call.
//
// What each stage stops: the certificates bind the checkpoint key to the
// organization (a forger without the organization's key cannot certify
// one); the checkpoints' signatures bind sizes to roots (a forger without
// the checkpoint key cannot re-sign a changed log); the entries must
// hash, link and reproduce every signed and anchored root (a changed,
// dropped, added or reordered entry changes a root); the proofs show each
// checkpoint is a prefix of the last (no fork hidden between them);
// anchors held elsewhere expose a log that signed two roots for one size.
type BundleVerifier struct {
	opts VerifyOptions

	rep       *BundleReport
	m         manifest
	verifiers []note.Verifier
	cps       []bundleCheckpoint
	// want holds the root each checkpoint and anchor gives for its size;
	// whatAt says which of them set it.
	want   map[uint64][32]byte
	whatAt map[uint64]string
	sc     *scanner
	files  int // entries files read
}

// NewBundleVerifier returns a verifier checking bundles under opts.
func NewBundleVerifier(opts VerifyOptions) *BundleVerifier {
	return &BundleVerifier{opts: opts}
}

// Verify verifies the bundle at path: a tar archive, or a directory it was
// extracted into.
func (v *BundleVerifier) Verify(path string) (*BundleReport, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, &VerifyError{What: "archive", Reason: "cannot read", Err: err}
	}
	if fi.IsDir() {
		return v.verify(&dirMembers{dir: path})
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &VerifyError{What: "archive", Reason: "cannot read", Err: err}
	}
	defer f.Close()
	return v.VerifyReader(bufio.NewReaderSize(f, 1<<20))
}

// VerifyReader verifies a bundle read as a tar stream from r.
func (v *BundleVerifier) VerifyReader(r io.Reader) (*BundleReport, error) {
	return v.verify(&tarMembers{tr: tar.NewReader(r)})
}

type bundleCheckpoint struct {
	body CheckpointBody
	text []byte
}

// bundleMember is one file of a bundle as members.next yields it.
type bundleMember struct {
	name string
	r    io.Reader
	size int64
}

// badMember is a *VerifyError for bundle content that is wrong.
func badMember(what string, idx uint64, format string, args ...any) error {
	return &VerifyError{What: what, Index: idx, Reason: fmt.Sprintf(format, args...)}
}

// expect reads the next member, which must be want, whole.
func expect(ms members, want string) ([]byte, error) {
	name, r, size, err := ms.next()
	if err != nil {
		return nil, &VerifyError{What: "archive", Reason: "reading " + want, Err: err}
	}
	if name != want {
		return nil, badMember("archive", 0, "member %q where %q belongs", name, want)
	}
	b, err := readSmall(r, size)
	if err != nil {
		return nil, &VerifyError{What: "archive", Reason: "reading " + want, Err: err}
	}
	return b, nil
}

// verify runs the stages over the members in order; the first error ends it.
func (v *BundleVerifier) verify(ms members) (*BundleReport, error) {
	defer ms.close()
	*v = BundleVerifier{opts: v.opts, rep: &BundleReport{Kinds: map[Kind]uint64{}}}
	b, err := expect(ms, memberManifest)
	if err != nil {
		return nil, err
	}
	if err := v.manifest(b); err != nil {
		return nil, err
	}
	if b, err = expect(ms, memberCertificates); err != nil {
		return nil, err
	}
	if err := v.certificates(b); err != nil {
		return nil, err
	}
	if b, err = expect(ms, memberCheckpoints); err != nil {
		return nil, err
	}
	if err := v.checkpoints(b); err != nil {
		return nil, err
	}
	if err := v.anchors(); err != nil {
		return nil, err
	}
	next, err := v.entries(ms)
	if err != nil {
		return nil, err
	}
	if err := v.proofs(next); err != nil {
		return nil, err
	}
	if err := v.trailer(ms); err != nil {
		return nil, err
	}
	return v.rep, nil
}

// manifest checks manifest.json: the format, origin and final root.
func (v *BundleVerifier) manifest(b []byte) error {
	m := &v.m
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(m); err != nil {
		return &VerifyError{What: "manifest", Reason: "malformed", Err: err}
	}
	if m.Format != BundleFormat {
		return badMember("manifest", 0, "format %q, want %q", m.Format, BundleFormat)
	}
	if err := validOrigin(m.Origin); err != nil {
		return badMember("manifest", 0, "%v", err)
	}
	mroot, err := base64.StdEncoding.DecodeString(m.Root)
	if err != nil || len(mroot) != 32 {
		return badMember("manifest", 0, "root is not a base64 SHA-256 hash")
	}
	v.rep.Origin, v.rep.Size = m.Origin, m.Size
	copy(v.rep.Root[:], mroot)
	return nil
}

// certificates checks certificates.json and collects the checkpoint
// verifiers: those the certificates give and the trusted opts.Keys.
func (v *BundleVerifier) certificates(b []byte) error {
	rep, m := v.rep, &v.m
	var certs []*KeyCertificate
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&certs); err != nil {
		return &VerifyError{What: "certificate", Reason: "malformed", Err: err}
	}
	for i, c := range certs {
		if c == nil {
			return badMember("certificate", uint64(i), "null")
		}
		if err := c.Verify(); err != nil {
			return &VerifyError{What: "certificate", Index: uint64(i), Reason: "does not verify", Err: err}
		}
		if c.Origin != m.Origin {
			return badMember("certificate", uint64(i), "for origin %q, bundle origin %q", c.Origin, m.Origin)
		}
		if rep.Org == "" {
			rep.Org = c.Org
		} else if c.Org != rep.Org {
			return badMember("certificate", uint64(i), "certified by %s and %s", rep.Org, c.Org)
		}
		cv, _ := c.Verifier()
		v.verifiers = append(v.verifiers, cv)
	}
	if m.Org != rep.Org {
		return badMember("manifest", 0, "org %q, certificates say %q", m.Org, rep.Org)
	}
	if v.opts.Org != "" && rep.Org != v.opts.Org {
		return badMember("certificate", 0, "checkpoint key certified by %q, want %q", rep.Org, v.opts.Org)
	}
	for _, k := range v.opts.Keys {
		kv, err := note.NewVerifier(k)
		if err != nil {
			return &VerifyError{What: "certificate", Reason: "bad trusted key", Err: err}
		}
		v.verifiers = append(v.verifiers, kv)
	}
	if len(v.verifiers) == 0 {
		return badMember("certificate", 0, "no certified or trusted checkpoint key")
	}
	return nil
}

// parse verifies a checkpoint of this log by any of the verifiers.
func (v *BundleVerifier) parse(text []byte) (CheckpointBody, *note.Note, error) {
	var last error
	for _, cv := range v.verifiers {
		cp, n, err := ParseCheckpoint(text, v.m.Origin, cv, v.opts.Witnesses...)
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

// checkpoints checks the checkpoints member: signed by the log alone, in
// increasing size, the last one the manifest's.
func (v *BundleVerifier) checkpoints(b []byte) error {
	m := &v.m
	items, err := unframe(b, 1<<20)
	if err != nil {
		return &VerifyError{What: "checkpoint", Reason: "malformed list", Err: err}
	}
	cps := v.cps
	for _, text := range items {
		cp, n, err := v.parse(text)
		if err != nil {
			return &VerifyError{What: "checkpoint", Index: sizeOfBody([]byte(text)), Reason: "does not verify", Err: err}
		}
		if len(n.Sigs) != 1 || len(n.UnverifiedSigs) != 0 {
			return badMember("checkpoint", cp.Size, "carries signatures other than the log's (cosigned checkpoints go in %s)", memberCosigned)
		}
		if len(cps) > 0 && cp.Size <= cps[len(cps)-1].body.Size {
			return badMember("checkpoint", cp.Size, "out of order")
		}
		cps = append(cps, bundleCheckpoint{body: cp, text: text})
	}
	v.cps = cps
	if len(cps) == 0 || len(cps) != m.Checkpoints {
		return badMember("manifest", 0, "%d checkpoints listed, %d present", m.Checkpoints, len(cps))
	}
	last := cps[len(cps)-1].body
	if last.Size != m.Size || last.Root != v.rep.Root {
		return badMember("manifest", 0, "size and root differ from the last checkpoint's")
	}
	v.rep.Checkpoints = len(cps)
	v.want = make(map[uint64][32]byte, len(cps)+len(v.opts.Anchors))
	v.whatAt = map[uint64]string{}
	for _, c := range cps {
		v.want[c.body.Size] = c.body.Root
		v.whatAt[c.body.Size] = "checkpoint"
	}
	return nil
}

// anchors checks opts.Anchors and adds their roots to those the entries
// must give.
func (v *BundleVerifier) anchors() error {
	for i, a := range v.opts.Anchors {
		cp, _, err := v.parse(a)
		if err != nil {
			return &VerifyError{What: "anchor", Index: sizeOfBody(a), Reason: fmt.Sprintf("anchor %d of %d does not verify", i+1, len(v.opts.Anchors)), Err: err}
		}
		if cp.Size > v.m.Size {
			return badMember("anchor", cp.Size, "beyond the bundle's size %d", v.m.Size)
		}
		if r, ok := v.want[cp.Size]; ok && r != cp.Root {
			return badMember("anchor", cp.Size, "the log signed two different roots for this size")
		}
		v.want[cp.Size] = cp.Root
		if _, ok := v.whatAt[cp.Size]; !ok {
			v.whatAt[cp.Size] = "anchor"
		}
	}
	v.rep.Anchors = len(v.opts.Anchors)
	if r, ok := v.want[0]; ok && r != emptyRoot {
		return badMember(v.whatAt[0], 0, "root of the empty tree is wrong")
	}
	return nil
}

// entries checks the entries files, scanned in parallel (scan.go) and
// checked in order: each entry's encoding, index and link, the roots at
// every checkpoint and anchor, and opts.VerifyEntry. It returns the member
// after the last entries file.
func (v *BundleVerifier) entries(ms members) (bundleMember, error) {
	m, rep := &v.m, v.rep
	v.sc = newScanner()
	sc := v.sc
	var (
		after  bundleMember
		lastAt uint64 // the last size at which a root was checked
		wantAt []uint64
		wi     int // wantAt[wi] is the next wanted size above sc.n
	)
	for s := range v.want {
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
			name, r, size, err := ms.next()
			after = bundleMember{name, r, size}
			if err != nil {
				flush(&VerifyError{What: "archive", Reason: "reading entries", Err: err})
				return nil
			}
			if !strings.HasPrefix(name, memberEntries) {
				break
			}
			v.files++
			first, perr := strconv.ParseUint(strings.TrimPrefix(name, memberEntries), 10, 64)
			if perr != nil || name != fmt.Sprintf("%s%020d", memberEntries, first) || first != next {
				flush(badMember("archive", 0, "entries file %q out of place (next entry is %d)", name, next))
				return nil
			}
			lr := io.LimitReader(r, size)
			for size > 0 {
				if _, err := io.ReadFull(lr, lenb[:]); err != nil {
					flush(badMember("entry", next, "truncated length"))
					return nil
				}
				n := binary.BigEndian.Uint32(lenb[:])
				size -= 4
				if int64(n) > size || n > maxEntryLen {
					flush(badMember("entry", next, "length %d exceeds the file", n))
					return nil
				}
				if next >= m.Size {
					flush(badMember("entry", next, "beyond the bundle's size %d", m.Size))
					return nil
				}
				l := len(b.buf)
				b.buf = slices.Grow(b.buf, int(n))[:l+int(n)]
				if _, err := io.ReadFull(lr, b.buf[l:]); err != nil {
					flush(badMember("entry", next, "truncated"))
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
			if root, ok := v.want[sc.n]; ok {
				sc.checkRoot(root, v.whatAt[sc.n], lastAt)
				lastAt = sc.n
			}
		}
		return b.stop
	}
	if err := runScan(scanOpts{hook: v.opts.VerifyEntry}, produce, consume); err != nil {
		return bundleMember{}, err
	}
	if err := sc.finish(); err != nil {
		return bundleMember{}, err
	}
	if v.files != m.EntryFiles {
		return bundleMember{}, badMember("manifest", 0, "%d entries files listed, %d present", m.EntryFiles, v.files)
	}
	if sc.n != m.Size {
		return bundleMember{}, badMember("entry", sc.n, "missing: the bundle ends at %d of %d entries", sc.n, m.Size)
	}
	return after, nil
}

// proofs checks the proofs member: a consistency proof from each
// checkpoint but the last to the last.
func (v *BundleVerifier) proofs(p bundleMember) error {
	if p.name != memberProofs {
		return badMember("archive", 0, "member %q where %q belongs", p.name, memberProofs)
	}
	b, err := readSmall(p.r, p.size)
	if err != nil {
		return &VerifyError{What: "archive", Reason: "reading proofs", Err: err}
	}
	cps := v.cps
	last := cps[len(cps)-1].body
	for i, c := range cps[:len(cps)-1] {
		if len(b) < 10 {
			return badMember("proof", c.body.Size, "missing")
		}
		s, n := binary.BigEndian.Uint64(b), int(binary.BigEndian.Uint16(b[8:]))
		b = b[10:]
		if s != c.body.Size || len(b) < 32*n {
			return badMember("proof", c.body.Size, "malformed (proof %d)", i)
		}
		p := make([][]byte, n)
		for j := range p {
			p[j] = b[32*j : 32*j+32]
		}
		b = b[32*n:]
		if err := VerifyConsistency(c.body.Size, last.Size, p, c.body.Root, last.Root); err != nil {
			return &VerifyError{What: "proof", Index: c.body.Size, Reason: "does not verify", Err: err}
		}
	}
	if len(b) != 0 {
		return badMember("proof", 0, "%d trailing bytes", len(b))
	}
	return nil
}

// trailer reads what follows the proofs: at most one cosigned member,
// then extra files in name order.
func (v *BundleVerifier) trailer(ms members) error {
	rep := v.rep
	for {
		name, r, size, err := ms.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return &VerifyError{What: "archive", Reason: "reading", Err: err}
		}
		switch {
		case name == memberCosigned && rep.Cosigned == 0 && len(rep.Extra) == 0:
			b, err := readSmall(r, size)
			if err != nil {
				return &VerifyError{What: "archive", Reason: "reading cosigned", Err: err}
			}
			if err := v.cosigned(b); err != nil {
				return err
			}
		case strings.HasPrefix(name, memberExtra) && len(name) > len(memberExtra):
			if err := v.extra(name); err != nil {
				return err
			}
		default:
			return badMember("archive", 0, "unexpected member %q", name)
		}
	}
}

// cosigned checks the cosigned member: checkpoints of this log whose roots
// match the entries, counting the witnesses' cosignatures that verify.
func (v *BundleVerifier) cosigned(b []byte) error {
	items, err := unframe(b, 1<<20)
	if err != nil || len(items) == 0 {
		return badMember("cosigned", 0, "malformed list")
	}
	for i, text := range items {
		cp, n, err := v.parse(text)
		if err != nil {
			return &VerifyError{What: "cosigned", Index: uint64(i), Reason: "does not verify", Err: err}
		}
		root, ok := v.sc.rootAt(cp.Size)
		if !ok || root != cp.Root {
			return badMember("cosigned", uint64(i), "root for size %d does not match the entries", cp.Size)
		}
		v.rep.Cosigned++
		for _, s := range n.Sigs {
			if s.Name != v.m.Origin {
				v.rep.Cosignatures++
			}
		}
	}
	return nil
}

// extra lists an extra file (not verified); they come in name order.
func (v *BundleVerifier) extra(name string) error {
	rep := v.rep
	if len(rep.Extra) > 0 && name <= memberExtra+rep.Extra[len(rep.Extra)-1] {
		return badMember("archive", 0, "extra file %q out of order", name)
	}
	rep.Extra = append(rep.Extra, strings.TrimPrefix(name, memberExtra))
	return nil
}
