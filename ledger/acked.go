package ledger

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// The acknowledged size.
//
// Pebble treats a damaged record in its newest write-ahead log as the torn
// tail of a crash and drops it with everything after it: a store whose
// newest log was damaged opens as an older, self-consistent ledger. Every
// hash and root checks out, and checkpoints this ledger signed for larger
// sizes (held by counterparties in their receipts) are silently gone from
// it. The ledger therefore keeps, outside Pebble, the largest size it has
// vouched for: the file AckFile in its directory holds {size, root} of the
// latest checkpoint intent (synced before any signature exists) or of the
// ledger at its last clean Close. Open refuses a store smaller than that
// (a *RolledBackError), or of that size with another root.
//
// The file has two 512-byte slots, each one record
//
//	"asp-ledger-ack/1" seq(8) size(8) root(32) crc32c(4)
//
// written alternately in place and synced (fdatasync; the file's length
// never changes), so that a torn write leaves the other slot, one step
// older, intact. The record with the highest seq and a good checksum counts.
//
// Who could forge it: anyone who can write the ledger directory can also
// rewrite the store, so the record guards against damage and mistakes
// (a torn disk, a restored old backup), not against the machine's
// administrator; against that, counterparties hold this ledger's signed
// checkpoints. Deleting the file does not disable the check once a store
// has one: the store records that it has (keyAckFile), and Open then
// refuses a store whose record is missing.

// AckFile is the name of the acknowledged-size record in a ledger directory.
const AckFile = "acknowledged"

const (
	ackMagic   = "asp-ledger-ack/1"
	ackSlot    = 512
	ackRecLen  = len(ackMagic) + 8 + 8 + 32 + 4
	ackFileLen = 2 * ackSlot
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ackRecord is one slot's contents.
type ackRecord struct {
	seq  uint64
	size uint64
	root [32]byte
}

func (r ackRecord) marshal() []byte {
	b := make([]byte, 0, ackRecLen)
	b = append(b, ackMagic...)
	b = binary.BigEndian.AppendUint64(b, r.seq)
	b = binary.BigEndian.AppendUint64(b, r.size)
	b = append(b, r.root[:]...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func parseAckRecord(b []byte) (ackRecord, bool) {
	if len(b) < ackRecLen || string(b[:len(ackMagic)]) != ackMagic {
		return ackRecord{}, false
	}
	b = b[:ackRecLen]
	if crc32.Checksum(b[:ackRecLen-4], castagnoli) != binary.BigEndian.Uint32(b[ackRecLen-4:]) {
		return ackRecord{}, false
	}
	var r ackRecord
	o := len(ackMagic)
	r.seq = binary.BigEndian.Uint64(b[o:])
	r.size = binary.BigEndian.Uint64(b[o+8:])
	copy(r.root[:], b[o+16:o+48])
	return r, true
}

// ackFile is the open acknowledged-size record.
type ackFile struct {
	mu  sync.Mutex
	f   vfs.File // nil for a read-only ledger
	cur ackRecord
}

// readAck reads the record in dir. It returns os.ErrNotExist (wrapped) if
// there is none, and a *CorruptionError if neither slot is intact.
func readAck(fs vfs.FS, dir string) (ackRecord, error) {
	f, err := fs.Open(fs.PathJoin(dir, AckFile))
	if err != nil {
		return ackRecord{}, err
	}
	defer f.Close()
	b := make([]byte, ackFileLen)
	n, err := f.ReadAt(b, 0)
	if err != nil && n < ackFileLen {
		if n == 0 {
			return ackRecord{}, corrupt("acknowledged", "%s is empty", AckFile)
		}
	}
	b = b[:n]
	var best ackRecord
	found := false
	for s := 0; s*ackSlot < len(b); s++ {
		if r, ok := parseAckRecord(b[s*ackSlot:]); ok && (!found || r.seq > best.seq) {
			best, found = r, true
		}
	}
	if !found {
		return ackRecord{}, corrupt("acknowledged", "neither record in %s is intact", AckFile)
	}
	return best, nil
}

// createAck writes a new record file holding r (seq 1) with write, sync
// and rename, syncs the directory, and opens it for updates.
func createAck(fs vfs.FS, dir string, size uint64, root [32]byte) (*ackFile, error) {
	r := ackRecord{seq: 1, size: size, root: root}
	// In the slot of its seq, as advance writes them: the first update
	// then goes to the other slot and leaves this one intact.
	b := make([]byte, ackFileLen)
	copy(b[int(r.seq%2)*ackSlot:], r.marshal())
	name := fs.PathJoin(dir, AckFile)
	tmp := name + ".tmp"
	f, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, err
	}
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fs.Rename(tmp, name)
	}
	if err == nil {
		err = syncDir(fs, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("record acknowledged size: %w", err)
	}
	return openAck(fs, dir, r)
}

func openAck(fs vfs.FS, dir string, cur ackRecord) (*ackFile, error) {
	f, err := fs.OpenReadWrite(fs.PathJoin(dir, AckFile), vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, fmt.Errorf("open acknowledged size: %w", err)
	}
	return &ackFile{f: f, cur: cur}, nil
}

func syncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// advance records {size, root} if size is larger than the recorded size
// (or whatever it is, with reset), durably, before returning.
func (a *ackFile) advance(size uint64, root [32]byte, reset bool) error {
	if a == nil {
		return nil // Open failed before the record was opened
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return errors.New("acknowledged size: read-only")
	}
	if !reset && size <= a.cur.size {
		return nil
	}
	r := ackRecord{seq: a.cur.seq + 1, size: size, root: root}
	if _, err := a.f.WriteAt(r.marshal(), int64(r.seq%2)*ackSlot); err != nil {
		return fmt.Errorf("record acknowledged size: %w", err)
	}
	if err := a.f.SyncData(); err != nil {
		return fmt.Errorf("record acknowledged size: %w", err)
	}
	a.cur = r
	return nil
}

func (a *ackFile) close() error {
	if a == nil || a.f == nil {
		return nil
	}
	return a.f.Close()
}

// ErrRolledBack is returned by Open for a store that holds fewer entries
// than the ledger acknowledged (a damaged write-ahead log, a restored older
// backup). Such errors are a *RolledBackError. Test with errors.Is.
var ErrRolledBack = errors.New("ledger: rolled back")

// RolledBackError says what a rolled-back store lost.
type RolledBackError struct {
	Dir string
	// Acknowledged is the size (and Root the root) the ledger acknowledged:
	// it signed a checkpoint intent for it, or closed cleanly at it.
	Acknowledged uint64
	Root         [32]byte
	// Found is the size (and FoundRoot the root) of the store as opened.
	Found     uint64
	FoundRoot [32]byte
	// Missing is set when the store says it had an acknowledged-size record
	// and the file is gone (Acknowledged is then unknown, 0).
	Missing bool
}

func (e *RolledBackError) Error() string {
	const fix = "restore the ledger directory from a backup that holds them (or a copy taken before the damage); " +
		"to start on this store anyway, run asp node --allow-rollback, which records the rollback in the ledger"
	if e.Missing {
		return fmt.Sprintf("ledger: rolled back: %s: the acknowledged-size record %s is missing, the store holds %d entries: %s",
			e.Dir, AckFile, e.Found, fix)
	}
	if e.Found == e.Acknowledged {
		return fmt.Sprintf("ledger: rolled back: %s: %d entries acknowledged with root %s, the store holds %d with root %s: %s",
			e.Dir, e.Acknowledged, hex.EncodeToString(e.Root[:8]), e.Found, hex.EncodeToString(e.FoundRoot[:8]), fix)
	}
	return fmt.Sprintf("ledger: rolled back: %s: %d entries acknowledged, the store holds %d (entries %d to %d lost): %s",
		e.Dir, e.Acknowledged, e.Found, e.Found, e.Acknowledged-1, fix)
}

// Is reports whether target is ErrRolledBack.
func (e *RolledBackError) Is(target error) bool { return target == ErrRolledBack }

// checkAck compares the opened store with the acknowledged-size record in
// dir and opens the record for updates (unless read-only). A store that
// has no record yet (new, or written by an older build) gets one at its
// current size. It returns the record and a *RolledBackError, if the store
// is below it.
func (l *Ledger) checkAck(dir string, fresh bool) (*ackFile, error) {
	fs := l.opts.FS
	st := l.mu.state
	rec, err := readAck(fs, dir)
	if errors.Is(err, os.ErrNotExist) {
		_, kerr := l.get(keyAckFile)
		switch {
		case kerr == nil:
			return nil, &RolledBackError{Dir: dir, Found: st.size, FoundRoot: st.root, Missing: true}
		case !errors.Is(kerr, ErrNotFound):
			return nil, kerr
		}
		if l.opts.ReadOnly {
			return &ackFile{cur: ackRecord{size: st.size, root: st.root}}, nil
		}
		if !fresh {
			l.log.Info("ledger: recording the acknowledged size for the first time", "dir", dir, "size", st.size)
		}
		a, err := createAck(fs, dir, st.size, st.root)
		if err != nil {
			return nil, err
		}
		if err := setRecovering(l.db, keyAckFile, []byte{1}, pebble.Sync); err != nil {
			a.close()
			return nil, err
		}
		return a, nil
	}
	if err != nil {
		return nil, err
	}
	verr := l.vouches(rec)
	var rb *RolledBackError
	if errors.As(verr, &rb) {
		rb.Dir = dir
	} else if verr != nil {
		return nil, verr
	}
	if l.opts.ReadOnly {
		return &ackFile{cur: rec}, verr
	}
	a, err := openAck(fs, dir, rec)
	if err != nil {
		return nil, err
	}
	return a, verr
}

// vouches checks that the store holds what rec acknowledged: at least
// rec.size entries, and, at that size, the root rec names (the tree head's,
// or the checkpoint record's for that size).
func (l *Ledger) vouches(rec ackRecord) error {
	st := l.mu.state
	rb := &RolledBackError{Acknowledged: rec.size, Root: rec.root, Found: st.size, FoundRoot: st.root}
	switch {
	case st.size < rec.size:
		return rb
	case st.size == rec.size:
		if st.root != rec.root {
			return rb
		}
	case rec.size > 0:
		v, err := l.get(checkpointKey(rec.size))
		if errors.Is(err, ErrNotFound) {
			// Acknowledged at a clean Close, not by a checkpoint: the
			// entries since are consistent with the tree head, which
			// Open checked.
			return nil
		}
		if err != nil {
			return err
		}
		cp, err := parseCheckpointRecord(rec.size, v)
		if err != nil {
			return err
		}
		if cp.root != rec.root {
			rb.FoundRoot = cp.root
			return rb
		}
	}
	return nil
}

// rollbackBody is the body of a KindRollback entry.
func rollbackBody(rb *RolledBackError) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "asp-ledger-rollback/v1\nacknowledged %d %s\nfound %d %s\n",
		rb.Acknowledged, hex.EncodeToString(rb.Root[:]), rb.Found, hex.EncodeToString(rb.FoundRoot[:]))
	return b.Bytes()
}
