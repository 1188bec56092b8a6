package ledger

import "encoding/binary"

// Key layout of the Pebble store. Every key starts with one byte naming its
// space; integers are big-endian so that keys sort in index order.
//
//	"\x00format"                      format version (uint32)
//	"\x00ackfile"                     present once the store has an acknowledged-size file (acked.go)
//	"T"                               tree head: size, tip, root (tree.go)
//	"e" index                         entry encoding
//	"t" level(1) index(8)             full tile (tree.go)
//	"c" size                          checkpoint at that size (checkpoint.go)
//	"k" vkey                          key certificate for a checkpoint key (JSON)
//	"i" "c" len(2) commitment index   index: entries by commitment id
//	"i" "s" len(2) session index      index: entries by session id
//	"i" "k" kind(2) index             index: entries by kind
const (
	prefixEntry      = 'e'
	prefixTile       = 't'
	prefixCheckpoint = 'c'
	prefixCert       = 'k'
	prefixIndex      = 'i'
	idxCommitment    = 'c'
	idxSession       = 's'
	idxKind          = 'k'
)

var (
	keyFormat  = []byte("\x00format")
	keyAckFile = []byte("\x00ackfile")
	keyTree    = []byte("T")
)

// FormatVersion is the store format this build writes. Open refuses a store
// with a higher version (ErrFormatTooNew).
const FormatVersion = 1

func entryKey(i uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixEntry}, i)
}

func appendEntryKey(b []byte, i uint64) []byte {
	return binary.BigEndian.AppendUint64(append(b, prefixEntry), i)
}

func tileKey(level uint8, index uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixTile, level}, index)
}

func checkpointKey(size uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixCheckpoint}, size)
}

func certKey(vkey string) []byte {
	return append([]byte{prefixCert}, vkey...)
}

// idPrefix returns the index prefix for one commitment or session id.
func idPrefix(space byte, id string) []byte {
	b := make([]byte, 0, 4+len(id)+8)
	b = append(b, prefixIndex, space)
	b = binary.BigEndian.AppendUint16(b, uint16(len(id)))
	return append(b, id...)
}

func appendIDIndexKey(b []byte, space byte, id string, i uint64) []byte {
	b = append(b, prefixIndex, space)
	b = binary.BigEndian.AppendUint16(b, uint16(len(id)))
	b = append(b, id...)
	return binary.BigEndian.AppendUint64(b, i)
}

func kindPrefix(k Kind) []byte {
	return binary.BigEndian.AppendUint16([]byte{prefixIndex, idxKind}, uint16(k))
}

func appendKindIndexKey(b []byte, k Kind, i uint64) []byte {
	b = append(b, prefixIndex, idxKind)
	b = binary.BigEndian.AppendUint16(b, uint16(k))
	return binary.BigEndian.AppendUint64(b, i)
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}
