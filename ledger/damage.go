package ledger

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// Damaged store files. Pebble checks a checksum on every block it reads
// from a table file and on every record of the write-ahead log. By default
// it reports a bad block through Logger.Fatalf (a panic); the ledger gives
// it an event listener instead, so that a read of a damaged block returns
// an error, which the ledger's methods turn into a *CorruptionError naming
// the file (What "file"). The first damaged file Pebble reports is
// remembered: an error that a damaged block caused further away (an
// iterator that ended early, an entry found missing) names the file too.

// damage remembers the first damaged store file Pebble reported.
type damage struct {
	first atomic.Pointer[CorruptionError]
}

// note records a damaged file, if none was recorded yet.
func (d *damage) note(path string, details error) *CorruptionError {
	ce := fileCorruption(path, details)
	if d.first.CompareAndSwap(nil, ce) {
		return ce
	}
	return d.first.Load()
}

func fileCorruption(path string, details error) *CorruptionError {
	reason := "damaged"
	if details != nil {
		reason = "damaged: " + oneLine(details)
	}
	return &CorruptionError{What: "file", File: path,
		Reason: reason + "; stop the node and restore the ledger directory (" + filepath.Dir(path) + ") from a backup"}
}

// eventListener sends Pebble's events to log and records damaged files in d.
// Nothing in it panics.
func eventListener(log *slog.Logger, d *damage) *pebble.EventListener {
	return &pebble.EventListener{
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			d.note(info.Path, info.Details)
			log.Error("ledger store file is damaged", "component", "pebble", "file", info.Path, "err", oneLine(info.Details))
		},
		BackgroundError: func(err error) {
			if info := pebble.ExtractDataCorruptionInfo(err); info != nil {
				d.note(info.Path, info.Details)
			}
			log.Error("ledger store background error", "component", "pebble", "err", oneLine(err))
		},
	}
}

// storeErr turns an error from the store into the error a caller should
// see: a damaged file is named as a *CorruptionError; other errors are
// returned as they are.
func (d *damage) storeErr(err error) error {
	if err == nil {
		return nil
	}
	var ce *CorruptionError
	if errors.As(err, &ce) && ce.What == "file" {
		return err
	}
	if info := pebble.ExtractDataCorruptionInfo(err); info != nil {
		return d.note(info.Path, info.Details)
	}
	if first := d.first.Load(); first != nil {
		return first
	}
	if pebble.IsCorruptionError(err) {
		return &CorruptionError{What: "store", Reason: fmt.Sprintf("%s; stop the node and restore the ledger directory from a backup", oneLine(err))}
	}
	return err
}

// oneLine is err's message on one line, without the stack traces and
// details that Pebble's errors print with %+v.
func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }
