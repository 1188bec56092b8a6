package ledger

import (
	"crypto/sha256"
	"runtime"
	"sync"
)

// A scan reads a run of entries in index order (from the store for Check,
// from a bundle for VerifyBundle) and checks them. The work that needs no
// order (decoding, leaf hashing, the 255 interior hashes of each full tile,
// the body hook) runs on all cores; the caller's goroutine then walks the
// results in order for what does (index, hash chain, tree, checkpoints).

const (
	scanBatchEntries = 4096    // entries per batch (a multiple of 256)
	scanBatchBytes   = 4 << 20 // encoded bytes after which a batch is cut
)

// scanBatch is a run of consecutive entries.
type scanBatch struct {
	first uint64
	buf   []byte // the encodings, concatenated
	ends  []int  // ends[j] is the end of entry first+j in buf
	// stop, if set, is what the producer found after the last entry (a
	// missing entry, say): the consumer reports it after the entries.
	stop error

	// Filled by a worker.
	ents    []Entry    // decoded; Body aliases buf
	leaves  [][32]byte // leaf hashes
	errAt   int        // first entry that does not decode (-1: none)
	err     error
	hookAt  int // first entry the hook rejected (-1: none)
	hookErr error
	// tiles[k] is the full tile of the k-th aligned group of 256 entries
	// wholly inside the batch (group start first+gOff+256k), with its root.
	gOff  int
	tiles [][]byte
	roots [][32]byte
	// stored[k] is the stored tile of the k-th aligned group (Check only,
	// set by the producer; nil if none).
	stored [][]byte

	ready chan struct{}
}

func (b *scanBatch) len() int { return len(b.ends) }

func (b *scanBatch) entry(j int) []byte {
	start := 0
	if j > 0 {
		start = b.ends[j-1]
	}
	return b.buf[start:b.ends[j]]
}

// group returns the index into tiles of the aligned group starting at entry
// j of the batch, or -1 if the batch does not hold that whole group.
func (b *scanBatch) group(j int) int {
	if j < b.gOff || (j-b.gOff)%tileWidth != 0 {
		return -1
	}
	k := (j - b.gOff) / tileWidth
	if k >= len(b.tiles) || b.tiles[k] == nil {
		return -1
	}
	return k
}

// scanOpts are the options of runScan.
type scanOpts struct {
	// hook is VerifyOptions.VerifyEntry; it runs on the workers.
	hook func(Entry) error
}

// runScan runs produce in its own goroutine, the workers, and consume in
// the caller's goroutine, batch by batch in order. produce calls emit for
// each batch and stops when emit returns false (the consumer failed). The
// first error of consume, or else of produce, is returned.
func runScan(o scanOpts, produce func(emit func(*scanBatch) bool) error, consume func(*scanBatch) error) error {
	workers := runtime.GOMAXPROCS(0)
	work := make(chan *scanBatch, workers)
	order := make(chan *scanBatch, 2*workers+2)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				b.process(o)
				close(b.ready)
			}
		}()
	}
	var perr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(order)
		defer close(work)
		perr = produce(func(b *scanBatch) bool {
			b.ready = make(chan struct{})
			select {
			case order <- b:
			case <-quit:
				return false
			}
			select {
			case work <- b:
				return true
			case <-quit:
				close(b.ready)
				return false
			}
		})
	}()
	var cerr error
	for b := range order {
		<-b.ready
		if cerr == nil {
			if cerr = consume(b); cerr != nil {
				close(quit)
			}
		}
	}
	wg.Wait()
	if cerr != nil {
		return cerr
	}
	return perr
}

// process decodes and hashes the batch's entries, runs the hook, and
// computes the full tiles of its aligned groups.
func (b *scanBatch) process(o scanOpts) {
	n := b.len()
	b.errAt, b.hookAt = -1, -1
	b.ents = make([]Entry, n)
	b.leaves = make([][32]byte, n)
	h := sha256.New()
	zero := []byte{0}
	for j := 0; j < n; j++ {
		enc := b.entry(j)
		e, err := DecodeEntry(enc)
		if err != nil {
			b.errAt, b.err = j, err
			n = j
			break
		}
		b.ents[j] = e
		h.Reset()
		h.Write(zero)
		h.Write(enc)
		h.Sum(b.leaves[j][:0])
		if o.hook != nil && b.hookAt < 0 {
			if err := o.hook(e); err != nil {
				b.hookAt, b.hookErr = j, err
			}
		}
	}
	// Aligned groups wholly inside the decoded part of the batch.
	b.gOff = int((tileWidth - b.first%tileWidth) % tileWidth)
	for j := b.gOff; j+tileWidth <= n; j += tileWidth {
		t, root := computeTile(b.leaves[j:j+tileWidth], make([]byte, tileBytes))
		b.tiles = append(b.tiles, t)
		b.roots = append(b.roots, root)
	}
}
