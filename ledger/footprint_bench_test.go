//go:build unix

package ledger

import (
	"context"
	"io/fs"
	"path/filepath"
	"syscall"
	"testing"
)

// BenchmarkFootprint appends 40 MiB of 1000-byte entries (64 per Append)
// to a fresh ledger on disk and reports the disk space its directory
// takes (allocated blocks: preallocated write-ahead logs count), while
// open and after Close.
func BenchmarkFootprint(b *testing.B) {
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		l, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		body := make([]byte, 1000)
		for j := range body {
			body[j] = byte(j * 7) // not all zero: Pebble compresses tables
		}
		written := 0
		for written < 40<<20 {
			recs := make([]Record, 64)
			for k := range recs {
				recs[k] = Record{Kind: KindMessageSent, Body: body}
				written += len(body)
			}
			if _, err := l.Append(ctx, recs...); err != nil {
				b.Fatal(err)
			}
		}
		open := diskUsage(b, dir)
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(written)/(1<<20), "data_MiB")
		b.ReportMetric(float64(open)/(1<<20), "disk_MiB_open")
		b.ReportMetric(float64(diskUsage(b, dir))/(1<<20), "disk_MiB_closed")
	}
}

// diskUsage is the space allocated to the files under dir, as du counts it.
func diskUsage(b *testing.B, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}
